"""The WSGI edge: one middleware in front of every request, Flask's and the back-channel handlers' alike.

It gives each request its correlation id (in the log lines through ``idp.observability.correlation_id``, in
``environ["idp.correlation_id"]`` for Flask's error pages, in the ``X-Correlation-Id`` answer header) and
completes every answer with the security headers (SECURITY W04, W05: what a response did not set itself, in
``idp.web.security.security_headers``' order) and ``Cache-Control: no-store`` (except ``/static/``).

Back-channel endpoints (the OIDC token, UserInfo, revocation and introspection endpoints, the CAS
validations) are small framework-free handlers: ``routes`` maps their paths to them, and Flask never sees
those paths (no view exists there); the path a request was dispatched to is its route label in the metrics
(``ROUTE_KEY``). A browser endpoint is a Flask view. Each path has one implementation.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from idp.observability import correlation_id
from idp.settings import Settings
from idp.web.security import security_headers
from idp.web.timing import ROUTE_KEY

log = logging.getLogger("idp.web")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: Where the correlation id of a request is kept in its WSGI environ (read by Flask's ``before_request``).
CORRELATION_KEY = "idp.correlation_id"


class Edge:
    """WSGI middleware: correlation id and security headers for every answer; back-channel paths to ``routes``."""

    def __init__(self, app: WsgiApp, settings: Settings, routes: Mapping[str, WsgiApp]) -> None:
        self._app = app
        self._routes = dict(routes)
        self._headers = security_headers(settings)
        self._names = frozenset(name.lower() for name, _ in self._headers)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        cid = secrets.token_hex(8)
        environ[CORRELATION_KEY] = cid
        context = correlation_id.set(cid)
        cacheable = environ.get("PATH_INFO", "").startswith("/static/")

        def complete(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            present = {name.lower() for name, _ in headers}
            headers.extend(h for h in self._headers if h[0].lower() not in present)
            if "cache-control" not in present and not cacheable:
                headers.append(("Cache-Control", "no-store"))
            headers.append(("X-Correlation-Id", cid))
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        try:
            path = environ.get("PATH_INFO", "")
            handler = self._routes.get(path)
            if handler is None:
                return self._app(environ, complete)
            environ[ROUTE_KEY] = path
            return handler(environ, complete)
        finally:
            correlation_id.reset(context)
