""""S'identifier avec FranceConnect": start, callback, the confirmation steps (the SMS route's pages), the
account page's link and unlink, and the return from the provider's logout.

Views stay thin: they parse, call ``FederationService`` (``services.extras["federation"]``), and render or
redirect. A deployment without ``[federation] enabled`` answers every route with a plain French page.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from idp.core.activation.errors import CodeRejected, FormProblem, SendLimited, TooManyAttempts
from idp.core.activation.model import TxState
from idp.core.authn.model import AuthMethod, SsoSession
from idp.core.federation.errors import FederationRejected, FederationUnavailable
from idp.core.federation.service import FederationService, Outcome
from idp.core.i18n import gettext
from idp.errors import InvalidCredentials, LoginThrottled
from idp.web.activation import (
    NEW_CODE,
    checklist,
    child_answers,
    install_flow_headers,
    limited,
    logged_in,
    password_rules,
    request_from_args,
    resume_or_services,
    services,
)
from idp.web.form_targets import allow_answer_to
from idp.web.security import browser_id, check_csrf, client_ip, safe_next, sso_token

bp = Blueprint("federation", __name__)
install_flow_headers(bp)

TX = "federation_tx"
STEPS = {
    TxState.CODE_SENT: "federation.code_page", TxState.CODE_VERIFIED: "federation.children_page",
    TxState.CHILDREN_OK: "federation.password_page", TxState.DONE: "federation.done_page",
    TxState.CANCELLED: "federation.cancelled_page",
}


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    settings = state.app.extensions["idp"].settings
    state.app.jinja_env.globals.update(federation_enabled=settings.federation.enabled,
                                       federation_name=settings.federation.name, federation_linked=link_status)
    state.app.extensions["idp"].extras.setdefault("logout_wrappers", []).append(_upstream_logout)
    state.app.extensions["idp"].extras.setdefault("logout_targets", []).append(_upstream_logout_targets)


def _service() -> FederationService | None:
    return services().extras.get("federation")


def _result(kind: str, status: int = 200, request_id: str = "", **context: Any) -> tuple[str, int]:
    return render_template("federation_result.html", kind=kind, request_id=request_id,
                           correlation_id=getattr(g, "correlation_id", ""), **context), status


@bp.errorhandler(FederationUnavailable)
def _unavailable(_: FederationUnavailable) -> ResponseReturnValue:
    retry = str(services().settings.server.outage_retry_after_seconds)
    body, status = _result("unavailable", 503)
    return body, status, {"Retry-After": retry}


@bp.errorhandler(FederationRejected)
def _rejected(exc: FederationRejected) -> ResponseReturnValue:
    return _result("rejected", 400, message=exc.description)


# --- start and callback ----------------------------------------------------------------------------------


@bp.get("/franceconnect")
def start() -> ResponseReturnValue:
    """The button: a new state and nonce for this browser, then the provider's authorization page."""
    service = _service()
    if service is None:
        return _result("disabled", 200)
    url = service.start(browser_id(), request_id=request_from_args())
    return redirect(url, 303)


@bp.get("/franceconnect/retour")
def callback() -> ResponseReturnValue:
    """The provider's answer (``code``, ``state``, ``iss``, or ``error``)."""
    service = _service()
    if service is None:
        return _result("disabled", 200)
    params = {k: request.args.get(k, "") for k in ("code", "state", "error") if k in request.args}
    if "iss" in request.args:
        params["iss"] = request.args.get("iss", "")
    svc = services()
    outcome = service.callback(params, browser_id(), ip=client_ip(), user_agent=request.headers.get("User-Agent", ""),
                               session_token=sso_token(svc.settings))
    return _after_callback(outcome)


def _after_callback(outcome: Outcome) -> ResponseReturnValue:
    if outcome.kind == "logged_in":
        completion_target = _resume_target(outcome.request.id if outcome.request else "")
        response = redirect(completion_target, 303)
        from idp.web.security import set_sso_cookie

        if outcome.token:
            set_sso_cookie(response, services().settings, outcome.token)
        return response
    if outcome.kind == "confirm":
        session[TX] = outcome.tx_token
        return redirect(url_for("federation.code_page"), 303)
    if outcome.kind == "linked":
        flash(gettext("%(name)s est maintenant lié à votre compte.", name=services().settings.federation.name))
        return redirect(url_for("account.overview"), 303)
    status = 409 if outcome.kind in ("taken", "mismatch", "ambiguous") else 200
    return _result(outcome.kind, status, request_id=outcome.request_id)


def _resume_target(request_id: str) -> str:
    svc = services()
    if request_id:
        try:
            protocol = svc.flow.pending(request_id, browser_id()).protocol
        except Exception:  # noqa: BLE001 - an expired request simply means "Mes services"
            protocol = ""
        if protocol in svc.frontends:
            return svc.frontends[protocol].resume_url(request_id)
    return url_for("login.my_services")


# --- confirmation steps (the SMS route's pages, on the federated transaction) ------------------------------


def _steps() -> Any:
    service = _service()
    if service is None:
        raise FederationRejected("disabled")
    return service.enrolment


def _to_step(state: TxState) -> Response:
    return redirect(url_for(STEPS.get(state, "federation.cancelled_page")), 303)


def _view(expected: TxState) -> Any:
    view = _steps().view(session.get(TX), browser_id())
    return view if view.state is expected else _to_step(view.state)


def _page(template: str, **context: Any) -> str:
    """A confirmation step's page: its forms may end at the service of the login that led here (S31)."""
    allow_answer_to(_steps().view(session.get(TX), browser_id()).request_id)
    return render_template(template, **context)


def _code_context(view: Any, errors: list[str], **extra: Any) -> dict[str, Any]:
    existing = _steps().existing_account(session.get(TX), browser_id()) is not None
    return {"view": view, "errors": errors, "existing": existing, "action": url_for("federation.code_submit"),
            "resend_url": url_for("federation.resend"), "back_url": url_for("portal.start"), **extra}


@bp.get("/franceconnect/code")
def code_page() -> ResponseReturnValue:
    """A code to the mobile number of the school record (or the existing account's password)."""
    view = _view(TxState.CODE_SENT)
    if isinstance(view, Response):
        return view
    if not view.masked_phone:
        return redirect(url_for("federation.existing_page"), 303)
    return _page("federation_code.html", **_code_context(view, []))


@bp.post("/franceconnect/code")
def code_submit() -> ResponseReturnValue:
    check_csrf()
    steps = _steps()
    try:
        state = steps.verify_code(session.get(TX), browser_id(), request.form.get("code", ""))
    except TooManyAttempts as exc:
        return render_template("activation_cancelled.html", message=exc.description,
                               restart_url=url_for("portal.start")), 403
    except CodeRejected as exc:
        view = steps.view(session.get(TX), browser_id())
        return _page("federation_code.html", **_code_context(view, [exc.description])), 400
    return _to_step(state)


@bp.post("/franceconnect/renvoyer")
def resend() -> ResponseReturnValue:
    check_csrf()
    steps = _steps()
    try:
        steps.resend(session.get(TX), browser_id())
    except SendLimited as exc:
        return limited("federation_code.html", exc, **{k: v for k, v in _code_context(
            steps.view(session.get(TX), browser_id()), []).items() if k != "errors"})
    return _page("federation_code.html", **_code_context(steps.view(session.get(TX), browser_id()), [],
                                                       notice=NEW_CODE))


@bp.get("/franceconnect/eleves")
def children_page() -> ResponseReturnValue:
    view = _view(TxState.CODE_VERIFIED)
    if isinstance(view, Response):
        return view
    return _page("activation_children.html", view=view, errors=[], form={},
                           action=url_for("federation.children_submit"))


@bp.post("/franceconnect/eleves")
def children_submit() -> ResponseReturnValue:
    """Birth dates of every confirmed child; then the password, or the link to the existing account."""
    check_csrf()
    steps = _steps()
    view = steps.view(session.get(TX), browser_id())
    answers = child_answers(view.children, services().clock.now().date())
    try:
        state = steps.confirm_children(session.get(TX), browser_id(), answers)
    except TooManyAttempts as exc:
        return render_template("activation_cancelled.html", message=exc.description,
                               restart_url=url_for("portal.start")), 403
    except FormProblem as exc:
        view = steps.view(session.get(TX), browser_id())
        return _page("activation_children.html", view=view, errors=[] if exc.fields else exc.reasons,
                     field_errors=exc.fields, form=request.form,
                     action=url_for("federation.children_submit")), 400
    if state is TxState.CHILDREN_OK and steps.existing_account(session.get(TX), browser_id()) is not None:
        svc = services()
        done = steps.finish_existing(session.get(TX), browser_id(), ip=client_ip(),
                                     user_agent=request.headers.get("User-Agent", ""),
                                     old_token=sso_token(svc.settings))
        return logged_in(done, url_for("federation.done_page"))
    return _to_step(state)


@bp.get("/franceconnect/mot-de-passe")
def password_page() -> ResponseReturnValue:
    view = _view(TxState.CHILDREN_OK)
    if isinstance(view, Response):
        return view
    return _page("activation_password.html", rules=password_rules(), errors=[], identifier=view.identifier,
                 checklist=checklist(view.avoid), action=url_for("federation.password_submit"))


@bp.post("/franceconnect/mot-de-passe")
def password_submit() -> ResponseReturnValue:
    """Create the account, link the identity, open the session (exactly once)."""
    check_csrf()
    svc = services()
    try:
        done = _steps().choose_password(
            session.get(TX), browser_id(), request.form.get("mot_de_passe", "")[:1024],
            request.form.get("confirmation", "")[:1024], ip=client_ip(),
            user_agent=request.headers.get("User-Agent", ""), old_token=sso_token(svc.settings))
    except FormProblem as exc:
        view = _steps().view(session.get(TX), browser_id())
        return _page("activation_password.html", rules=password_rules(), errors=exc.reasons, identifier=view.identifier,
                     checklist=checklist(view.avoid), action=url_for("federation.password_submit")), 400
    return logged_in(done, url_for("federation.done_page"))


@bp.get("/franceconnect/compte-existant")
def existing_page() -> ResponseReturnValue:
    """The alternative proof for a parent who already has an account: its identifier and password."""
    if _steps().existing_account(session.get(TX), browser_id()) is None:
        return _to_step(_steps().view(session.get(TX), browser_id()).state)
    return _page("federation_existing.html", field_errors={}, identifier="")


@bp.post("/franceconnect/compte-existant")
def existing_submit() -> ResponseReturnValue:
    """Link with the existing account's password; each problem is shown at its field, the identifier kept."""
    check_csrf()
    svc = services()
    identifier = request.form.get("identifiant", "")[:64]
    try:
        done = _steps().finish_with_password(
            session.get(TX), browser_id(), identifier, request.form.get("mot_de_passe", "")[:1024], ip=client_ip(),
            user_agent=request.headers.get("User-Agent", ""), old_token=sso_token(svc.settings))
    except (FormProblem, InvalidCredentials, LoginThrottled) as exc:
        body = _page("federation_existing.html", field_errors=password_problems(exc, "mot_de_passe"),
                     identifier=identifier)
        return body, exc_status(exc), retry_after(exc)
    return logged_in(done, url_for("federation.done_page"))


def password_problems(exc: FormProblem | InvalidCredentials | LoginThrottled, field: str) -> dict[str, str]:
    """A password form's refusal, field by field: an empty field at that field, a wrong password or the wait
    before trying again at the password field ``field``."""
    if isinstance(exc, FormProblem):
        return exc.fields or {field: " ".join(exc.reasons)}
    if isinstance(exc, LoginThrottled):
        return {field: gettext("Par sécurité, après plusieurs essais incorrects, la connexion avec cet identifiant "
                               "est suspendue pendant %(minutes)s min. Vous pourrez réessayer ensuite, sur cette "
                               "même page.", minutes=exc.retry_after_minutes)}
    return {field: exc.description}


def exc_status(exc: FormProblem | InvalidCredentials | LoginThrottled) -> int:
    """400 for an empty field, 401 for wrong credentials, 429 while the wait applies."""
    return 429 if isinstance(exc, LoginThrottled) else 401 if isinstance(exc, InvalidCredentials) else 400


def retry_after(exc: Exception) -> dict[str, str]:
    """The ``Retry-After`` header of a throttled answer (none otherwise)."""
    return {"Retry-After": str(exc.retry_after_seconds)} if isinstance(exc, LoginThrottled) else {}


@bp.get("/franceconnect/termine")
def done_page() -> ResponseReturnValue:
    view = _view(TxState.DONE)
    if isinstance(view, Response):
        return view
    return render_template("activation_done.html", identifier=view.identifier,
                           next_url=url_for("federation.go_on"))


@bp.get("/franceconnect/acceder")
def go_on() -> ResponseReturnValue:
    request_id = _steps().resume_target(session.get(TX), browser_id())
    session.pop(TX, None)
    return resume_or_services(request_id)


@bp.get("/franceconnect/annulee")
def cancelled_page() -> ResponseReturnValue:
    view = _view(TxState.CANCELLED)
    if isinstance(view, Response):
        return view
    return render_template("activation_cancelled.html", reason=view.cancel_reason,
                           restart_url=url_for("portal.start"))


# --- the account page: link and unlink (password typed again, CSRF) ---------------------------------------


@bp.post("/compte/franceconnect/lier")
def link() -> ResponseReturnValue:
    check_csrf()
    service = _service()
    if service is None:
        return _result("disabled", 200)
    try:
        url = service.start(browser_id(), session_token=sso_token(services().settings), purpose="link",
                            password=request.form.get("actuel", "")[:1024], ip=client_ip())
    except (FormProblem, LoginThrottled) as exc:
        return _account_page_refusal(exc)
    return redirect(url, 303)


@bp.post("/compte/franceconnect/delier")
def unlink() -> ResponseReturnValue:
    check_csrf()
    service = _service()
    if service is None:
        return _result("disabled", 200)
    try:
        removed = service.unlink(sso_token(services().settings), request.form.get("actuel", "")[:1024], ip=client_ip())
    except (FormProblem, LoginThrottled) as exc:
        return _account_page_refusal(exc)
    if removed:
        flash(gettext("%(name)s n'est plus lié à votre compte.", name=services().settings.federation.name))
    return redirect(url_for("account.overview"), 303)


def _account_page_refusal(exc: FormProblem | LoginThrottled) -> ResponseReturnValue:
    """The account page's link/unlink form again, the refusal under its password field."""
    from idp.web.account import change_page  # the account blueprint imports this module

    body, status = change_page("account_federation.html", status=exc_status(exc),
                               field_errors=password_problems(exc, "actuel"))
    return body, status, retry_after(exc)


def link_targets(account_id: int) -> list[str]:
    """Where the account page's « Lier » form leads (the provider's authorization endpoint, F04), if shown."""
    service = _service()
    if service is None or service.is_linked(account_id):
        return []
    return [service.upstream.authorization_url("", "")]


def link_status(account_id: int) -> bool | None:
    """For the account page: linked or not (None when federation is not enabled)."""
    service = _service()
    return service.is_linked(account_id) if service is not None else None


# --- logout (F08) ------------------------------------------------------------------------------------------


def _upstream_logout(sso_session: SsoSession, chain: str | None, *, registered: bool = False) -> str | None:
    """Our session has ended: when it came through the provider, end the provider's too, then go on.

    ``chain`` is where the logout continues afterwards: a local path, or (``registered=True``) an address the
    caller has already checked against a service provider's registration (an OIDC client's
    ``post_logout_redirect_uri``). It is kept server-side with the logout state, never read back from the
    provider's answer.
    """
    service = _service()
    if service is None:
        return chain
    then = (chain if registered else safe_next(chain, "")) if chain else ""
    try:
        target = service.logout_redirect(sso_session, browser_id(), then)
    except Exception:  # noqa: BLE001 - the provider's logout never keeps our logout from finishing (F08)
        current_app.logger.warning("upstream logout skipped", exc_info=True)
        return chain
    return target or chain


def _upstream_logout_targets(sso_session: SsoSession) -> list[str]:
    """Where the logout of a session opened through the provider goes first: its ``end_session`` (F08)."""
    service = _service()
    if service is None or sso_session.auth_method != AuthMethod.FEDERATION:
        return []
    return [service.upstream.logout_url("", "")]


@bp.get("/franceconnect/deconnexion")
def logout_return() -> ResponseReturnValue:
    """Back from the provider's ``session/end``: continue the logout chain, or say "vous êtes déconnecté"."""
    service = _service()
    then = service.logout_return(request.args.get("state", ""), browser_id()) if service is not None else ""
    if then:
        return redirect(then, 303)
    return render_template("logged_out.html")


_ = dt
