"""The CAS validation routes served by a small WSGI dispatch in front of Flask (the hot path of a CAS service).

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
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import werkzeug.urls  # noqa: F401  (registers the "werkzeug.url_quote" codec error handler used below)
from werkzeug.http import HTTP_STATUS_CODES

from idp.cas import validation
from idp.cas.server import CasServer
from idp.cas.tickets import TicketProblem
from idp.observability import correlation_id
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

_STATUS = {code: f"{code} {HTTP_STATUS_CODES[code].upper()}" for code in (200, 500, 503)}


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


class ValidationLane:
    """WSGI middleware: the validation routes answered directly, everything else passed to ``app``."""

    def __init__(self, app: WsgiApp, services: Services) -> None:
        self._app = app
        self._services = services
        settings = services.settings
        self._retry_after = str(settings.server.outage_retry_after_seconds)
        self._headers = [("Cache-Control", "no-store"), ("Pragma", "no-cache"), ("X-Content-Type-Options", "nosniff")]
        if settings.https:
            self._headers.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
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
