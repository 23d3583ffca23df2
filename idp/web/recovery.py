"""Recovery screens: "Identifiant oublié ?" and "Mot de passe oublié ?" (same answer whether or not the
account exists; codes by SMS or e-mail to the account's verified contact)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from idp.core.activation.errors import CodeRejected, FormProblem, SendLimited, TooManyAttempts
from idp.core.activation.model import TxState
from idp.core.recovery.service import ResetView, chosen_contact, parse_channel
from idp.web.activation import (
    NEW_CODE,
    checklist,
    install_flow_headers,
    limited,
    password_rules,
    request_from_args,
    services,
)
from idp.web.form_targets import allow_answer_to
from idp.web.security import browser_id, check_csrf, client_ip

bp = Blueprint("recovery", __name__)
install_flow_headers(bp)

TX = "recovery_tx"
#: The identifier as the person typed it, for the code page to say where the code went: never the account's phone
#: or address, and the same page whether or not an account matched (A15).
TYPED = "recovery_typed"
STEPS = {TxState.CODE_SENT: "recovery.code_page", TxState.CODE_VERIFIED: "recovery.new_password_page",
         TxState.DONE: "recovery.done_page", TxState.CANCELLED: "recovery.password_page"}


def _request_id() -> str:
    if request.method == "GET":
        return request_from_args()
    return (request.values.get("demande", "") or "")[:64]


# --- forgotten identifier ---------------------------------------------------------------------------------


def _problems(exc: FormProblem) -> dict[str, Any]:
    """A form's problems for its page: each beside its field, the others in the summary at the top."""
    return {"errors": [] if exc.fields else exc.reasons, "field_errors": exc.fields}


@bp.get("/identifiant-oublie")
def identifier_page() -> ResponseReturnValue:
    """"Je récupère mon identifiant": par SMS, par mail, ou je contacte l'établissement."""
    return render_template("recovery_identifier.html", request_id=_request_id(), errors=[], form={})


@bp.post("/identifiant-oublie")
def identifier_submit() -> ResponseReturnValue:
    """Send the identifier to the verified phone or address; the answer is the same in every case."""
    check_csrf()
    form = {k: request.form.get(k, "")[:254] for k in ("canal", "telephone", "courriel")}
    try:
        channel, value = chosen_contact(form["canal"], form["telephone"], form["courriel"])
        services().recovery.forgot_identifier(channel, value, ip=client_ip(), browser_id=browser_id())
    except FormProblem as exc:
        return render_template("recovery_identifier.html", request_id=_request_id(), **_problems(exc), form=form), 400
    except SendLimited as exc:
        return limited("recovery_identifier.html", exc, request_id=_request_id(), form=form)
    return redirect(url_for("recovery.identifier_sent", canal=channel.value, demande=_request_id() or None), 303)


@bp.get("/identifiant-oublie/envoye")
def identifier_sent() -> ResponseReturnValue:
    """The generic answer."""
    return render_template("recovery_identifier_sent.html", channel=request.args.get("canal", "sms"),
                           request_id=_request_id())


# --- forgotten password -----------------------------------------------------------------------------------


@bp.get("/mot-de-passe-oublie")
def password_page() -> ResponseReturnValue:
    """"Mot de passe oublié": the identifier and the channel for the code."""
    return render_template("recovery_password.html", request_id=_request_id(), errors=[],
                           form={"identifiant": request.args.get("identifiant", "")[:64]})


@bp.post("/mot-de-passe-oublie")
def password_submit() -> ResponseReturnValue:
    """Start a reset; always to the code page (A15)."""
    check_csrf()
    form = {k: request.form.get(k, "")[:64] for k in ("identifiant", "canal")}
    try:
        token = services().recovery.start_reset(form["identifiant"], parse_channel(form["canal"]), ip=client_ip(),
                                                browser_id=browser_id(), request_id=_request_id())
    except FormProblem as exc:
        return render_template("recovery_password.html", request_id=_request_id(), **_problems(exc), form=form), 400
    except SendLimited as exc:
        return limited("recovery_password.html", exc, request_id=_request_id(), form=form)
    session[TX], session[TYPED] = token, form["identifiant"].strip()
    return redirect(url_for("recovery.code_page"), 303)


def _view(expected: TxState) -> ResetView | Response:
    view = services().recovery.view(session.get(TX), browser_id())
    return view if view.state is expected else redirect(url_for(STEPS[view.state]), 303)


@bp.get("/mot-de-passe-oublie/code")
def code_page() -> ResponseReturnValue:
    """"Je saisis le code reçu"."""
    view = _view(TxState.CODE_SENT)
    if isinstance(view, Response):
        return view
    return _code_page(view, [])


def _code_page(view: ResetView, errors: list[str], **context: Any) -> str:
    """The code page: where the code went, named with the identifier typed and the channel chosen."""
    return render_template("recovery_code.html", view=view, errors=errors, typed=session.get(TYPED, ""), **context)


@bp.post("/mot-de-passe-oublie/code")
def code_submit() -> ResponseReturnValue:
    """Check the code."""
    check_csrf()
    svc = services()
    try:
        svc.recovery.verify(session.get(TX), browser_id(), request.form.get("code", ""))
    except TooManyAttempts as exc:
        return render_template("recovery_cancelled.html", message=exc.description), 403
    except CodeRejected as exc:
        return _code_page(svc.recovery.view(session.get(TX), browser_id()), [exc.description]), 400
    return redirect(url_for("recovery.new_password_page"), 303)


@bp.post("/mot-de-passe-oublie/renvoyer")
def resend() -> ResponseReturnValue:
    """A new code, within the limits."""
    check_csrf()
    svc = services()
    try:
        svc.recovery.resend(session.get(TX), browser_id())
    except SendLimited as exc:
        return limited("recovery_code.html", exc, view=svc.recovery.view(session.get(TX), browser_id()),
                       typed=session.get(TYPED, ""))
    return _code_page(svc.recovery.view(session.get(TX), browser_id()), [], notice=NEW_CODE)


@bp.get("/mot-de-passe-oublie/nouveau")
def new_password_page() -> ResponseReturnValue:
    """"Je choisis mon nouveau mot de passe"."""
    view = _view(TxState.CODE_VERIFIED)
    if isinstance(view, Response):
        return view
    allow_answer_to(view.request_id)
    return render_template("recovery_new_password.html", rules=password_rules(), errors=[],
                           identifier=view.identifier, checklist=checklist(view.avoid))


@bp.post("/mot-de-passe-oublie/nouveau")
def new_password_submit() -> ResponseReturnValue:
    """Set it: every session ends, a notice goes out, nobody is logged in automatically."""
    check_csrf()
    try:
        services().recovery.set_password(session.get(TX), browser_id(), request.form.get("mot_de_passe", "")[:1024],
                                         request.form.get("confirmation", "")[:1024], ip=client_ip())
    except FormProblem as exc:
        view = services().recovery.view(session.get(TX), browser_id())
        allow_answer_to(view.request_id)
        return render_template("recovery_new_password.html", rules=password_rules(), errors=exc.reasons,
                               identifier=view.identifier, checklist=checklist(view.avoid)), 400
    return redirect(url_for("recovery.done_page"), 303)


@bp.get("/mot-de-passe-oublie/termine")
def done_page() -> ResponseReturnValue:
    """"Votre mot de passe a été modifié": log in again (back to the pending request if any)."""
    view = _view(TxState.DONE)
    if isinstance(view, Response):
        return view
    session.pop(TX, None)
    session.pop(TYPED, None)
    if view.request_id:
        login_url = url_for("login.login_page", request_id=view.request_id, login_hint=view.identifier)
    else:
        login_url = url_for("portal.start")
    return render_template("recovery_done.html", identifier=view.identifier, login_url=login_url)
