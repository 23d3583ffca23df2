"""The portal front-end: a person who comes straight to us logs in and lands on "Mes services"."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, redirect, request, url_for
from flask.typing import ResponseReturnValue

from idp.core.authn.flow import Client, LoginOutcome
from idp.core.authn.model import Assertion, AuthnRequest
from idp.web.login import login_screen, submit_form
from idp.web.security import browser_id, sso_token
from idp.wiring import Services

PORTAL = Client(protocol="portal", client_id="", name="Mes services")


class PortalFrontend:
    """The ``ProtocolFrontend`` for logins that do not come from a service provider."""

    name = "portal"
    #: Nothing to answer to a service provider: the login completes the request and goes to "Mes services"
    #: (one redirect less); ``resume`` still serves the detours (activation) that come back later.
    completes_at_login = True

    def blueprint(self) -> Blueprint:
        """The portal routes: start a login, resume after it."""
        return bp

    def resume_url(self, request_id: str) -> str:
        """After login, the portal shows "Mes services"."""
        return url_for("portal.resume", request_id=request_id)

    def answer_targets(self, req: AuthnRequest) -> list[str]:
        """"Mes services" is one of our own pages: no other origin."""
        return []

    def completed_url(self) -> str:
        """Where a login completed at the password step goes."""
        return url_for("login.my_services")


bp = Blueprint("portal", __name__)


def _hint() -> str:
    hint = request.args.get("profil", "")
    return hint if hint in ("parent", "eleve") else ""


@bp.get("/login")
def start() -> ResponseReturnValue:
    """Begin a direct login (``?profil=parent|eleve`` preselects the profile).

    Nothing is stored: the screen is shown at once and its form posts back here (``submit``), where the
    login itself completes the portal's request. A live SSO session goes straight to "Mes services".
    """
    services: Services = current_app.extensions["idp"]
    outcome = services.flow.begin(PORTAL, {}, browser_id(), sso_token(services.settings), profile_hint=_hint(),
                                  store=False)
    if isinstance(outcome, Assertion):
        return redirect(url_for("login.my_services"), 303)
    return login_screen(outcome)  # the screen itself: one redirect less on the way in


@bp.post("/login")
def submit() -> ResponseReturnValue:
    """The portal's login form: CSRF, throttle and password checks of every login, no request to read."""
    services: Services = current_app.extensions["idp"]
    req = services.flow.begin(PORTAL, {}, "", None, profile_hint=_hint(), store=False)  # nothing to bind
    assert isinstance(req, AuthnRequest)  # no session token: never answered from a session

    def run(identifier: str, password: str, **context: Any) -> LoginOutcome:
        return services.flow.login_unstored(req, identifier, password, **context)

    return submit_form(lambda: req, run)


@bp.get("/portal/resume/<request_id>")
def resume(request_id: str) -> ResponseReturnValue:
    """The login is done: close the request and show "Mes services"."""
    services: Services = current_app.extensions["idp"]
    services.flow.resume(request_id, browser_id(), sso_token(services.settings))
    return redirect(url_for("login.my_services"), 303)
