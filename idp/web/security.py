"""Web security: the browser cookie and the CSRF token derived from it, the SSO cookie, headers.

The browser id is a random 256-bit value in its own HttpOnly cookie: it binds pending authentication requests
to the browser (through its hash) and the CSRF token is an HMAC of it under the application's secret (the
signed double-submit pattern), so the login route never has to sign, compress and parse Flask's session
cookie. Signing the id itself would add nothing: it is unguessable, and an attacker who plants their own
cookie (impossible under the ``__Host-`` prefix over https) knows its token whether it is signed or not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from flask import Flask, Request, current_app, g, request, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from werkzeug.wrappers import Response

from idp.errors import CsrfError
from idp.settings import Settings

CSRF_FIELD = "csrf_token"

#: ``img-src data:``: the design system's stylesheet draws the Marianne, the FranceConnect logo, checkboxes and
#: selects as inline SVG images (static/dsfr/dsfr.min.css); images cannot run script, everything else stays 'self'.
_CSP_FIXED = ("default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; object-src 'none'; base-uri 'none'; "
              "form-action 'self'")


def content_security_policy(form_targets: Iterable[str] = ()) -> str:
    """The CSP of our pages; ``form_targets`` are the origins (``scheme://host[:port]``) that this page's forms
    may end at besides our own: Chromium checks ``form-action`` on every redirect that follows a submission
    (CSP Level 3 §6.4.3, SECURITY S31). ``idp.web.form_targets`` computes them; nothing else may add any."""
    extra = sorted(set(form_targets))
    return _CSP_FIXED + "".join(" " + origin for origin in extra)


#: The CSP of a page with no pending request: forms post to this site only.
CSP = content_security_policy()


def autopost_policy(target_origin: str, script_source: str) -> str:
    """The CSP of an auto-submitted answer page (SAML HTTP-POST, CAS ``method=POST``): our page's own sources
    (``_CSP_FIXED``: stylesheets, fonts, the design system's ``data:`` images and script) plus the one inline
    script allowed by ``script_source`` (a nonce or a hash), and a form that may post to the service only."""
    base = _CSP_FIXED.replace("form-action 'self'", f"form-action {target_origin}")
    return f"{base}; script-src {script_source} 'self'"


def allow_form_targets(origins: Iterable[str]) -> None:
    """Let this response's forms end at these origins too (set by ``idp.web.form_targets`` only)."""
    g.form_targets = (*g.get("form_targets", ()), *origins)


BID_LENGTH = 43  # secrets.token_urlsafe(32)
_BID_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def browser_cookie_name(settings: Settings) -> str:
    """``__Host-browser`` over https (Secure, Path=/, no Domain), a plain name in development over http."""
    return "__Host-browser" if settings.https else "idp_browser"


def is_browser_id(value: str | None) -> TypeGuard[str]:
    """True for a browser id as ``browser_id`` makes them."""
    return value is not None and len(value) == BID_LENGTH and _BID_ALPHABET.issuperset(value)


def _cookie_bid() -> str | None:
    bid = request.cookies.get(browser_cookie_name(current_app.extensions["idp"].settings))
    return bid if is_browser_id(bid) else None


def browser_id() -> str:
    """A random id for this browser, kept in its own cookie (set with the answer when new)."""
    bid: str | None = g.get("browser_id") or _cookie_bid()
    if bid is None:
        bid = g.new_browser_id = secrets.token_urlsafe(32)
    g.browser_id = bid
    return bid


def token_for(key: bytes, bid: str) -> str:
    """The anti-forgery token of a browser id under the application's secret key."""
    digest = hmac.new(key, b"csrf\0" + bid.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _token_for(bid: str) -> str:
    return token_for(current_app.extensions["idp"].settings.secret_key.encode(), bid)


def csrf_token() -> str:
    """The anti-forgery token for forms in this browser: an HMAC of its browser id under the secret key."""
    return _token_for(browser_id())


def csrf_matches(key: bytes, bid: str | None, sent: str) -> bool:
    """Whether ``sent`` is the anti-forgery token of this browser id (a valid one) under the secret key."""
    return is_browser_id(bid) and bool(sent) and hmac.compare_digest(sent.encode(), token_for(key, bid).encode())


def check_csrf() -> None:
    """Refuse a form whose token is missing or wrong (SECURITY W03); SameSite alone is not relied upon."""
    key = current_app.extensions["idp"].settings.secret_key.encode()
    if not csrf_matches(key, _cookie_bid(), request.form.get(CSRF_FIELD, "")):
        raise CsrfError()


def _set_browser_cookie(response: Response, settings: Settings) -> None:
    if bid := g.get("new_browser_id"):
        response.set_cookie(browser_cookie_name(settings), bid, secure=settings.https, httponly=True,
                            samesite="Lax", path="/")


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


#: Arguments that templates only ever pass as literals: URLs built with nothing else are the same for every
#: request (per script root), so they are built once per process.
_LITERAL_ARGUMENTS = frozenset({"filename", "name", "profil"})
_URLS: dict[tuple[str, str, tuple[tuple[str, Any], ...]], str] = {}


def cached_url_for(endpoint: str, **values: Any) -> str:
    """``url_for`` for templates, remembering the URLs that cannot change (footer links, stylesheet)."""
    if not _LITERAL_ARGUMENTS.issuperset(values):
        return url_for(endpoint, **values)
    key = (request.script_root, endpoint, tuple(sorted(values.items())))
    url = _URLS.get(key)
    if url is None:
        url = url_for(endpoint, **values)
        if len(_URLS) < 1024:
            _URLS[key] = url
    return url


class SessionCookie(SecureCookieSessionInterface):
    """Flask's signed session cookie (activation and recovery steps), same format, same checks, with its signer
    built once per key instead of at every request: itsdangerous serializes a test value each time one is
    built (~0.1 ms), and most requests — the whole login route — carry no session cookie at all."""

    def __init__(self) -> None:
        self._signers: dict[tuple[Any, ...], URLSafeTimedSerializer | None] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        key = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        signer = self._signers.get(key, False)
        if signer is False:
            signer = super().get_signing_serializer(app)
            if len(self._signers) < 8:  # a key rotation adds one; never grows with requests
                self._signers[key] = signer
        return signer  # type: ignore[return-value]

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()  # nothing to verify: an empty session, as Flask would give
        return super().open_session(app, request)


def client_ip(of: Any = None) -> str:
    """The caller's address (``ProxyFix`` has already applied the configured trusted hops): Flask's current
    request's, or ``of``'s (anything with a ``remote_addr``: a back-channel handler's request)."""
    return ((of if of is not None else request).remote_addr or "")[:45]


def security_headers(settings: Settings) -> list[tuple[str, str]]:
    """The headers every response carries (SECURITY W04, W05), in order (``idp.web.edge`` adds them)."""
    fixed = [("Content-Security-Policy", CSP), ("X-Frame-Options", "DENY"), ("X-Content-Type-Options", "nosniff"),
             ("Referrer-Policy", "strict-origin-when-cross-origin"), ("Cross-Origin-Opener-Policy", "same-origin")]
    if settings.https:
        fixed.insert(0, ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
    return fixed


def install_headers(app: Flask, settings: Settings) -> None:
    """The browser cookie on pages that need one; the security headers (SECURITY W04, W05), ``no-store`` and the
    correlation id are added to every answer, Flask's and the back-channel handlers', by ``idp.web.edge``."""

    @app.after_request
    def _headers(response: Response) -> Response:
        targets = g.get("form_targets")
        if targets and "Content-Security-Policy" not in response.headers:  # a page with its own CSP keeps it
            response.headers["Content-Security-Policy"] = content_security_policy(targets)
        _set_browser_cookie(response, settings)
        return response
