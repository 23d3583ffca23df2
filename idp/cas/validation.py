"""The CAS validation endpoints (CAS 3.0 §2.4–§2.9) as plain WSGI handlers, the only implementation of each.

A service's server calls ``/validate``, ``/serviceValidate``, ``/proxyValidate`` and their ``/p3/`` versions
with ``GET`` (or ``POST``); nothing there is a browser's: no session, template or routing is needed, so each
path is a werkzeug ``Request`` answered here (``idp.web.edge.Edge`` routes the paths here and adds the security
headers and the correlation id). Parameters are read as werkzeug reads them (the first of a repeated one).
Answers carry ``Cache-Control: no-store`` and ``Pragma: no-cache``; a database outage is ``INTERNAL_ERROR``
with 503 and ``Retry-After``; a bug the same document with 500, logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from werkzeug.wrappers import Request, Response

from idp.cas import responses
from idp.cas.mapping import CAS_CODE
from idp.cas.parameters import flag
from idp.cas.server import CasServer
from idp.cas.tickets import TicketProblem, TicketRejected
from idp.errors import ServiceUnavailable

log = logging.getLogger("idp.cas")

Answer = tuple[int, bytes, str]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Route = Callable[[CasServer, Mapping[str, str]], Answer]


def requested_format(values: Mapping[str, str]) -> str | None:
    """``XML`` (the default) or ``JSON``; ``None`` for anything else."""
    fmt = values.get("format", "XML").upper()
    return fmt if fmt in ("XML", "JSON") else None


def failure(problem: TicketProblem, fmt: str, element: str = "authenticationFailure") -> Answer:
    """A failure document; 503 on an outage (``INTERNAL_ERROR``)."""
    code, description = CAS_CODE[problem]
    json_format = fmt == "JSON"
    body = responses.failure(code, description, json_format=json_format, element=element)
    status = 503 if problem is TicketProblem.OUTAGE else 200
    return status, body, responses.JSON_TYPE if json_format else responses.XML_TYPE


def validate(cas: CasServer, values: Mapping[str, str], *, with_attributes: bool,
             accept_proxy_tickets: bool) -> Answer:
    """``/serviceValidate``, ``/proxyValidate`` and their ``/p3/`` versions."""
    fmt = requested_format(values)
    if fmt is None:
        return failure(TicketProblem.UNSUPPORTED_FORMAT, "XML")
    try:
        result = cas.validate(values.get("ticket", ""), values.get("service", ""), renew=flag(values.get("renew")),
                              pgt_url=values.get("pgtUrl", ""), accept_proxy_tickets=accept_proxy_tickets)
    except TicketRejected as exc:
        return failure(exc.problem, fmt)
    except ServiceUnavailable:
        return failure(TicketProblem.OUTAGE, fmt)
    if fmt == "JSON":
        return 200, responses.success_json(result, with_attributes=with_attributes), responses.JSON_TYPE
    return 200, responses.success_xml(result, with_attributes=with_attributes), responses.XML_TYPE


def validate_v1(cas: CasServer, values: Mapping[str, str]) -> Answer:
    """CAS 1.0 ``/validate``: ``yes``/``no`` text; proxy tickets always fail (§2.4)."""
    try:
        result = cas.validate(values.get("ticket", ""), values.get("service", ""), renew=flag(values.get("renew")))
    except TicketRejected:
        return validate_v1_refusal()
    except ServiceUnavailable:
        return 503, responses.cas1(None), responses.TEXT_TYPE
    return 200, responses.cas1(result), responses.TEXT_TYPE


def validate_v1_refusal() -> Answer:
    """The CAS 1.0 ``no``."""
    return 200, responses.cas1(None), responses.TEXT_TYPE


def _v2(with_attributes: bool, accept_proxy_tickets: bool) -> Route:
    def route(cas: CasServer, values: Mapping[str, str]) -> Answer:
        return validate(cas, values, with_attributes=with_attributes, accept_proxy_tickets=accept_proxy_tickets)

    return route


#: The validation paths (CAS 3.0 §2.4 CAS 1.0, §2.5–§2.6 CAS 2.0, §2.8–§2.9 CAS 3.0 with attributes).
ROUTES: dict[str, Route] = {
    "/cas/validate": validate_v1,
    "/cas/serviceValidate": _v2(False, False),
    "/cas/proxyValidate": _v2(False, True),
    "/cas/p3/serviceValidate": _v2(True, False),
    "/cas/p3/proxyValidate": _v2(True, True),
}
METHODS = ("GET", "HEAD", "POST")


class ValidationEndpoint:
    """One validation path: parameters from the query (and a POST's form), the answer, its headers."""

    def __init__(self, cas: CasServer, path: str, max_body: int, retry_after: int) -> None:
        self._cas = cas
        self._path = path
        self._route = ROUTES[path]
        self._max_body = max_body or None
        self._retry_after = str(retry_after)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        request.max_content_length = self._max_body
        headers = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
        if request.method not in METHODS:
            response = Response(b"", 405, [*headers, ("Allow", ", ".join(METHODS))])
            return response(environ, start_response)
        try:
            values = request.values
            status, body, content_type = self._route(self._cas, values)
        except Exception:
            values = request.args
            status, body, content_type = self._unexpected(values)
        if status == 503:
            headers.append(("Retry-After", self._retry_after))
        return Response(body, status, headers, content_type=content_type)(environ, start_response)

    def _unexpected(self, values: Mapping[str, str]) -> Answer:
        """A bug's answer (or a body over the limit): 500 with the ``INTERNAL_ERROR`` document (``no`` for CAS 1.0)."""
        log.exception("unexpected error on %s", self._path)
        if self._path == "/cas/validate":
            _, body, content_type = validate_v1_refusal()
        else:
            _, body, content_type = failure(TicketProblem.OUTAGE, requested_format(values) or "XML")
        return 500, body, content_type


def routes(cas: CasServer, max_body: int, retry_after: int) -> dict[str, WsgiApp]:
    """The validation paths and their handlers, for ``idp.web.edge.Edge``."""
    return {path: ValidationEndpoint(cas, path, max_body, retry_after) for path in ROUTES}
