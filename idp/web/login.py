"""The common login screens: profile choice, identifier and password, logout, "Mes services"."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from markupsafe import escape

from idp.core.accounts.identifiers import normalise_login_input
from idp.core.accounts.model import Account, Profile
from idp.core.authn.flow import LoginOutcome
from idp.core.authn.model import AuthMethod, AuthnRequest, SsoSession
from idp.core.authn.policy import FULL_METHODS
from idp.core.authn.sessions import find_session_with_account
from idp.core.i18n import N_
from idp.core.ports import ServiceEntry
from idp.errors import InvalidCredentials, LoginThrottled, WrongProfile
from idp.web.form_targets import allow_answer_to, allow_logout_of
from idp.web.frontend import completing_protocols
from idp.web.security import (
    browser_id,
    cached_url_for,
    check_csrf,
    clear_sso_cookie,
    client_ip,
    csrf_token,
    set_sso_cookie,
    sso_token,
)
from idp.wiring import Services

bp = Blueprint("login", __name__)

PROFILES = {"parent": N_("Représentant légal"), "eleve": N_("Élève")}
MAX_IDENTIFIER = 64
MAX_PASSWORD = 1024


def _services() -> Services:
    return current_app.extensions["idp"]  # type: ignore[no-any-return]


def _profile(req: AuthnRequest) -> str:
    chosen = request.values.get("profil") or req.profile_hint
    return chosen if chosen in PROFILES else ""


def _screen_path(req: AuthnRequest) -> str:
    """The login screen's own address: ``/login/<id>`` for a stored request, ``/login`` for the portal's
    unstored one. The form posts to it, the profile links and the "depuis" links of the page name it."""
    if req.id:
        return url_for("login.login_page", request_id=req.id)
    return cached_url_for("portal.start")


def _render_screen(req: AuthnRequest, profile: str, *, error: str = "", identifier: str = "",
                   **context: object) -> str:
    here = _screen_path(req)
    if not profile:
        return render_template("login_profile.html", req=req, here=here, profiles=PROFILES, error=error,
                               switch_back=here, **context)
    return render_template("login_form.html", req=req, here=here, profile=profile, profile_label=PROFILES[profile],
                           error=error, identifier=identifier, switch_back=f"{here}?profil={profile}", **context)


def _render_form(req: AuthnRequest, profile: str, *, error: str, identifier: str, status: int = 200,
                 **context: object) -> tuple[str, int]:
    """The form again, for the same pending request (its CSP allows that request's service, S31)."""
    allow_answer_to(req)
    return _render_screen(req, profile, error=error, identifier=identifier, **context), status


@bp.get("/login/<request_id>")
def login_page(request_id: str) -> ResponseReturnValue:
    """Profile choice first ("Représentant légal" / "Élève"), then the identifier and password form."""
    return login_screen(_services().flow.pending(request_id, browser_id()))


#: The portal's screens (profile choice, empty form) are the same page for everyone but the form's anti-forgery
#: token: rendered once per profile and script root, the token written in at each request (~0.2 ms of Jinja).
#: A stored request's screens differ by its id too (``/login/<id>`` in its links and form): rendered once per
#: script root, profile, protocol and service name, the id written in (a ``token_urlsafe`` value: the same
#: once escaped or URL-quoted, so it is written verbatim where Jinja would have written it).
_TOKEN_SLOT = "csrf-token-slot-7c1e5b"
_ID_SLOT = "request-id-slot-4f0c2a"
def _lang() -> str:
    """The page's language, part of every cached page's key (``idp.web.i18n``)."""
    return str(get_locale())


def login_screen(req: AuthnRequest) -> ResponseReturnValue:
    """The screen of a pending request: the profile choice, or the form once the profile is known.

    The portal's ``GET /login`` answers with it at once (no redirect); a stored request's screen lives at
    ``/login/<id>``, and every link and the form on it name that address."""
    profile = _profile(req)
    allow_answer_to(req)  # the form's answer goes on to the service (SECURITY S31)
    identifier = request.args.get("login_hint", "")[:MAX_IDENTIFIER]
    if identifier:
        return _render_screen(req, profile, identifier=identifier)
    if req.id:
        page = _cached("stored_screen", (request.script_root, profile, req.protocol, req.client_name, _lang()),
                       lambda: _render_screen(dataclasses.replace(req, id=_ID_SLOT), profile,
                                              csrf_token=lambda: _TOKEN_SLOT)).replace(_ID_SLOT, req.id)
    else:
        page = _cached("portal_screen", (request.script_root, profile, _lang()),
                       lambda: _render_screen(req, profile, csrf_token=lambda: _TOKEN_SLOT))
    return fill_token(page, csrf_token()) if profile else page


def _cached(kind: str, key: tuple[Any, ...], render: Callable[[], str]) -> str:
    """A page rendered once per key (kept with the process's other caches, ``idp.caches``)."""
    page: str = _services().caches.pages.render((kind, *key), render)
    return page


def fill_token(page: str, token: str) -> str:
    """A cached form with this browser's anti-forgery token written in."""
    return page.replace(_TOKEN_SLOT, token)


@bp.post("/login/<request_id>")
def login_submit(request_id: str) -> ResponseReturnValue:
    """Check the credentials; on success answer with 303 to the front-end's resume URL (RFC 9700 §4.12)."""
    services = _services()
    return submit_form(
        lambda: services.flow.pending(request_id, browser_id()),
        lambda identifier, password, **context: services.flow.login(
            request_id, browser_id(), identifier, password,
            complete_protocols=completing_protocols(services.frontends), **context))


#: The login itself, given the identifier, the password and the request's context (ip, user agent, old cookie).
LoginRun = Callable[..., LoginOutcome]


def submit_form(form_request: Callable[[], AuthnRequest], run: LoginRun) -> ResponseReturnValue:
    """The login form's POST, for a stored request (``/login/<id>``) or the portal's unstored one.

    CSRF first; ``form_request`` gives the request to show the form again (for a stored one it also checks
    that the request is still pending in this browser); ``run`` checks the password (throttle included).
    """
    check_csrf()
    services = _services()
    identifier = request.form.get("identifiant", "")
    password = request.form.get("mot_de_passe", "")
    chosen = request.values.get("profil", "")
    profile = Profile.from_choice(chosen if chosen in PROFILES else _profile(form_request()))
    if profile is None:  # no screen of ours posts without a profile: ask for it, check nothing
        return _render_screen(form_request(), "", error=N_("Choisissez d'abord votre profil.")), 400
    problem = field_problem(identifier, password)
    if problem:
        return _render_form(form_request(), profile.choice, error=problem, identifier=identifier[:MAX_IDENTIFIER],
                            status=400)
    try:
        outcome = run(identifier, password, profile=profile, ip=client_ip(),
                      user_agent=request.headers.get("User-Agent", ""), old_token=sso_token(services.settings))
    except InvalidCredentials as exc:
        return _render_form(form_request(), profile.choice, error=exc.description, tries_left=exc.tries_left,
                            identifier=normalise_login_input(identifier))
    except WrongProfile as exc:  # the right password: name the account's profile, link to its form
        return _render_form(form_request(), profile.choice, error="", identifier=normalise_login_input(identifier),
                            wrong_profile=exc.profile)
    except LoginThrottled as exc:  # the lockout: the delay, the way out, the same service (SECURITY W07)
        page, _ = _render_form(form_request(), profile.choice, error="", lockout_minutes=exc.retry_after_minutes,
                               identifier=normalise_login_input(identifier))
        return page, 429, {"Retry-After": str(exc.retry_after_seconds)}
    request_id = outcome.request.id
    frontend = services.frontends[outcome.request.protocol]
    if outcome.needs_activation:  # without a stored request, the activation ends on "Mes services"
        target = url_for("activation.first_login", request_id=request_id)
    elif outcome.needs_password_change:  # a campaign: the new password before any answer
        target = url_for("password_change.form", demande=request_id or None)
    elif outcome.request.completed_at is not None:
        target = frontend.completed_url()  # type: ignore[attr-defined]
    else:
        target = frontend.resume_url(request_id)
    response = redirect(target, 303)
    set_sso_cookie(response, services.settings, outcome.token)
    return response


def field_problem(identifier: str, password: str) -> str:
    """Why the form cannot be checked as sent (empty or oversized fields), or "" when it can."""
    if not identifier.strip() or not password:
        return N_("Saisissez votre identifiant et votre mot de passe.")
    if len(identifier) > MAX_IDENTIFIER:
        return N_("L'identifiant saisi est trop long : il a la forme p.nom suivie d'un nombre.")
    if len(password) > MAX_PASSWORD:
        return N_("Le mot de passe saisi est trop long.")
    return ""


def session_and_services(services: Services, token: str | None) -> tuple[tuple[SsoSession, Account] | None,
                                                                         Sequence[ServiceEntry]]:
    """The live session behind an SSO cookie with its account, and the catalogue ("Mes services")."""
    with services.uow.autocommit() as uow:
        found = find_session_with_account(uow, token, services.flow.session_policy, services.clock)
        entries = uow.services.list_enabled() if found else []
        uow.commit()
    return found, entries


@bp.get("/services")
def my_services() -> ResponseReturnValue:
    """"Mes services": the registered service providers, for a logged-in person."""
    services = _services()
    found, entries = session_and_services(services, sso_token(services.settings))
    if found is None:
        return redirect(url_for("portal.start"), 303)
    session, account = found
    if session.auth_method is AuthMethod.PASSWORD_CHANGE:  # a campaign: the new password first
        return redirect(url_for("password_change.form"), 303)
    if session.auth_method not in FULL_METHODS:
        # Provisional credentials open nothing but the activation steps.
        return redirect(url_for("pages.activation_pending"), 303)
    stand_in = SimpleNamespace(display_name=_NAME_SLOT, identifier=_IDENTIFIER_SLOT, profile=account.profile)
    page = _cached("services_page", (request.script_root, account.profile, tuple(entries), _lang()),
                   lambda: render_template("services.html", account=stand_in, entries=entries))
    return fill_services_page(page, account)


#: "Mes services" is the same page for everyone with the same profile and catalogue but the person's name and
#: identifier: rendered once per (script root, profile, catalogue), both written in (escaped) at each request.
_NAME_SLOT = "name-slot-5d2a90c4"
_IDENTIFIER_SLOT = "identifier-slot-93be17f0"
_SLOTS = re.compile(f"{_NAME_SLOT}|{_IDENTIFIER_SLOT}")


def fill_services_page(page: str, account: Account) -> str:
    """A cached "Mes services" page with this person's name and identifier, escaped as Jinja would."""
    values = {_NAME_SLOT: str(escape(account.display_name)), _IDENTIFIER_SLOT: str(escape(account.identifier))}
    return _SLOTS.sub(lambda match: values[match.group(0)], page)


@bp.get("/")
def home() -> ResponseReturnValue:
    """The root goes to "Mes services" (which asks for a login when needed)."""
    return redirect(url_for("login.my_services"), 303)


@bp.get("/logout")
def logout_page() -> ResponseReturnValue:
    """Ask for confirmation (a GET never logs out: a link on another site could otherwise do it)."""
    services = _services()
    current = services.flow.current_session(sso_token(services.settings))
    if current is None:
        return render_template("logged_out.html")
    allow_logout_of(current[0], front_channel=True)
    return render_template("logout_confirm.html", account=current[1])


@bp.post("/logout")
def logout_submit() -> ResponseReturnValue:
    """End the SSO session, run the single-logout hooks, forget the cookie.

    Back-channel hooks (CAS, OIDC) run here; a front-channel chain (SAML: each SP visited in turn with a
    LogoutRequest) takes the browser from here and ends on the logged-out page.
    """
    check_csrf()
    services = _services()
    session = services.flow.logout(sso_token(services.settings), client_ip())
    chain = None
    if session is not None:
        services.extras["logout_hooks"].run([session])
        for start_chain in services.extras.get("logout_redirects", []):
            chain = chain or start_chain(session)
        for wrap in services.extras.get("logout_wrappers", []):  # e.g. the upstream provider's logout
            chain = wrap(session, chain)
    if chain:
        response = redirect(chain, 303)
    else:
        response = current_app.make_response(render_template("logged_out.html"))
    clear_sso_cookie(response, services.settings)
    return response
