""""Mon compte" (/compte): an overview (contacts, children and schools, devices, consents) and one page per
change (password, phone, e-mail, FranceConnect), each with its own form and errors, phone-first."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from idp.core.activation.errors import CodeRejected, FormProblem, SendLimited, TooManyAttempts
from idp.core.activation.model import Channel
from idp.core.i18n import gettext, ngettext
from idp.core.recovery.account import NotLoggedIn
from idp.web.activation import NEW_CODE, checklist, install_flow_headers, limited, password_rules, services
from idp.web.federation import link_targets
from idp.web.form_targets import allow_urls
from idp.web.security import browser_id, check_csrf, client_ip, sso_token

bp = Blueprint("account", __name__)
install_flow_headers(bp)

TX = "contact_tx"
CHANNELS = {"courriel": Channel.MAIL, "telephone": Channel.SMS}


def _token() -> str | None:
    return sso_token(services().settings)


@bp.errorhandler(NotLoggedIn)
def _not_logged_in(_: NotLoggedIn) -> ResponseReturnValue:
    return redirect(url_for("portal.start"), 303)


def _overview(errors: dict[str, list[str]] | None = None, status: int = 200) -> tuple[str, int]:
    overview = services().account_settings.overview(_token())
    provider = services().extras.get("consents")  # OIDC consents, when OpenID Connect is enabled
    consents = provider.list(overview.account.id) if provider is not None else None
    allow_urls(link_targets(overview.account.id))  # « Lier FranceConnect » leads to the provider
    return render_template("account_overview.html", o=overview, rules=password_rules(), errors=errors or {},
                           consents=consents), status


@bp.get("/compte")
def overview() -> ResponseReturnValue:
    """The account page: an overview with a link to each change."""
    return _overview()


def _problems(exc: FormProblem) -> tuple[list[str], int, dict[str, str]]:
    """A form's problems for ``change_page``: each beside its field, the others in the summary at the top."""
    return ([] if exc.fields else exc.reasons), 400, exc.fields


def change_page(template: str, errors: list[str] | None = None, status: int = 200,
                field_errors: dict[str, str] | None = None, **context: object) -> tuple[str, int]:
    """One of the change pages, for the person logged in, with the form's problems."""
    _, account = services().account_settings.current(_token())
    return render_template(template, a=account, errors=errors or [], field_errors=field_errors or {},
                           rules=password_rules(), form=request.form,
                           checklist=checklist(services().accounts.password_context(account)), **context), status


@bp.get("/compte/mot-de-passe")
def password_page() -> ResponseReturnValue:
    """"Changer mon mot de passe": the current one, the new one twice with the rules."""
    return change_page("account_password.html")


@bp.get("/compte/franceconnect")
def federation_page() -> ResponseReturnValue:
    """Link or unlink the upstream identity (FranceConnect), the current password typed again."""
    return change_page("account_federation.html")


@bp.get("/compte/<kind>")
def contact_page(kind: str) -> ResponseReturnValue:
    """"Changer mon numéro de téléphone portable" or "… mon adresse mail": a code goes to the new one."""
    if kind not in CHANNELS:
        return _overview({}, 404)
    return change_page("account_contact.html", kind=kind)


@bp.post("/compte/mot-de-passe")
def change_password() -> ResponseReturnValue:
    """Change the password: the current one is required; the other sessions end; a notice is sent."""
    check_csrf()
    form = request.form
    try:
        ended = services().account_settings.change_password(
            _token(), form.get("actuel", "")[:1024], form.get("mot_de_passe", "")[:1024],
            form.get("confirmation", "")[:1024], ip=client_ip())
    except FormProblem as exc:
        return change_page("account_password.html", *_problems(exc))
    flash(ngettext("Votre mot de passe a été modifié. Votre autre appareil (%(n)s) a été déconnecté.",
                   "Votre mot de passe a été modifié. Vos autres appareils (%(n)s) ont été déconnectés.", ended)
          if ended else gettext("Votre mot de passe a été modifié."))
    return redirect(url_for("account.overview"), 303)


@bp.post("/compte/<kind>")
def start_change(kind: str) -> ResponseReturnValue:
    """A new e-mail address (``courriel``) or phone number (``telephone``): a code is sent to it."""
    check_csrf()
    if kind not in CHANNELS:
        return _overview({}, 404)
    channel = CHANNELS[kind]
    try:
        token = services().account_settings.start_contact_change(
            _token(), channel, request.form.get("valeur", "")[:254], request.form.get("actuel", "")[:1024],
            ip=client_ip(), browser_id=browser_id())
    except FormProblem as exc:
        return change_page("account_contact.html", *_problems(exc), kind=kind)
    except SendLimited as exc:
        body, status = change_page("account_contact.html", [exc.description], 429, kind=kind)
        return body, status, {"Retry-After": str(exc.retry_after_seconds)}
    session[TX] = {"token": token, "channel": channel.value}
    return redirect(url_for("account.confirm_page"), 303)


def _pending() -> tuple[str | None, Channel]:
    pending = session.get(TX)
    if not isinstance(pending, dict):
        return None, Channel.MAIL
    return pending.get("token"), Channel(pending.get("channel", "mail"))


@bp.get("/compte/confirmer")
def confirm_page() -> ResponseReturnValue:
    """"Saisissez le code reçu" at the new address."""
    token, channel = _pending()
    view = services().account_settings.contact_change_view(_token(), token, browser_id(), channel)
    return render_template("account_code.html", view=view, errors=[])


@bp.post("/compte/confirmer")
def confirm_submit() -> ResponseReturnValue:
    """The code is right: the new contact replaces the old one (which gets a notice)."""
    check_csrf()
    token, channel = _pending()
    settings_service = services().account_settings
    try:
        settings_service.confirm_contact_change(_token(), token, browser_id(), channel,
                                                request.form.get("code", ""), ip=client_ip())
    except TooManyAttempts as exc:
        session.pop(TX, None)
        flash(exc.description)
        return redirect(url_for("account.overview"), 303)
    except CodeRejected as exc:
        view = settings_service.contact_change_view(_token(), token, browser_id(), channel)
        return render_template("account_code.html", view=view, errors=[exc.description]), 400
    session.pop(TX, None)
    flash(gettext("Votre numéro de téléphone a été modifié.") if channel is Channel.SMS
          else gettext("Votre adresse mail a été modifiée."))
    return redirect(url_for("account.overview"), 303)


@bp.post("/compte/confirmer/renvoyer")
def confirm_resend() -> ResponseReturnValue:
    """A new code to the new address."""
    check_csrf()
    token, channel = _pending()
    settings_service = services().account_settings
    try:
        settings_service.resend_contact_code(_token(), token, browser_id(), channel, ip=client_ip())
    except SendLimited as exc:
        view = settings_service.contact_change_view(_token(), token, browser_id(), channel)
        return limited("account_code.html", exc, view=view)
    view = settings_service.contact_change_view(_token(), token, browser_id(), channel)
    return render_template("account_code.html", view=view, errors=[], notice=NEW_CODE)


@bp.post("/compte/sessions/<public_id>/terminer")
def end_session(public_id: str) -> ResponseReturnValue:
    """End one of the other sessions (another device)."""
    check_csrf()
    if services().account_settings.end_session(_token(), public_id[:64], ip=client_ip()):
        flash(gettext("L'appareil a été déconnecté."))
    return redirect(url_for("account.overview"), 303)


@bp.post("/compte/autorisations/<client_id>/retirer")
def withdraw_consent(client_id: str) -> ResponseReturnValue:
    """Withdraw the consent given to a service: its access to the account ends at once."""
    check_csrf()
    provider = services().extras.get("consents")
    _, account = services().account_settings.current(_token())
    if provider is not None and provider.withdraw(account.id, client_id[:64], ip=client_ip()):
        flash(gettext("Votre autorisation a été retirée : ce service n'a plus accès à votre compte."))
    return redirect(url_for("account.overview"), 303)
