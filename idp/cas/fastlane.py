"""The CAS hot routes served by a small WSGI dispatch in front of Flask: validations, and ``/cas/login`` from
the SSO session.

A ``GET`` to ``/cas/validate``, ``/cas/serviceValidate``, ``/cas/proxyValidate`` or their ``/p3/`` versions is
answered here: the query is parsed as werkzeug parses ``request.args`` (first value of a repeated parameter,
blank values kept, invalid percent escapes left as they are), the same code as the Flask views decides
(``idp.cas.validation``), and the answer carries what a server-to-server XML/JSON/text answer needs:
``Content-Type``, ``Cache-Control: no-store``, ``Pragma``, ``X-Content-Type-Options: nosniff``, HSTS over
https, ``Retry-After`` on a 503 and the request's ``X-Correlation-Id`` (also in every log line of the
request). The HTML security headers (CSP, frame options…) mean nothing on such an answer. Every other
request, and any request here the dispatch does not recognise exactly (another method, a query that is not
UTF-8), goes to the Flask application untouched — there, the same routes exist for ``POST`` and ``HEAD``.
This skips Flask's request context, routing, session cookie and ``after_request`` hooks: about two thirds of
a validation's CPU time.

A plain ``GET /cas/login?service=…`` (``idp.cas.parameters``: neither ``renew`` nor ``gateway`` set, no ``method``
but ``GET``) that carries the SSO cookie and a
well-formed browser cookie is answered here too when ``CasServer.sso_ticket`` can answer it (a registered
service without single logout, a live session of an active account, a session that already has this
service's attributes): the same 302 as the Flask view, byte for byte — werkzeug's redirect page, the
``Location`` with ``ticket=``, the headers of the application's ``after_request`` (CSP, frame options, HSTS over
https…), ``Cache-Control: no-store`` and the correlation id; no cookie is set, as the view sets none then.
Anything else — no session, a first ticket, an unknown service (the French error page), an outage (the 503
page) — goes to Flask, which decides everything again.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import werkzeug.urls  # noqa: F401  (registers the "werkzeug.url_quote" codec error handler used below)
from markupsafe import escape
from werkzeug.http import HTTP_STATUS_CODES, parse_cookie
from werkzeug.urls import iri_to_uri

from idp.cas import validation
from idp.cas.parameters import login_parameters
from idp.cas.server import CasServer
from idp.cas.tickets import TicketProblem
from idp.errors import ServiceUnavailable
from idp.observability import correlation_id
from idp.web.security import browser_cookie_name, content_security_policy, is_browser_id, sso_cookie_name
from idp.wiring import Services

log = logging.getLogger("idp.cas")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Route = Callable[[CasServer, Mapping[str, str]], validation.Answer]


def _v2(with_attributes: bool, accept_proxy_tickets: bool) -> Route:
    def route(cas: CasServer, values: Mapping[str, str]) -> validation.Answer:
        return validation.validate(cas, values, with_attributes=with_attributes,
                                   accept_proxy_tickets=accept_proxy_tickets)

    return route


ROUTES: dict[str, Route] = {
    "/cas/validate": validation.validate_v1,
    "/cas/serviceValidate": _v2(False, False),
    "/cas/proxyValidate": _v2(False, True),
    "/cas/p3/serviceValidate": _v2(True, False),
    "/cas/p3/proxyValidate": _v2(True, True),
}

_STATUS = {code: f"{code} {HTTP_STATUS_CODES[code].upper()}" for code in (200, 302, 500, 503)}

LOGIN = "/cas/login"
#: Characters ``werkzeug.urls.iri_to_uri`` leaves as they are in a service URL (then it need not be called).
_URI_AS_IS = re.compile(r"[A-Za-z0-9_.~%!$&'()*+,/:;=?@#-]*")


def redirect_page(location: str) -> bytes:
    """The body of ``werkzeug.utils.redirect`` (what ``flask.redirect`` answers), for the same bytes."""
    target = escape(location)
    return ("<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n"
            "<p>You should be redirected automatically to the target URL: "
            f'<a href="{target}">{target}</a>. If not, click the link.\n').encode()


def query_values(environ: Mapping[str, Any]) -> dict[str, str]:
    """The query parameters as ``request.args.get`` sees them (the first of repeated ones wins).

    Raises ``UnicodeDecodeError`` for a query string that is not UTF-8 (Flask decides what to do with it)."""
    query = environ.get("QUERY_STRING", "").encode("latin-1").decode()
    values: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True, errors="werkzeug.url_quote"):
        values.setdefault(name, value)
    return values


def _unexpected(path: str, values: Mapping[str, str]) -> validation.Answer:
    """A bug's answer: 500 with the service's own ``INTERNAL_ERROR`` document (or ``no``), not an HTML page."""
    log.exception("unexpected error on GET %s", path)
    if path == "/cas/validate":
        _, body, content_type = validation.validate_v1_refusal()
    else:
        _, body, content_type = validation.failure(TicketProblem.OUTAGE, validation.requested_format(values) or "XML")
    return 500, body, content_type


class CasLane:
    """WSGI middleware: the validation routes and ``/cas/login`` from the SSO session answered directly,
    everything else passed to ``app``."""

    def __init__(self, app: WsgiApp, services: Services) -> None:
        self._app = app
        self._services = services
        settings = services.settings
        self._retry_after = str(settings.server.outage_retry_after_seconds)
        self._headers = [("Cache-Control", "no-store"), ("Pragma", "no-cache"), ("X-Content-Type-Options", "nosniff")]
        if settings.https:
            self._headers.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
        self._sso_cookie, self._browser_cookie = sso_cookie_name(settings), browser_cookie_name(settings)
        # What ``idp.web.security.install_headers`` adds to a redirect (a page answer), in its order.
        self._page_headers = [("Content-Security-Policy", content_security_policy()), ("X-Frame-Options", "DENY"),
                              ("X-Content-Type-Options", "nosniff"),
                              ("Referrer-Policy", "strict-origin-when-cross-origin"),
                              ("Cross-Origin-Opener-Policy", "same-origin")]
        if settings.https:
            self._page_headers.insert(0, ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
        self._page_headers.append(("Cache-Control", "no-store"))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == LOGIN and environ.get("REQUEST_METHOD") == "GET":
            return self._login(environ, start_response)
        route = ROUTES.get(path)
        if route is None or environ.get("REQUEST_METHOD") != "GET":
            return self._app(environ, start_response)
        try:
            values = query_values(environ)
        except UnicodeDecodeError:
            return self._app(environ, start_response)
        cid = secrets.token_hex(8)
        token = correlation_id.set(cid)
        try:
            status, body, content_type = route(self._services.extras["cas"], values)
        except Exception:
            status, body, content_type = _unexpected(path, values)
        finally:
            correlation_id.reset(token)
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *self._headers,
                   ("X-Correlation-Id", cid)]
        if status == 503:
            headers.append(("Retry-After", self._retry_after))
        start_response(_STATUS[status], headers)
        return [body]

    def _login(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """``/cas/login`` answered from the SSO session (``CasServer.sso_ticket``), or by Flask."""
        try:
            values = query_values(environ)
        except UnicodeDecodeError:
            return self._app(environ, start_response)
        asked = login_parameters(values)  # the view's own parser: renew/gateway set means Flask answers
        if not asked.from_session:
            return self._app(environ, start_response)
        raw = asked.service
        cookies = parse_cookie(environ.get("HTTP_COOKIE", ""))  # what ``request.cookies`` parses
        token, bid = cookies.get(self._sso_cookie), cookies.get(self._browser_cookie)
        # Without a well-formed browser cookie the view would set a new one (``idp.web.security.browser_id``).
        if not token or not is_browser_id(bid):
            return self._app(environ, start_response)
        cid = secrets.token_hex(8)
        context = correlation_id.set(cid)
        try:
            location = self._services.extras["cas"].sso_ticket(raw, token)
        except ServiceUnavailable:
            location = None  # Flask answers the outage page (503, Retry-After)
        except Exception:
            log.exception("unexpected error on GET %s (answered by the application)", LOGIN)
            location = None
        finally:
            correlation_id.reset(context)
        if location is None:
            return self._app(environ, start_response)
        body = redirect_page(location)
        # As werkzeug writes the header (``Response.get_wsgi_headers``): ``"<>{}|^`` percent-encoded there.
        header = location if _URI_AS_IS.fullmatch(location) else iri_to_uri(location)
        start_response(_STATUS[302], [("Content-Type", "text/html; charset=utf-8"),
                                      ("Content-Length", str(len(body))), ("Location", header),
                                      *self._page_headers, ("X-Correlation-Id", cid)])
        return [body]
