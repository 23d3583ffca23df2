"""The CAS browser routes under ``/cas`` (CAS 3.0 §2.1–§2.3) and ``/proxy`` (§2.7): each view parses, calls the
server once, renders. The validation endpoints are WSGI handlers (``idp.cas.validation``)."""

from __future__ import annotations

import base64
import hashlib

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from idp.cas import responses, validation
from idp.cas.mapping import LOGIN_FAILURE, LoginFailureAction
from idp.cas.parameters import login_parameters
from idp.cas.registry import ServiceUrl, UnknownService
from idp.cas.server import CasServer
from idp.cas.tickets import TicketProblem, TicketRejected
from idp.core.authn.flow import Client
from idp.core.authn.model import Assertion
from idp.errors import AuthnFailed, ServiceUnavailable
from idp.storage.cas_store import CasServiceRecord
from idp.web.form_targets import allow_logout_of
from idp.web.security import autopost_policy, browser_id, check_csrf, clear_sso_cookie, client_ip, sso_token
from idp.wiring import Services

bp = Blueprint("cas", __name__, url_prefix="/cas")

#: The only script of the POST answer page; its hash goes in that page's CSP (the button works without it).
AUTOPOST_SCRIPT = "document.getElementById('cas-post').submit();"
AUTOPOST_HASH = "sha256-" + base64.b64encode(hashlib.sha256(AUTOPOST_SCRIPT.encode()).digest()).decode()


def _services() -> Services:
    return current_app.extensions["idp"]  # type: ignore[no-any-return]


def _cas() -> CasServer:
    return _services().extras["cas"]  # type: ignore[no-any-return]


@bp.errorhandler(UnknownService)
def _unknown_service(exc: UnknownService) -> ResponseReturnValue:
    current_app.logger.warning("cas: unregistered service refused on %s", request.path)
    return render_template("cas_error.html", title=exc.title, message=exc.description), 400


# --- /login (§2.1, §2.2) ---------------------------------------------------------------------------


@bp.get("/login")
def login() -> ResponseReturnValue:
    """Answer a registered service from the SSO session, or send the person to the common login."""
    services, cas = _services(), _cas()
    asked = login_parameters(request.args)
    if not asked.service:
        return redirect(url_for("portal.start"), 303)
    url, service = cas.resolve(asked.service)
    method = asked.method
    try:
        outcome = services.flow.begin(Client("cas", service.service_id, service.name),
                                      {"service": asked.service, "method": method}, browser_id(),
                                      sso_token(services.settings), force_authn=asked.renew,
                                      passive=asked.passive)
    except AuthnFailed as exc:
        if LOGIN_FAILURE[exc.failure] is LoginFailureAction.RETURN_WITHOUT_TICKET:
            return redirect(url.with_ticket(""), 302)
        raise
    if isinstance(outcome, Assertion):
        return _answer(cas, outcome, url, service, method)
    return redirect(url_for("login.login_page", request_id=outcome.id), 303)


@bp.get("/resume/<request_id>")
def resume(request_id: str) -> ResponseReturnValue:
    """After the common login: issue the ticket (marked fresh: credentials were just presented)."""
    services, cas = _services(), _cas()
    assertion = services.flow.resume(request_id, browser_id(), sso_token(services.settings))
    url, service = cas.resolve(str(assertion.request.payload.get("service", "")))
    return _answer(cas, assertion, url, service, str(assertion.request.payload.get("method", "GET")))


def _answer(cas: CasServer, assertion: Assertion, url: ServiceUrl, service: CasServiceRecord,
            method: str) -> ResponseReturnValue:
    ticket = cas.issue(service, url, assertion.account, assertion.session, fresh=assertion.fresh_login)
    if method != "POST":
        return redirect(url.with_ticket(ticket), 302)
    page = render_template("cas_post.html", action=url.normalised, ticket=ticket, script=AUTOPOST_SCRIPT)
    csp = autopost_policy(url.origin, f"'{AUTOPOST_HASH}'")
    return Response(page, 200, {"Content-Security-Policy": csp, "Referrer-Policy": "no-referrer"})


# --- /logout (§2.3) --------------------------------------------------------------------------------


def _return_to() -> ServiceUrl | None:
    raw = request.values.get("service", "")  # the CAS 2.0 ``url`` parameter is ignored (§2.3.1)
    return _cas().resolve(raw)[0] if raw else None


@bp.get("/logout")
def logout_page() -> ResponseReturnValue:
    """Ask for confirmation: a GET never ends a session (a link elsewhere could, SECURITY W03)."""
    services = _services()
    target = _return_to()
    current = services.flow.current_session(sso_token(services.settings))
    if current is None:
        return render_template("cas_logged_out.html", target=target)
    allow_logout_of(current[0])
    return render_template("cas_logout_confirm.html", account=current[1],
                           service=request.args.get("service", "") if target else "")


@bp.post("/logout")
def logout_submit() -> ResponseReturnValue:
    """End the SSO session, run every single-logout hook, then offer the link back to the service."""
    check_csrf()
    services = _services()
    target = _return_to()
    session = services.flow.logout(sso_token(services.settings), client_ip())
    chain = back = url_for("cas.logout_page", service=request.values.get("service") if target else None)
    if session is not None:
        services.extras["logout_hooks"].run([session])
        # A session opened through FranceConnect ends there too (F08), then comes back to this logged-out
        # page (GET /cas/logout without a session), with the link back to the service if there is one.
        for wrap in services.extras.get("logout_wrappers", []):
            chain = wrap(session, chain) or chain
    if chain != back:
        response = redirect(chain, 303)
    else:
        response = current_app.make_response(render_template("cas_logged_out.html", target=target))
    clear_sso_cookie(response, services.settings)
    return response


# --- validation (§2.4–§2.9) and /proxy (§2.7) ------------------------------------------------------


def _format() -> str | None:
    return validation.requested_format(request.values)


def _reply(body: bytes, content_type: str, status: int = 200) -> Response:
    headers = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
    if status == 503:
        headers.append(("Retry-After", str(_services().settings.server.outage_retry_after_seconds)))
    return Response(body, status, headers, content_type=content_type)


def _failure(problem: TicketProblem, fmt: str, element: str = "authenticationFailure") -> Response:
    status, body, content_type = validation.failure(problem, fmt, element)
    return _reply(body, content_type, status)


# The validation paths (§2.4–§2.9) are not Flask views: ``idp.cas.validation`` answers them.


@bp.route("/proxy", methods=["GET", "POST"])
def proxy() -> Response:
    """A proxy ticket for ``targetService`` from a proxy-granting ticket (§2.7)."""
    fmt = _format()
    if fmt is None:
        return _failure(TicketProblem.UNSUPPORTED_FORMAT, "XML", "proxyFailure")
    try:
        ticket = _cas().proxy(request.values.get("pgt", ""), request.values.get("targetService", ""))
    except TicketRejected as exc:
        return _failure(exc.problem, fmt, "proxyFailure")
    except ServiceUnavailable:
        return _failure(TicketProblem.OUTAGE, fmt, "proxyFailure")
    content_type = responses.JSON_TYPE if fmt == "JSON" else responses.XML_TYPE
    return _reply(responses.proxy_success(ticket, json_format=fmt == "JSON"), content_type)
