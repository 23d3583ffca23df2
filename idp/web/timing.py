"""The outermost WSGI layer: every answer's time in ``idp_request_duration_seconds{method, route, status}``.

The route is the URL rule that matches (``/login/<request_id>``, never the id itself), so the number of
series stays bounded; a back-channel request (token, UserInfo, revocation, introspection, CAS validations),
which no Flask rule matches, is labelled with the path of the handler the edge (``idp.web.edge``) dispatched it
to, read after the answer, as the edge sits inside this layer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, RequestRedirect

from idp import metrics

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: Where a Flask view's request leaves the URL rule it matched (``idp.web.register_web``), and the edge the path
#: of the back-channel handler it dispatched to, so that the timer does not match the URL a second time.
ROUTE_KEY = "idp.route"


class RequestTimer:
    """WSGI middleware recording each request's duration under its URL rule."""

    def __init__(self, app: WsgiApp, url_map: Map) -> None:
        self._app = app
        self._url_map = url_map

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start = time.perf_counter()
        status = ["500"]

        def recording_start_response(code: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            status[0] = code[:3]
            return start_response(code, headers, *args)

        try:
            return self._app(environ, recording_start_response)
        finally:
            metrics.REQUEST_SECONDS.labels(method=environ.get("REQUEST_METHOD", ""), route=self._route(environ),
                                           status=status[0]).observe(time.perf_counter() - start)

    def _route(self, environ: dict[str, Any]) -> str:
        matched = environ.get(ROUTE_KEY)  # a Flask view's rule or a back-channel handler's path
        if matched is not None:
            return str(matched)
        try:
            rule, _ = self._url_map.bind_to_environ(environ).match(return_rule=True)
        except (HTTPException, RequestRedirect):
            return "unmatched"
        return str(rule.rule)
