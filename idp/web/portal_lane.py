"""The portal's login route served by a small WSGI dispatch in front of Flask (the hot path of a direct login).

Three requests make a person's login at the portal: ``GET /login`` (the form), ``POST /login`` (identifier
and password) and ``GET /services`` ("Mes services"). Flask's request context, routing, session interface and
response objects cost about a quarter of a millisecond per request here; this lane answers the common case of
each one itself, with the same code and checks as the Flask views and the same bytes and headers:

- ``GET /login`` with no query or ``?profil=parent|eleve`` and no SSO cookie: the cached screen
  (``login.cached_portal_screen``) with this browser's anti-forgery token, and a new browser cookie when the
  browser has none;
- ``POST /login`` (urlencoded, read by ``idp.web.wsgiform`` as werkzeug would, same query): the anti-forgery
  token (``csrf_matches``), the profile and the fields checked as ``submit_form`` does, then
  ``AuthnFlow.login_unstored`` — throttle, dummy verify, account state, the chosen profile (``WrongProfile``
  handed to Flask like any refusal), session rotation, rehash, audit line — and, on success, the 303
  to "Mes services" with the SSO cookie;
- ``GET /services`` with an SSO cookie: the session and the catalogue read as ``my_services`` does, and the
  cached page (``login.cached_services_page``) with the person's name and identifier.

Everything else goes to Flask: other paths, methods and queries, a page not rendered yet, an SSO cookie on the
form (Flask looks the session up), a body that is not small valid urlencoded UTF-8 or repeats a field (kept
and handed over), a failed anti-forgery or field check (nothing has been done: Flask checks again and
answers). Once the login has run, it never runs twice: its outcome (a provisional account's activation
detour) or its exception (wrong password, throttled, database down…) is handed to the Flask view in the WSGI
environ (``LANE_OUTCOME``), which renders it. Sits inside ``ProxyFix``: ``REMOTE_ADDR`` is the client's address for the throttle and the audit.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.http import dump_cookie, parse_cookie
from werkzeug.utils import redirect

from idp.core.accounts.model import Profile
from idp.core.authn.model import AuthnRequest
from idp.core.authn.policy import FULL_METHODS
from idp.observability import correlation_id
from idp.web import login
from idp.web.i18n import LANG_COOKIE, choose_language
from idp.web.portal import LANE_OUTCOME, PORTAL
from idp.web.security import (
    CSRF_FIELD,
    browser_cookie_name,
    csrf_matches,
    is_browser_id,
    security_headers,
    sso_cookie_name,
    token_for,
)
from idp.web.wsgiform import form_values, read_form
from idp.wiring import Services

log = logging.getLogger("idp.web")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: The queries the portal's screens are served with; any other goes to Flask (``login_hint``, unknown profile…).
_PROFILES = {"": "", "profil=parent": "parent", "profil=eleve": "eleve"}
#: A login form is a few hundred bytes; anything larger goes to Flask (and its ``MAX_CONTENT_LENGTH``).
MAX_FORM_BYTES = 4096

Answer = tuple[str, list[tuple[str, str]], bytes]


class PortalLane:
    """WSGI middleware: the common case of the portal's three login requests directly, the rest to ``app``."""

    def __init__(self, app: WsgiApp, services: Services) -> None:
        self._app = app
        self._services = services
        settings = services.settings
        self._https = settings.https
        self._key = settings.secret_key.encode()
        self._browser_cookie = browser_cookie_name(settings)
        self._sso_cookie = sso_cookie_name(settings)
        self._headers = [*security_headers(settings), ("Cache-Control", "no-store")]
        self._redirects: dict[str, bytes] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
        handler: Callable[[dict[str, Any], str], Answer | None]
        if path == "/login" and method == "GET":
            handler = self._form
        elif path == "/login" and method == "POST":
            handler = self._submit
        elif path == "/services" and method == "GET":
            handler = self._services_page
        else:
            return self._app(environ, start_response)
        cid = secrets.token_hex(8)
        context = correlation_id.set(cid)
        try:
            answer = handler(environ, environ.get("SCRIPT_NAME", "").rstrip("/"))
        except Exception:  # a bug here: Flask answers (with the login's outcome if it already ran)
            log.exception("portal lane failed on %s %s; handed to Flask", method, path)
            answer = None
        finally:
            correlation_id.reset(context)
        if answer is None:
            environ["idp.correlation_id"] = cid  # Flask's log lines and header keep the lane's id
            return self._app(environ, start_response)
        status, headers, body = answer
        start_response(status, [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body))),
                                *headers, *self._headers, ("X-Correlation-Id", cid)])
        return [body]

    def _language(self, environ: dict[str, Any], cookies: Any) -> str:
        """The page's language, chosen as Flask's locale selector does (``idp.web.i18n.choose_language``)."""
        return choose_language(cookies.get(LANG_COOKIE), environ.get("HTTP_ACCEPT_LANGUAGE"),
                               self._services.settings.i18n.languages)

    # --- the three requests ----------------------------------------------------------------------

    def _form(self, environ: dict[str, Any], root: str) -> Answer | None:
        """``portal.start`` for a browser without an SSO cookie: the screen, nothing stored."""
        profile = _PROFILES.get(environ.get("QUERY_STRING", ""))
        if profile is None:
            return None
        cookies = parse_cookie(environ)
        if cookies.get(self._sso_cookie):
            return None
        page = login.cached_portal_screen(root, profile, self._language(environ, cookies))
        if page is None:
            return None
        headers: list[tuple[str, str]] = []
        bid = cookies.get(self._browser_cookie)
        if not is_browser_id(bid):
            bid = secrets.token_urlsafe(32)
            headers.append(("Set-Cookie", dump_cookie(self._browser_cookie, bid, secure=self._https, httponly=True,
                                                      samesite="Lax", path="/")))
        body = login.fill_token(page, token_for(self._key, bid)) if profile else page
        return "200 OK", headers, body.encode("utf-8")

    def _submit(self, environ: dict[str, Any], root: str) -> Answer | None:
        """``portal.submit``: the checks of ``submit_form``, then the login itself, run once."""
        hint = _PROFILES.get(environ.get("QUERY_STRING", ""))
        body = read_form(environ, MAX_FORM_BYTES) if hint is not None else None
        form = form_values(body) if body is not None else None
        if form is None:
            return None
        cookies = parse_cookie(environ)
        if not csrf_matches(self._key, cookies.get(self._browser_cookie), form.get(CSRF_FIELD, "")):
            return None  # Flask refuses it (SECURITY W03) with its error page
        identifier, password = form.get("identifiant", ""), form.get("mot_de_passe", "")
        profile = Profile.from_choice(hint or "")
        if profile is None or login.field_problem(identifier, password):
            return None  # Flask asks for the profile, or shows the form again with the reason
        flow = self._services.flow
        request = flow.begin(PORTAL, {}, "", None, profile_hint=profile.choice, store=False)
        assert isinstance(request, AuthnRequest)  # no session token: never answered from a session
        try:
            outcome = flow.login_unstored(request, identifier, password, profile=profile,
                                          ip=(environ.get("REMOTE_ADDR") or "")[:45],
                                          user_agent=environ.get("HTTP_USER_AGENT", ""),
                                          old_token=cookies.get(self._sso_cookie))
        except Exception as exc:  # noqa: BLE001 - wrong password, throttled, outage…: Flask renders it
            environ[LANE_OUTCOME] = exc
            return None
        environ[LANE_OUTCOME] = outcome  # whatever happens next, Flask never runs this login again
        if outcome.needs_activation or outcome.request.completed_at is None:
            return None  # the activation detour: Flask builds its address
        location = root + "/services"
        page = self._redirects.get(location)
        if page is None:
            page = self._redirects[location] = redirect(location, 303).get_data()
        cookie = dump_cookie(self._sso_cookie, outcome.token, secure=self._https, httponly=True, samesite="Lax",
                             path="/")
        return "303 SEE OTHER", [("Location", location), ("Set-Cookie", cookie)], page

    def _services_page(self, environ: dict[str, Any], root: str) -> Answer | None:
        """``login.my_services`` for a live session with full credentials."""
        if environ.get("QUERY_STRING"):
            return None
        cookies = parse_cookie(environ)
        token = cookies.get(self._sso_cookie)
        if not token:
            return None
        try:
            found, entries = login.session_and_services(self._services, token)
        except Exception:  # noqa: BLE001 - reads only: Flask runs them again and renders the error
            return None
        if found is None or found[0].auth_method not in FULL_METHODS:
            return None  # Flask sends the person to the login or to the activation steps
        account = found[1]
        page = login.cached_services_page(root, account.profile, entries, self._language(environ, cookies))
        if page is None:
            return None
        return "200 OK", [], login.fill_services_page(page, account).encode("utf-8")
