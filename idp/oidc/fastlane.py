"""The token endpoint's usual grants and UserInfo served by a small WSGI dispatch in front of Flask.

The hot requests of an OIDC relying party's back channel skip Flask's request context, routing and
``after_request`` hooks, as the CAS validations do (``idp.cas.fastlane``):

- ``POST /oidc/token`` with a ``application/x-www-form-urlencoded`` body: the body is parsed as werkzeug parses
  ``request.form`` and ``FastTokens.decide`` — the code the Flask view runs first — answers a well-formed code
  exchange or refresh grant of a ``client_secret_basic``/``_post`` client. Whatever it declines (every error,
  replay, reuse, ``private_key_jwt``, public clients, a ``scope`` parameter, a repeated parameter…) is handed
  to Flask with the body it read, untouched, *before anything was written*: authlib then answers and explains
  exactly as without the lane (``invalid_client`` with ``WWW-Authenticate``, ``invalid_grant`` and the grant
  revoked on a replay or a reuse, audit lines…). The view is told (``DECLINED``) not to try the same decision
  twice.
- ``GET``/``POST /oidc/userinfo`` with a ``Bearer`` header and no query string (or a ``GET`` without any
  token): ``claims_for`` decides, as in the view; a ``POST`` carrying the token in its body, or any query
  string, goes to Flask.

The answers are those of the Flask views byte for byte — status, JSON body, ``Content-Type``,
``Cache-Control: no-store``, ``Pragma: no-cache``, ``WWW-Authenticate`` on a bearer error, the security
headers of every response (``idp.web.security.security_headers``), ``Retry-After`` on a 503 and the
request's ``X-Correlation-Id`` (also in the log lines of the request); tests/protocols/oidc/test_fastlane.py
compares them. One deliberate difference: a bug answers a JSON ``server_error`` here, not the HTML error page.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from flask.json.provider import _default as flask_json_default
from werkzeug.http import HTTP_STATUS_CODES

from idp.errors import ServiceUnavailable
from idp.observability import correlation_id
from idp.oidc.fasttoken import FastTokens
from idp.oidc.server import OidcServer
from idp.oidc.userinfo import BearerRejected, claims_for
from idp.web.security import security_headers
from idp.web.wsgiform import form_values, read_form
from idp.wiring import Services

log = logging.getLogger("idp.oidc")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: Set in the environ of a token request the lane declined: the view goes straight to the general path.
DECLINED = "idp.oidc.fast_declined"
#: Bodies above this size go to Flask (its ``MAX_CONTENT_LENGTH`` answer); a token request is a few hundred bytes.
MAX_LANE_BODY = 16 * 1024

_STATUS = {code: f"{code} {HTTP_STATUS_CODES[code].upper()}" for code in (200, 400, 401, 403, 500, 503)}
_UNAVAILABLE = {"error": "temporarily_unavailable", "error_description": "Service temporarily unavailable."}


def flask_json(value: Any) -> bytes:
    """``flask.jsonify``'s bytes outside debug mode: sorted keys, ASCII, compact, a final newline."""
    return (json.dumps(value, default=flask_json_default, ensure_ascii=True, sort_keys=True,
                       separators=(",", ":")) + "\n").encode()


class OidcLane:
    """WSGI middleware: the usual token grants and UserInfo answered directly, everything else passed to ``app``."""

    def __init__(self, app: WsgiApp, services: Services) -> None:
        self._app = app
        self._services = services
        settings = services.settings
        self._max_body = min(settings.server.max_body_bytes or MAX_LANE_BODY, MAX_LANE_BODY)
        self._retry_after = str(settings.server.outage_retry_after_seconds)
        self._security = security_headers(settings)
        self._routes: dict[tuple[str, str], Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]] = {
            ("POST", "/oidc/token"): self._token,
            ("GET", "/oidc/userinfo"): self._userinfo,
            ("POST", "/oidc/userinfo"): self._userinfo,
        }

    @property
    def _server(self) -> OidcServer:
        return self._services.frontends["oidc"].server  # type: ignore[attr-defined,no-any-return]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        route = self._routes.get((environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")))
        if route is None:
            return self._app(environ, start_response)
        return route(environ, start_response)

    # --- token endpoint --------------------------------------------------------------------------

    def _token(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = read_form(environ, self._max_body)
        form = form_values(body) if body is not None else None
        if form is None:
            return self._app(environ, start_response)
        fast: FastTokens = self._server.fast
        cid = secrets.token_hex(8)
        token = correlation_id.set(cid)
        try:
            answer = fast.decide(environ.get("HTTP_AUTHORIZATION", ""), form)
        except ServiceUnavailable:
            return self._unavailable(cid, start_response)
        except Exception:
            log.exception("unexpected error on POST /oidc/token")
            return self._json(500, json.dumps({"error": "server_error"}).encode(), (), cid, start_response)
        finally:
            correlation_id.reset(token)
        if answer is None:
            environ[DECLINED] = True
            return self._app(environ, start_response)
        # FastTokens.answer's Response(json.dumps(...), headers=TOKEN_HEADERS): Content-Type first.
        return self._json(200, json.dumps(answer).encode(), (), cid, start_response, length_last=True)

    # --- userinfo --------------------------------------------------------------------------------

    def _userinfo(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        header = environ.get("HTTP_AUTHORIZATION", "")
        bearer = header[:7].lower() == "bearer "
        if environ.get("QUERY_STRING") or (not bearer and (header or environ["REQUEST_METHOD"] != "GET")):
            return self._app(environ, start_response)  # token in a body, or a query to look into: Flask
        cid = secrets.token_hex(8)
        token = correlation_id.set(cid)
        try:
            claims = claims_for(self._server, header[7:].strip() if bearer else "")
        except BearerRejected as rejected:
            www = (("WWW-Authenticate", f'Bearer error="{rejected.error}"'),)
            return self._json(rejected.status, flask_json({"error": rejected.error}), www, cid, start_response)
        except ServiceUnavailable:
            return self._unavailable(cid, start_response)
        except Exception:
            log.exception("unexpected error on %s /oidc/userinfo", environ["REQUEST_METHOD"])
            return self._json(500, json.dumps({"error": "server_error"}).encode(), (), cid, start_response)
        finally:
            correlation_id.reset(token)
        return self._json(200, flask_json(claims), (), cid, start_response)

    # --- answers ---------------------------------------------------------------------------------

    def _unavailable(self, cid: str, start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The views' JSON 503 (``idp.oidc.views._unavailable``)."""
        return self._json(503, flask_json(_UNAVAILABLE), (("Retry-After", self._retry_after),), cid, start_response)

    def _json(self, status: int, body: bytes, extra: Iterable[tuple[str, str]], cid: str,
              start_response: Callable[..., Any], length_last: bool = False) -> Iterable[bytes]:
        """The headers in the order Flask writes them: the view's, then the security headers, the correlation id."""
        length = ("Content-Length", str(len(body)))
        headers = [("Content-Type", "application/json")]
        if not length_last:
            headers.append(length)
        headers += [*extra, ("Cache-Control", "no-store"), ("Pragma", "no-cache")]
        if length_last:
            headers.append(length)
        headers += [*self._security, ("X-Correlation-Id", cid)]
        start_response(_STATUS[status], headers)
        return [body]
