"""The change-password step of a login whose account must change its password (a security campaign).

``login.submit_form`` sends the browser here after the old password was checked; nothing is answered to any
service provider before the new password is set (``AuthnFlow.resume`` refuses the step's session).
"""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from idp.core.accounts.forced_change import ForcedPasswordChange
from idp.errors import PasswordRejected
from idp.web.activation import checklist, install_flow_headers, password_rules
from idp.web.security import browser_id, check_csrf, client_ip, set_sso_cookie, sso_token
from idp.wiring import Services

bp = Blueprint("password_change", __name__)
install_flow_headers(bp)


def _services() -> Services:
    return current_app.extensions["idp"]  # type: ignore[no-any-return]


def _step() -> ForcedPasswordChange:
    return _services().extras["forced_password_change"]  # type: ignore[no-any-return]


def _request_id() -> str:
    value = request.values.get("demande", "")
    return value if value.replace("-", "").replace("_", "").isalnum() and len(value) <= 64 else ""


@bp.get("/login/mot-de-passe-a-changer")
def form() -> ResponseReturnValue:
    """"Votre mot de passe doit être changé": the new password, twice, with the policy shown."""
    account = _step().pending(sso_token(_services().settings))
    return render_template("password_change.html", account=account, rules=password_rules(), errors=[],
                           request_id=_request_id(),
                           checklist=checklist(_services().accounts.password_context(account)))


@bp.post("/login/mot-de-passe-a-changer")
def submit() -> ResponseReturnValue:
    """Set it, then answer the service provider that sent the person (or "Mes services")."""
    check_csrf()
    services = _services()
    step = _step()
    request_id = _request_id()
    try:
        done = step.change(sso_token(services.settings), request.form.get("mot_de_passe", "")[:1024],
                           request.form.get("confirmation", "")[:1024], request_id=request_id,
                           browser_id=browser_id(), ip=client_ip(), user_agent=request.headers.get("User-Agent", ""))
    except PasswordRejected as exc:
        account = step.pending(sso_token(services.settings))
        return render_template("password_change.html", account=account, rules=password_rules(), errors=exc.reasons,
                               request_id=request_id,
                               checklist=checklist(services.accounts.password_context(account))), 400
    if done.request is not None:
        target = services.frontends[done.request.protocol].resume_url(done.request.id)
    else:
        target = url_for("login.my_services")
    response = redirect(target, 303)
    set_sso_cookie(response, services.settings, done.token)
    return response
