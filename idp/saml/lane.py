"""``GET /saml/sso/redirect`` served by a small WSGI dispatch in front of Flask (the hot path of SAML SSO).

When the browser brings both its browser cookie and an SSO cookie, the request is decoded and checked, the
common login is asked (``views.decide``: the same code as the Flask view, every check kept: signature,
Destination, IssueInstant, ACS from metadata, replay record in the shared database, SSO session expiry,
ForceAuthn, IsPassive, NameIDPolicy, session participant) and an autopost answer is written here with the
headers Flask would add to it: the page's own CSP and ``Referrer-Policy: no-referrer``, then
``X-Frame-Options``, ``X-Content-Type-Options``, ``Cross-Origin-Opener-Policy``, HSTS over https,
``Cache-Control: no-store`` and the request's ``X-Correlation-Id`` (also in every log line of the request).

Everything else goes to Flask: another path or method, a browser without those cookies (a new browser
cookie is set there), a query Flask decodes differently, a request that fails its checks (nothing has been
written yet, so Flask simply runs it again and renders the error), the page not yet pre-rendered. Once the
login has been asked, nothing is run twice: what was decided (a login to ask for, an exception to turn into
an error page) is handed to the Flask view in the WSGI environ (``views.LANE_OUTCOME``).
This skips Flask's request context, routing, session cookie and ``after_request`` hooks for the answer.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.http import parse_cookie

from idp.observability import correlation_id
from idp.saml import binding, views
from idp.saml.idp import PostForm
from idp.web.security import browser_cookie_name, is_browser_id, sso_cookie_name
from idp.wiring import Services

if TYPE_CHECKING:
    from idp.saml.idp import SamlIdp

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

PATH = "/saml/sso/redirect"


class SsoLane:
    """WSGI middleware: SSO-session answers to ``GET /saml/sso/redirect`` directly, the rest to ``app``."""

    def __init__(self, app: WsgiApp, services: Services, idp: SamlIdp) -> None:
        self._app = app
        self._services = services
        self._idp = idp
        settings = services.settings
        self._browser_cookie = browser_cookie_name(settings)
        self._sso_cookie = sso_cookie_name(settings)
        self._endpoint = idp.config.url(PATH)
        # What ``idp.web.security.install_headers`` adds to the autopost page (its CSP and Referrer-Policy
        # are the page's own), in the same order.
        self._headers = [("X-Frame-Options", "DENY"), ("X-Content-Type-Options", "nosniff"),
                         ("Cross-Origin-Opener-Policy", "same-origin")]
        if settings.https:
            self._headers.insert(0, ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
        self._headers.append(("Cache-Control", "no-store"))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "GET":
            return self._app(environ, start_response)
        cookies = parse_cookie(environ)
        bid = cookies.get(self._browser_cookie)
        token = cookies.get(self._sso_cookie)
        if not token or not is_browser_id(bid):
            return self._app(environ, start_response)
        cid = secrets.token_hex(8)
        context = correlation_id.set(cid)
        try:
            answer = self._answer(environ, bid, token)
            if answer is None:
                environ["idp.correlation_id"] = cid
                return self._app(environ, start_response)
        finally:
            correlation_id.reset(context)
        body, csp = answer
        data = body.encode("utf-8")
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(data))),
                                  ("Content-Security-Policy", csp), ("Referrer-Policy", "no-referrer"),
                                  *self._headers, ("X-Correlation-Id", cid)])
        return [data]

    def _answer(self, environ: dict[str, Any], bid: str, token: str) -> tuple[str, str] | None:
        """The page and its CSP, or None when Flask answers (with the outcome in the environ if decided)."""
        services, idp = self._services, self._idp
        try:
            query = environ.get("QUERY_STRING", "").encode("latin-1")
            inbound = binding.decode_redirect(query, "SAMLRequest", idp.config)
            result = views.check_request(services, idp, inbound, self._endpoint)
        except Exception:  # noqa: BLE001 - nothing written yet: Flask runs the request again and answers
            return None
        try:
            outcome: Any = result if isinstance(result, PostForm) else \
                views.decide(services, idp, result[0], result[1], bid, token)
            page = views.cached_post_page(idp, environ.get("SCRIPT_NAME", "").rstrip("/"),
                                          outcome.relay_state is not None) if isinstance(outcome, PostForm) else None
            if page is not None:
                return views.assemble_post(page, outcome)
        except Exception as exc:  # noqa: BLE001 - rendered by Flask's error handlers, not run again
            outcome = exc
        environ[views.LANE_OUTCOME] = outcome
        return None
