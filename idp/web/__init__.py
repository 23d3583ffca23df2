"""The web edge: blueprints for the screens, error pages, security headers, correlation ids."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from flask import Flask, g, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from idp import metrics
from idp.core.i18n import N_
from idp.errors import IdpError, LoginThrottled, ServiceUnavailable
from idp.web import account, activation, federation, health, login, pages, password_change, portal, recovery
from idp.web.devices import install_filters
from idp.web.edge import CORRELATION_KEY, Edge
from idp.web.i18n import install_i18n
from idp.web.security import SessionCookie, cached_url_for, csrf_token, install_headers
from idp.web.staff import register_staff
from idp.web.timing import ROUTE_KEY, RequestTimer
from idp.wiring import Services

log = logging.getLogger("idp.web")

HTTP_MESSAGES = {
    400: N_("La demande est incorrecte."),
    403: N_("Accès refusé."),
    404: N_("Cette page n'existe pas."),
    405: N_("Cette action n'est pas possible sur cette page."),
    413: N_("Les informations envoyées sont trop volumineuses."),
    429: N_("Trop de demandes. Réessayez dans quelques minutes."),
}


def register_web(app: Flask, services: Services) -> None:
    """Plug the blueprints, headers and error pages into the application."""
    settings = services.settings
    app.jinja_env.globals.update(csrf_token=csrf_token, development=settings.server.development,
                                 product_name=settings.server.product_name, url_for=cached_url_for,
                                 brand=settings.brand)
    install_i18n(app, settings)
    install_filters(app)
    install_headers(app, settings)
    app.session_interface = SessionCookie()

    @app.before_request
    def _correlation() -> None:
        # Given by the edge (``idp.web.edge``) to every request, with its log lines and answer header.
        g.correlation_id = request.environ.get(CORRELATION_KEY) or secrets.token_hex(8)

    @app.before_request
    def _route() -> None:
        # The rule Flask matched, for the request timer's route label (``idp.web.timing``): no second match.
        if request.url_rule is not None:
            request.environ[ROUTE_KEY] = request.url_rule.rule

    portal_frontend = portal.PortalFrontend()
    services.frontends.setdefault(portal_frontend.name, portal_frontend)
    back_channel: dict[str, Any] = {}  # back-channel endpoints: WSGI handlers, never Flask views
    for frontend in services.frontends.values():
        app.register_blueprint(frontend.blueprint())
        if (routes := getattr(frontend, "back_channel", None)) is not None:
            back_channel.update(routes())
    for blueprint in (login.bp, pages.bp, health.bp, activation.bp, recovery.bp, account.bp, federation.bp,
                      password_change.bp):
        app.register_blueprint(blueprint)
    register_staff(app)
    app.wsgi_app = Edge(app.wsgi_app, settings, back_channel)  # type: ignore[method-assign]
    if settings.server.trusted_proxies:  # outermost: every handler sees the client's address and scheme
        hops = settings.server.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    app.wsgi_app = RequestTimer(app.wsgi_app, app.url_map)  # type: ignore[method-assign]
    _register_errors(app)


def _error_page(status: int, message: str, title: str = N_("Une erreur est survenue")) -> tuple[str, int]:
    return render_template("error.html", title=title, message=message,
                           correlation_id=getattr(g, "correlation_id", "")), status


def _backend(exc: BaseException) -> str:
    """Which part did not answer: ``redis`` or ``database`` (from the exception the outage was raised from)."""
    cause = exc.__cause__
    return "redis" if cause is not None and type(cause).__module__.startswith("redis") else "database"


def _register_errors(app: Flask) -> None:
    @app.errorhandler(ServiceUnavailable)
    def _unavailable(exc: ServiceUnavailable) -> tuple[str, int, dict[str, str]]:
        services: Services = app.extensions["idp"]
        metrics.DB_UNAVAILABLE.labels(backend=_backend(exc)).inc()
        body, status = _error_page(503, exc.description, exc.title)
        return body, status, {"Retry-After": str(services.settings.server.outage_retry_after_seconds)}

    @app.errorhandler(LoginThrottled)
    def _throttled(exc: LoginThrottled) -> tuple[str, int, dict[str, str]]:
        body, status = _error_page(429, exc.description, exc.title)
        return body, status, {"Retry-After": str(exc.retry_after_seconds)}

    @app.errorhandler(IdpError)
    def _idp_error(exc: IdpError) -> tuple[str, int]:
        log.info("request refused: %s", exc.code)
        return _error_page(exc.http_status, exc.description, exc.title)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[str, int]:
        status = exc.code or 500
        return _error_page(status, HTTP_MESSAGES.get(status, N_("La demande n'a pas pu être traitée.")))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[str, int]:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _error_page(500, N_("Une erreur inattendue est survenue. Si elle se reproduit, "
                                   "communiquez le code ci-dessous à votre établissement."))
