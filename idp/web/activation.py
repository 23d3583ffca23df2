"""Activation screens: "Je n'ai pas de compte" (SMS self-enrolment), the first login with provisional
credentials, the e-mail confirmation link, and the development outbox page.

Views stay thin: they parse the form, call one core service, and render or redirect. The flow's state lives in
the database; the browser only holds the transaction token in its signed session cookie.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from idp.core.activation.common import Completion
from idp.core.activation.dates import read_date
from idp.core.activation.enrolment import ChildAnswer
from idp.core.activation.errors import CodeRejected, FormProblem, SendLimited, TooManyAttempts
from idp.core.activation.model import TxState
from idp.core.i18n import N_
from idp.core.passwords.policy import NO_CONTEXT, PasswordContext, checklist_data, describe_rules
from idp.errors import InvalidCredentials, WrongProfile
from idp.web.form_targets import allow_answer_to
from idp.web.security import browser_id, check_csrf, client_ip, set_sso_cookie, sso_token
from idp.wiring import Services

bp = Blueprint("activation", __name__)

TX = "activation_tx"
LOGIN_PATH = re.compile(r"/login/([A-Za-z0-9_-]{1,64})")
STEP_ENDPOINTS = {
    TxState.CODE_SENT: "activation.code_page", TxState.CODE_VERIFIED: "activation.children_page",
    TxState.CHILDREN_OK: "activation.password_page", TxState.DONE: "activation.done_page",
    TxState.EXISTING: "activation.existing_page", TxState.CANCELLED: "activation.cancelled_page",
}


# --- helpers shared with the recovery and account blueprints ----------------------------------------------


#: What the parent typed at step 1, shown again when they come back to it (« Précédent », « Corriger… »).
TYPED = "activation_typed"
#: The notice after « Renvoyer le SMS » (translated where shown).
NEW_CODE = N_("Un nouveau code vient d'être demandé.")


def services() -> Services:
    """The services of this application."""
    return current_app.extensions["idp"]  # type: ignore[no-any-return]


def install_flow_headers(blueprint: Blueprint) -> None:
    """Flow pages send no referrer (A16), and queued messages leave once the answer has been sent (A01)."""

    @blueprint.after_request
    def _after(response: Response) -> Response:
        response.headers["Referrer-Policy"] = "no-referrer"
        response.call_on_close(services().delivery.after_response)
        return response


def limited(template: str, exc: SendLimited, **context: Any) -> ResponseReturnValue:
    """A page saying how long to wait, with ``Retry-After`` (429)."""
    body = render_template(template, errors=[exc.description], **context)
    return body, 429, {"Retry-After": str(exc.retry_after_seconds)}


def password_rules() -> list[tuple[str, str]]:
    """The rules the password pages show (and the small script ticks live)."""
    return describe_rules(services().password_policy)


def checklist(avoid: PasswordContext = NO_CONTEXT) -> dict[str, object]:
    """The data the checklist script ticks the rules with, for the person in the flow only."""
    return checklist_data(services().password_policy, avoid)


def parse_date(day: str, month: str, year: str) -> dt.date | None:
    """A date typed in three fields (JJ, MM, AAAA), or None."""
    try:
        d, m, y = int(day.strip()), int(month.strip()), int(year.strip())
        return dt.date(y, m, d) if 1900 <= y <= 2100 else None
    except (ValueError, OverflowError):
        return None


def child_answers(children: Iterable[Any], today: dt.date) -> dict[int, ChildAnswer]:
    """What the children step's form says about each child: the link, the birth date read from three fields."""
    answers = {}
    for child in children:
        choice = request.form.get(f"lien_{child.index}", "")
        typed = read_date(*(request.form.get(f"naissance_{child.index}_{p}", "")[:8] for p in ("jour", "mois", "annee")),
                          name=child.name, today=today)
        answers[child.index] = ChildAnswer({"oui": True, "non": False}.get(choice), typed.value, typed.problem)
    return answers


def resume_or_services(request_id: str) -> Response:
    """Go back to the service provider whose login brought the person here, or to "Mes services"."""
    svc = services()
    if request_id:
        try:
            protocol = svc.flow.pending(request_id, browser_id()).protocol
        except Exception:  # noqa: BLE001 - an expired request simply means "Mes services"
            protocol = ""
        if protocol in svc.frontends:
            return redirect(svc.frontends[protocol].resume_url(request_id), 303)
    return redirect(url_for("login.my_services"), 303)


def logged_in(completion: Completion, target: str) -> Response:
    """Redirect after a step that opened a new SSO session (its cookie replaces any older one)."""
    response = redirect(target, 303)
    if completion.token:
        set_sso_cookie(response, services().settings, completion.token)
    return response


install_flow_headers(bp)


# --- "Je n'ai pas de compte" -------------------------------------------------------------------------------


def _to_step(state: TxState) -> Response:
    return redirect(url_for(STEP_ENDPOINTS[state]), 303)


def _view(expected: TxState) -> Any:
    view = services().enrolment.view(session.get(TX), browser_id())
    return view if view.state is expected else _to_step(view.state)


def request_from_args() -> str:
    """The pending authentication request a page was opened from: ``?demande=<id>``, or ``?depuis=/login/<id>``
    (the login page's links). Only the id is taken, never a URL to go to."""
    match = LOGIN_PATH.fullmatch(request.args.get("depuis", ""))
    return match.group(1) if match else request.args.get("demande", "")[:64]


@bp.get("/creer-mon-compte")
def start_page() -> ResponseReturnValue:
    """Step 1: "Je confirme mon identité" (nom, prénom, n° de téléphone portable)."""
    return render_template("activation_start.html", request_id=request_from_args(), form=session.get(TYPED, {}))


@bp.post("/creer-mon-compte")
def start_submit() -> ResponseReturnValue:
    """Always the same answer: to the "code sent" page, whatever the register says (A01)."""
    check_csrf()
    form = {k: request.form.get(k, "")[:200] for k in ("nom", "prenom", "telephone", "demande")}
    session[TYPED] = {k: form[k] for k in ("nom", "prenom", "telephone")}  # « Précédent » finds them again
    try:
        token, _ = services().enrolment.start(form["nom"], form["prenom"], form["telephone"], ip=client_ip(),
                                              browser_id=browser_id(), request_id=form["demande"][:64])
    except FormProblem as exc:
        return render_template("activation_start.html", errors=[] if exc.fields else exc.reasons,
                               field_errors=exc.fields, form=form, request_id=form["demande"]), 400
    except SendLimited as exc:
        return limited("activation_start.html", exc, form=form, request_id=form["demande"])
    session[TX] = token
    return redirect(url_for("activation.code_page"), 303)


@bp.get("/creer-mon-compte/code")
def code_page() -> ResponseReturnValue:
    """Step 2: "Un code de sécurité a été envoyé"."""
    view = _view(TxState.CODE_SENT)
    if isinstance(view, Response):
        return view
    return render_template("activation_code.html", view=view, errors=[])


@bp.post("/creer-mon-compte/code")
def code_submit() -> ResponseReturnValue:
    """Check the code typed."""
    check_csrf()
    svc = services()
    try:
        state = svc.enrolment.verify_code(session.get(TX), browser_id(), request.form.get("code", ""))
    except TooManyAttempts as exc:
        return render_template("activation_cancelled.html", message=exc.description), 403
    except CodeRejected as exc:
        view = svc.enrolment.view(session.get(TX), browser_id())
        return render_template("activation_code.html", view=view, errors=[exc.description]), 400
    return _to_step(state)


@bp.post("/creer-mon-compte/renvoyer")
def resend() -> ResponseReturnValue:
    """"Renvoyer le SMS" (a new code; the old one dies), within the limits."""
    check_csrf()
    svc = services()
    try:
        svc.enrolment.resend(session.get(TX), browser_id())
    except SendLimited as exc:
        return limited("activation_code.html", exc, view=svc.enrolment.view(session.get(TX), browser_id()))
    return render_template("activation_code.html", view=svc.enrolment.view(session.get(TX), browser_id()),
                           errors=[], notice=NEW_CODE)


@bp.get("/creer-mon-compte/eleves")
def children_page() -> ResponseReturnValue:
    """Step 3: "Je confirme mon lien avec l'élève" and the child's birth date."""
    view = _view(TxState.CODE_VERIFIED)
    if isinstance(view, Response):
        return view
    return render_template("activation_children.html", view=view, errors=[], form={})


@bp.post("/creer-mon-compte/eleves")
def children_submit() -> ResponseReturnValue:
    """Birth dates checked for every confirmed child at once (no oracle on which one was wrong)."""
    check_csrf()
    svc = services()
    view = svc.enrolment.view(session.get(TX), browser_id())
    answers = child_answers(view.children, svc.clock.now().date())
    try:
        state = svc.enrolment.confirm_children(session.get(TX), browser_id(), answers)
    except TooManyAttempts as exc:
        return render_template("activation_cancelled.html", message=exc.description), 403
    except FormProblem as exc:
        view = svc.enrolment.view(session.get(TX), browser_id())
        return render_template("activation_children.html", view=view, errors=[] if exc.fields else exc.reasons,
                               field_errors=exc.fields, form=request.form), 400
    return _to_step(state)


@bp.get("/creer-mon-compte/mot-de-passe")
def password_page() -> ResponseReturnValue:
    """Step 4: "Je choisis mon mot de passe" (twice), with the rules shown."""
    view = _view(TxState.CHILDREN_OK)
    if isinstance(view, Response):
        return view
    allow_answer_to(view.request_id)
    return render_template("activation_password.html", rules=password_rules(), errors=[],
                           identifier=view.identifier, checklist=checklist(view.avoid))


@bp.post("/creer-mon-compte/mot-de-passe")
def password_submit() -> ResponseReturnValue:
    """Create the account and open the session (exactly once, A10)."""
    check_csrf()
    svc = services()
    try:
        done = svc.enrolment.choose_password(
            session.get(TX), browser_id(), request.form.get("mot_de_passe", "")[:1024],
            request.form.get("confirmation", "")[:1024], ip=client_ip(),
            user_agent=request.headers.get("User-Agent", ""), old_token=sso_token(svc.settings))
    except FormProblem as exc:
        view = svc.enrolment.view(session.get(TX), browser_id())
        allow_answer_to(view.request_id)
        return render_template("activation_password.html", rules=password_rules(), errors=exc.reasons,
                               identifier=view.identifier, checklist=checklist(view.avoid)), 400
    return logged_in(done, url_for("activation.done_page"))


@bp.get("/creer-mon-compte/termine")
def done_page() -> ResponseReturnValue:
    """"Votre compte a été activé avec succès" and the identifier to note."""
    view = _view(TxState.DONE)
    if isinstance(view, Response):
        return view
    session.pop(TYPED, None)  # the account exists: what was typed at step 1 is not kept any longer
    return render_template("activation_done.html", identifier=view.identifier,
                           next_url=url_for("activation.go_on"))


@bp.get("/creer-mon-compte/acceder")
def go_on() -> ResponseReturnValue:
    """"Accéder à mes services": resume the service provider's request, or "Mes services"."""
    request_id = services().enrolment.resume_target(session.get(TX), browser_id())
    session.pop(TX, None)
    return resume_or_services(request_id)


@bp.get("/creer-mon-compte/compte-existant")
def existing_page() -> ResponseReturnValue:
    """The parent already has an account: log in, or recover the password."""
    view = _view(TxState.EXISTING)
    if isinstance(view, Response):
        return view
    return render_template("activation_existing.html", view=view)


@bp.get("/creer-mon-compte/annulee")
def cancelled_page() -> ResponseReturnValue:
    """The transaction ended without an account (too many errors, links refused, no child)."""
    view = _view(TxState.CANCELLED)
    if isinstance(view, Response):
        return view
    return render_template("activation_cancelled.html", reason=view.cancel_reason), 200


# --- first login with provisional credentials ------------------------------------------------------------


@bp.get("/activation/premiere-connexion", defaults={"request_id": ""})
@bp.get("/activation/premiere-connexion/<request_id>")
def first_login(request_id: str) -> ResponseReturnValue:
    """"Je crée mon compte": new password, birth date, e-mail."""
    _, account = services().provisional.current(sso_token(services().settings))
    allow_answer_to(request_id[:64])
    return render_template("activation_first_login.html", account=account, request_id=request_id[:64],
                           rules=password_rules(), errors=[], form={},
                           checklist=checklist(services().provisional.password_context(account)))


@bp.post("/activation/premiere-connexion", defaults={"request_id": ""})
@bp.post("/activation/premiere-connexion/<request_id>")
def first_login_submit(request_id: str) -> ResponseReturnValue:
    """Activate the account; the provisional session is replaced by a new one."""
    check_csrf()
    svc = services()
    form = request.form
    try:
        done = svc.provisional.complete(
            sso_token(svc.settings), request_id=request_id[:64], browser_id=browser_id(),
            password=form.get("mot_de_passe", "")[:1024], confirmation=form.get("confirmation", "")[:1024],
            birth_date=parse_date(form.get("jour", ""), form.get("mois", ""), form.get("annee", "")),
            email=form.get("courriel", "")[:254], ip=client_ip(), user_agent=request.headers.get("User-Agent", ""))
    except FormProblem as exc:
        _, account = svc.provisional.current(sso_token(svc.settings))
        allow_answer_to(request_id[:64])
        return render_template("activation_first_login.html", account=account, request_id=request_id[:64],
                               rules=password_rules(), errors=exc.reasons, form=form,
                               checklist=checklist(svc.provisional.password_context(account))), 400
    except TooManyAttempts as exc:
        return render_template("activation_cancelled.html", message=exc.description), 403
    return _first_login_done(done)


@bp.post("/activation/rattacher", defaults={"request_id": ""})
@bp.post("/activation/rattacher/<request_id>")
def attach_submit(request_id: str) -> ResponseReturnValue:
    """A parent's second letter: attach its children to the account they already have."""
    check_csrf()
    svc = services()
    try:
        done = svc.provisional.attach(sso_token(svc.settings), request_id=request_id[:64], browser_id=browser_id(),
                                      identifier=request.form.get("identifiant", "")[:64],
                                      password=request.form.get("mot_de_passe_existant", "")[:1024],
                                      ip=client_ip(), user_agent=request.headers.get("User-Agent", ""))
    except (InvalidCredentials, WrongProfile) as exc:  # a pupil's account takes no children (no failure counted)
        _, account = svc.provisional.current(sso_token(svc.settings))
        allow_answer_to(request_id[:64])
        return render_template("activation_first_login.html", account=account, request_id=request_id[:64],
                               rules=password_rules(), errors=[], attach_errors=[exc.description],
                               form=request.form,
                               checklist=checklist(svc.provisional.password_context(account))), 401
    return _first_login_done(done)


def _first_login_done(done: Completion) -> Response:
    session["activation_done"] = {"identifier": done.identifier, "request": done.request.id if done.request else ""}
    return logged_in(done, url_for("activation.first_login_done"))


@bp.get("/activation/termine")
def first_login_done() -> ResponseReturnValue:
    """"Votre compte est activé": the identifier, and "Accéder à mes services"."""
    done = session.get("activation_done")
    if not isinstance(done, dict):
        return redirect(url_for("login.my_services"), 303)
    return render_template("activation_done.html", identifier=done.get("identifier", ""),
                           next_url=url_for("activation.first_login_go_on"), email_sent=True)


@bp.get("/activation/acceder")
def first_login_go_on() -> ResponseReturnValue:
    """Resume the request that the provisional login interrupted."""
    done = session.pop("activation_done", None)
    return resume_or_services(done.get("request", "") if isinstance(done, dict) else "")


@bp.get("/courriel/<token>")
def confirm_email(token: str) -> ResponseReturnValue:
    """The e-mail confirmation link: confirm, then drop the token from the address bar (A16)."""
    services().provisional.confirm_email(token)
    return redirect(url_for("activation.email_confirmed"), 303)


@bp.get("/courriel/confirme")
def email_confirmed() -> ResponseReturnValue:
    """"Votre adresse électronique est confirmée"."""
    return render_template("activation_email_confirmed.html")


# --- development outbox --------------------------------------------------------------------------------------


@bp.get("/dev/outbox")
def dev_outbox() -> ResponseReturnValue:
    """The development outbox (codes in clear): only when ``[server] development = true``."""
    svc = services()
    if not svc.settings.server.development:
        abort(404)
    from idp.storage.activation_store import SqlOutbox

    messages = SqlOutbox(svc.db.sessionmaker).messages(to=request.args.get("to", "")[:254], limit=50)
    return render_template("activation_outbox.html", messages=list(reversed(messages)))
