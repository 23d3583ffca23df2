"""The OIDC back-channel endpoints as plain WSGI handlers, the only implementation of each (no Flask view).

A relying party's server calls the token endpoint (RFC 6749 §3.2, OIDC Core 3.1.3), the revocation endpoint
(RFC 7009), the introspection endpoint (RFC 7662) and UserInfo (OIDC Core 5.3, ``idp.oidc.userinfo``). None
of them needs a browser's session, templates or routing, so each is a werkzeug ``Request`` handed to authlib's
framework-free server (``OidcServer.create_token_response`` / ``create_endpoint_response``), as authlib's own
integrations do: the token endpoint in autocommit on PostgreSQL, where a granted request is one statement
(``OidcServer.transaction(redeeming=True)``), every other endpoint in one transaction. ``idp.web.edge.Edge`` routes the paths here and adds the security
headers and the correlation id. Answers are JSON with ``Cache-Control: no-store`` (RFC 6749 §5.1); a database
outage is ``temporarily_unavailable`` (503, ``Retry-After``), a bug ``server_error`` (500), both logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from idp.errors import ServiceUnavailable
from idp.oidc.server import OidcServer

log = logging.getLogger("idp.oidc")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_UNAVAILABLE = {"error": "temporarily_unavailable", "error_description": "Service temporarily unavailable."}


def json_response(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer that no cache keeps."""
    return Response(json.dumps(body, sort_keys=True), status, {**NO_STORE, **(headers or {})},
                    content_type="application/json")


class BackChannelEndpoint:
    """One back-channel endpoint: method check, body limit, outage and bug answers around ``answer``."""

    def __init__(self, server: OidcServer, methods: tuple[str, ...],
                 answer: Callable[[OidcServer, Request], Response]) -> None:
        self._server = server
        self._methods = methods
        self._answer = answer
        settings = server.services.settings
        self._max_body = settings.server.max_body_bytes
        self._retry_after = str(settings.server.outage_retry_after_seconds)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        request.max_content_length = self._max_body or None
        response: Response
        if request.method not in self._methods:
            response = json_response({"error": "invalid_request"}, 405, {"Allow": ", ".join(self._methods)})
        else:
            try:
                response = self._answer(self._server, request)
            except ServiceUnavailable:
                response = json_response(_UNAVAILABLE, 503, {"Retry-After": self._retry_after})
            except HTTPException as exc:  # a body over the limit (413), a malformed one (400)
                response = json_response({"error": "invalid_request"}, exc.code or 400)
            except Exception:
                log.exception("unexpected error on %s %s", request.method, request.path)
                response = json_response({"error": "server_error"}, 500)
        return response(environ, start_response)


def token(server: OidcServer, request: Request) -> Response:
    """Token endpoint (RFC 6749 §3.2): code exchange and refresh grants; on PostgreSQL a granted request is one
    statement in autocommit (``OidcServer.transaction(redeeming=True)``), elsewhere one transaction."""
    with server.transaction(redeeming=True) as uow:
        response: Response = server.create_token_response(request)
        uow.commit()  # also what a refusal wrote: a replay's revoked grant, its audit line
    return response


def revocation(server: OidcServer, request: Request) -> Response:
    """RFC 7009 revocation for authenticated clients."""
    return _endpoint(server, "revocation", request)


def introspection(server: OidcServer, request: Request) -> Response:
    """RFC 7662 introspection for confidential clients."""
    return _endpoint(server, "introspection", request)


def _endpoint(server: OidcServer, name: str, request: Request) -> Response:
    with server.transaction() as uow:
        response: Response = server.create_endpoint_response(name, request)
        uow.commit()
    return response


def routes(server: OidcServer) -> dict[str, WsgiApp]:
    """The back-channel paths and their handlers, for ``idp.web.edge.Edge``."""
    from idp.oidc.userinfo import userinfo

    return {
        "/oidc/token": BackChannelEndpoint(server, ("POST",), token),
        "/oidc/revoke": BackChannelEndpoint(server, ("POST",), revocation),
        "/oidc/introspect": BackChannelEndpoint(server, ("POST",), introspection),
        "/oidc/userinfo": BackChannelEndpoint(server, ("GET", "POST"), userinfo),
    }
