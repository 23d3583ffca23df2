"""Single sign-on identity provider for schools: SAML 2.0, OpenID Connect and CAS 3.0 on one login."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from idp.settings import Settings, load_settings
from idp.wiring import Services, build_services

PROJECT_ROOT = Path(__file__).resolve().parent.parent

__all__ = ["create_app"]


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    """Build the Flask application: settings, services, blueprints, security headers, error pages."""
    from idp.observability import configure_logging
    from idp.web import register_web

    settings = settings or (services.settings if services else load_settings())
    services = services or build_services(settings)
    configure_logging(settings.logging)
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
        static_url_path="/static",
    )
    app.config.update(
        SECRET_KEY=settings.secret_key or None,
        MAX_CONTENT_LENGTH=settings.server.max_body_bytes,
        SESSION_COOKIE_NAME="__Host-session" if settings.https else "idp_session",
        SESSION_COOKIE_SECURE=settings.https,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/",
        PREFERRED_URL_SCHEME="https" if settings.https else "http",
        TEMPLATES_AUTO_RELOAD=settings.server.reload_templates,
    )
    if not settings.secret_key:
        from idp.errors import ConfigurationError

        raise ConfigurationError("clé secrète absente : lancez « idp init » ou définissez IDP_SECRET_KEY")
    app.extensions["idp"] = services
    register_web(app, services)
    return app
