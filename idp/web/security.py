"""Web security: the browser id and CSRF token in the signed session cookie, the SSO cookie, headers."""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from flask import Flask, g, request, session
from werkzeug.wrappers import Response

from idp.errors import CsrfError
from idp.settings import Settings

CSRF_FIELD = "csrf_token"

CSP = "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'self'"


def browser_id() -> str:
    """A random id for this browser, kept in the signed session cookie; binds authentication requests to it."""
    bid = session.get("bid")
    if not isinstance(bid, str) or len(bid) != 43:
        bid = secrets.token_urlsafe(32)
        session["bid"] = bid
    return bid


def csrf_token() -> str:
    """The anti-forgery token for forms in this browser (synchroniser token in the signed session)."""
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) != 43:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf() -> None:
    """Refuse a form whose token is missing or wrong (SECURITY W03); SameSite alone is not relied upon."""
    sent = request.form.get(CSRF_FIELD, "")
    expected = session.get("csrf")
    if not isinstance(expected, str) or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfError()


def sso_cookie_name(settings: Settings) -> str:
    """``__Host-sso`` over https (Secure, Path=/, no Domain), a plain name in development over http."""
    return "__Host-sso" if settings.https else "idp_sso"


def sso_token(settings: Settings) -> str | None:
    """The SSO cookie of this request, if any."""
    return request.cookies.get(sso_cookie_name(settings))


def set_sso_cookie(response: Response, settings: Settings, token: str) -> None:
    """Set the SSO cookie: session-only, HttpOnly, SameSite=Lax, Secure over https."""
    response.set_cookie(sso_cookie_name(settings), token, secure=settings.https, httponly=True, samesite="Lax",
                        path="/")


def clear_sso_cookie(response: Response, settings: Settings) -> None:
    """Remove the SSO cookie from the browser."""
    response.delete_cookie(sso_cookie_name(settings), path="/", secure=settings.https, httponly=True, samesite="Lax")


def safe_next(target: str | None, default: str) -> str:
    """Only a local absolute path is followed after login or logout (SECURITY W09)."""
    if not target or len(target) > 512:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(c in target for c in "\\\r\n\t"):
        return default
    return target


def client_ip() -> str:
    """The caller's address (``ProxyFix`` has already applied the configured trusted hops)."""
    return (request.remote_addr or "")[:45]


def install_headers(app: Flask, settings: Settings) -> None:
    """Security headers on every response (SECURITY W04, W05) and ``no-store`` on pages."""

    @app.after_request
    def _headers(response: Response) -> Response:
        headers = response.headers
        if settings.https:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if not request.path.startswith("/static/"):
            headers.setdefault("Cache-Control", "no-store")
        if cid := getattr(g, "correlation_id", None):
            headers["X-Correlation-Id"] = cid
        return response
