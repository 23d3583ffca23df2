"""The upstream OpenID provider, as its client: authorization URL, code exchange, ID token and userinfo JWT
verified, logout URL. Endpoints and issuer are pinned by configuration (SECURITY F04): no discovery.

- Each call takes at most ``timeout_seconds`` (5 s by default) in all, connection, request and the whole answer:
  a provider that trickles its answer is cut off like one that does not answer. A provider that fails
  ``breaker_failures`` times in a row is not called again for ``breaker_open_seconds`` (per process), so no
  worker waits on a provider known down (F07).
- JWTs: compact JWS only, header hygiene and algorithm allow-list (``idp.oidc.jose``), keys from the pinned
  JWKS only; an unknown ``kid`` triggers one refetch of that JWKS, at most every ``jwks_refetch_seconds``,
  then rejection. ``iss``, ``aud`` (and ``azp``), ``exp``, ``iat``, ``nonce`` checked, with 30 s of skew (F02).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc.jwk import KeySet

from idp import jose
from idp.core.federation.errors import FederationRejected, FederationUnavailable
from idp.core.federation.matching import PivotIdentity
from idp.core.federation.ports import UpstreamAnswer

MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class UpstreamConfig:
    """The pinned registration at the provider (``[federation]`` settings and the client secret)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    end_session_endpoint: str
    jwks_uri: str
    client_id: str
    client_secret: str
    redirect_uri: str
    post_logout_redirect_uri: str
    scope: str
    acr_values: str = "eidas1"
    algorithms: tuple[str, ...] = ("ES256", "RS256")
    timeout_seconds: float = 5.0
    clock_skew_seconds: int = 30
    jwks_refetch_seconds: int = 60
    breaker_failures: int = 3
    breaker_open_seconds: int = 30


class CircuitBreaker:
    """Closed, then open for a while after N failures in a row; one trial call when the time is over."""

    def __init__(self, failures: int, open_seconds: float, now: Callable[[], float] = time.monotonic) -> None:
        self._max, self._open_for, self._now = failures, open_seconds, now
        self._failures = 0
        self._until = 0.0
        self._lock = threading.Lock()

    def available(self) -> bool:
        with self._lock:
            return self._failures < self._max or self._now() >= self._until

    def failed(self) -> None:
        with self._lock:
            self._failures += 1
            if self._failures >= self._max:
                self._until = self._now() + self._open_for

    def succeeded(self) -> None:
        with self._lock:
            self._failures = 0


class UpstreamClient:
    """``Upstream`` over HTTP (urllib, standard library)."""

    def __init__(self, config: UpstreamConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.issuer = config.issuer
        self._clock = clock
        self.breaker = CircuitBreaker(config.breaker_failures, config.breaker_open_seconds)
        self._keys: KeySet | None = None
        self._kids: set[str] = set()
        self._fetched_at = -1e18
        self._lock = threading.Lock()

    # --- the browser's legs ----------------------------------------------------------------------

    def available(self) -> bool:
        return self.breaker.available()

    def authorization_url(self, state: str, nonce: str) -> str:
        c = self.config
        query = urllib.parse.urlencode({
            "response_type": "code", "client_id": c.client_id, "redirect_uri": c.redirect_uri, "scope": c.scope,
            "acr_values": c.acr_values, "state": state, "nonce": nonce, "prompt": "login"})
        return f"{c.authorization_endpoint}?{query}"

    def logout_url(self, id_token: str, state: str) -> str:
        c = self.config
        query = urllib.parse.urlencode({"id_token_hint": id_token, "state": state,
                                        "post_logout_redirect_uri": c.post_logout_redirect_uri})
        return f"{c.end_session_endpoint}?{query}"

    # --- the back channel ------------------------------------------------------------------------

    def authenticate(self, code: str, nonce: str) -> UpstreamAnswer:
        """Exchange the code, verify the ID token, fetch and verify the userinfo JWT."""
        c = self.config
        body = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code,
                                       "redirect_uri": c.redirect_uri}).encode()
        basic = base64.b64encode(f"{urllib.parse.quote(c.client_id)}:{urllib.parse.quote(c.client_secret)}".encode())
        status, raw, _ = self._call(_request(c.token_endpoint, data=body, method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {basic.decode()}",
            "Accept": "application/json"}))
        if status != 200:
            raise FederationRejected(f"token endpoint answered {status}")
        try:
            tokens = json.loads(raw)
        except ValueError:
            raise FederationRejected("token answer is not JSON") from None
        if not isinstance(tokens, dict) or not isinstance(tokens.get("id_token"), str) \
                or not isinstance(tokens.get("access_token"), str):
            raise FederationRejected("token answer incomplete")
        id_claims = self.verify(tokens["id_token"], nonce=nonce)
        status, raw, content_type = self._call(_request(c.userinfo_endpoint, headers={
            "Authorization": f"Bearer {tokens['access_token']}", "Accept": "application/jwt"}))
        if status != 200 or not content_type.startswith("application/jwt"):
            raise FederationRejected(f"userinfo answered {status} {content_type[:40]}")
        info = self.verify(raw.decode("ascii", "replace").strip(), nonce=None)
        if info.get("sub") != id_claims["sub"]:
            raise FederationRejected("userinfo sub differs")
        pivot = PivotIdentity(issuer=c.issuer, sub=str(id_claims["sub"]), given_name=_text(info, "given_name"),
                              family_name=_text(info, "family_name"),
                              preferred_username=_text(info, "preferred_username"),
                              birthdate=_text(info, "birthdate"))
        if not pivot.family_name or not pivot.given_name:
            raise FederationRejected("pivot identity incomplete")
        return UpstreamAnswer(pivot=pivot, id_token=tokens["id_token"])

    def verify(self, token: str, *, nonce: str | None) -> dict[str, Any]:
        """A JWT of the provider: signature by a pinned key, then its claims (F02)."""
        c = self.config
        try:
            header = jose.read_header(token)
            claims = jose.verify(token, self._keys_for(str(header.get("kid", ""))), c.algorithms)
        except jose.JwtRejected as exc:
            raise FederationRejected(f"jwt: {exc}") from None
        now, skew = self._clock(), c.clock_skew_seconds
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        checks = {
            "iss": claims.get("iss") == c.issuer,
            "aud": c.client_id in audiences and (len(audiences) == 1 or claims.get("azp") == c.client_id),
            "exp": isinstance(claims.get("exp"), int | float) and claims["exp"] + skew > now,
            "iat": not isinstance(claims.get("iat"), int | float) or claims["iat"] - skew <= now,
            "sub": isinstance(claims.get("sub"), str) and 0 < len(claims["sub"]) <= 255,
        }
        if nonce is not None:
            checks["iat"] = checks["iat"] and isinstance(claims.get("iat"), int | float)
            checks["nonce"] = isinstance(claims.get("nonce"), str) and claims["nonce"] == nonce
        failed = [name for name, ok in checks.items() if not ok]
        if failed:
            raise FederationRejected(f"claim {failed[0]}")
        return claims

    def _keys_for(self, kid: str) -> KeySet:
        """The pinned JWKS; fetched again once when the ``kid`` is not in it, at most every
        ``jwks_refetch_seconds`` (a stream of made-up kids never turns into a stream of fetches)."""
        with self._lock:
            first = self._keys is None
            known = not first and (not kid or kid in self._kids)
            may_refetch = time.monotonic() - self._fetched_at >= self.config.jwks_refetch_seconds
            if not first and not known and may_refetch:
                self._fetched_at = time.monotonic()
        if first or (not known and may_refetch):
            self._fetch_jwks()
        with self._lock:
            if self._keys is None or (kid and kid not in self._kids):
                raise FederationRejected("unknown kid")
            return self._keys

    def _fetch_jwks(self) -> None:
        status, raw, _ = self._call(_request(self.config.jwks_uri, headers={"Accept": "application/json"}))
        if status != 200:
            raise FederationUnavailable(f"jwks answered {status}")
        try:
            keys = jose.import_client_keys(raw.decode("utf-8", "replace"))
            kids = {str(k.get("kid", "")) for k in json.loads(raw)["keys"]}
        except (jose.JwtRejected, ValueError, KeyError) as exc:
            raise FederationRejected(f"jwks: {exc}") from None
        with self._lock:
            self._keys, self._kids = keys, kids

    def _call(self, request: urllib.request.Request) -> tuple[int, bytes, str]:
        """One HTTP call within ``timeout_seconds`` in all (connecting, sending, the answer's headers and body:
        a provider that trickles its answer byte by byte is cut off too); network failures, a call past its
        time and 5xx answers feed the circuit breaker."""
        if not self.breaker.available():
            raise FederationUnavailable("circuit open")
        deadline = _Deadline(self.config.timeout_seconds)
        opener = urllib.request.build_opener(_HTTPHandler(deadline), _HTTPSHandler(deadline))
        deadline.start()
        try:
            try:
                with opener.open(request, timeout=self.config.timeout_seconds) as answer:
                    status, body, content_type = answer.status, answer.read(MAX_BODY + 1), answer.headers.get("Content-Type", "")
            except urllib.error.HTTPError as exc:
                status, body, content_type = exc.code, exc.read(MAX_BODY + 1), exc.headers.get("Content-Type", "")
        except (OSError, ValueError, http.client.HTTPException) as exc:  # refused, reset, timeout, cut off
            self.breaker.failed()
            raise FederationUnavailable("deadline" if deadline.expired else type(exc).__name__) from None
        finally:
            deadline.cancel()
        if deadline.expired:  # the answer may have been cut short: never trusted
            self.breaker.failed()
            raise FederationUnavailable("deadline")
        if status >= 500:
            self.breaker.failed()
            raise FederationUnavailable(f"status {status}")
        self.breaker.succeeded()
        if len(body) > MAX_BODY:
            raise FederationRejected("answer too large")
        return status, body, content_type or ""


class _Deadline:
    """The time one call may take in all: when it is over, the call's sockets are shut down, which ends any
    read or write still waiting on them (the per-operation ``timeout`` alone lets a trickle go on forever)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


def _watched(connection: type[http.client.HTTPConnection], deadline: _Deadline) -> Any:
    """``connection`` whose socket, once connected, is watched by ``deadline``."""

    class Watched(connection):  # type: ignore[misc,valid-type]
        def connect(self) -> None:
            super().connect()
            deadline.watch(self.sock)

    return Watched


class _HTTPHandler(urllib.request.HTTPHandler):
    """urllib's handler, its connections' sockets watched by the call's deadline."""

    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_watched(http.client.HTTPConnection, self.deadline), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    """The same over TLS, certificates verified as by ``urlopen`` (no context given: the default one)."""

    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_watched(http.client.HTTPSConnection, self.deadline), req)


def _request(url: str, *, data: bytes | None = None, method: str = "GET",
             headers: dict[str, str]) -> urllib.request.Request:
    """A request to a pinned endpoint; only http(s) (``file:`` and others are refused)."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise FederationUnavailable("endpoint scheme")
    return urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - scheme checked


def _text(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name, "")
    return value[:200] if isinstance(value, str) else ""
