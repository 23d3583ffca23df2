"""``private_key_jwt`` client authentication (OIDC Core 9, RFC 7523 §3) with a ``jti`` replay cache.

SECURITY O09/O10: header hygiene and pinned asymmetric algorithms (``idp.oidc.jose``); ``iss`` = ``sub`` =
client_id; ``aud`` names our issuer or the endpoint called; ``exp`` required and at most 5 minutes ahead;
``iat``/``nbf`` not in the future beyond the accepted skew; each ``jti`` accepted once until it expires.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import urllib.request
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749.errors import InvalidClientError
from joserfc.jwk import KeySet

from idp.caches import TtlCache
from idp.oidc import jose

if TYPE_CHECKING:
    from idp.oidc.models import OidcClient
    from idp.oidc.server import OidcServer

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ("RS256", "PS256", "ES256")
JWKS_MAX_BYTES = 65536
JWKS_TIMEOUT_SECONDS = 3.0


def _refuse(reason: str) -> InvalidClientError:
    # error_description may only hold %x20-21 / %x23-5B / %x5D-7E (RFC 6749 §5.2); reasons can echo input.
    safe = "".join(c for c in reason if 0x20 <= ord(c) <= 0x7E and c not in '"\\')[:200]
    return InvalidClientError(status_code=401, description=f"Invalid client assertion: {safe}.")


def _unverified_claims(assertion: str) -> dict[str, Any]:
    jose.read_header(assertion)
    payload = assertion.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError as exc:
        raise jose.JwtRejected("bad payload") from exc
    if not isinstance(claims, dict):
        raise jose.JwtRejected("bad payload")
    return claims


class ClientKeys:
    """Clients' public keys: the registered JWKS, or the JWKS URL fetched with a short timeout, kept in
    ``caches.oidc_client_keys`` (``[caches] oidc_client_keys_seconds``) by the JWKS or URL."""

    def __init__(self, cache: TtlCache[str, Any], allow_http_loopback: bool = False) -> None:
        self._cache = cache
        self._allow_http_loopback = allow_http_loopback

    def for_client(self, jwks: str, jwks_uri: str) -> KeySet:
        key = jwks or jwks_uri
        keys: KeySet | None = self._cache.get(key)
        if keys is None:
            keys = jose.import_client_keys(jwks if jwks else self._fetch(jwks_uri))
            self._cache.put(key, keys)
        return keys

    def _fetch(self, url: str) -> str:
        parts = urlsplit(url)
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme != "https" and not (self._allow_http_loopback and parts.scheme == "http" and loopback):
            raise jose.JwtRejected("jwks_uri must use https")
        try:
            with urllib.request.urlopen(url, timeout=JWKS_TIMEOUT_SECONDS) as response:  # noqa: S310 - scheme checked
                body: bytes = response.read(JWKS_MAX_BYTES + 1)
        except OSError as exc:
            raise jose.JwtRejected("jwks_uri unreachable") from exc
        if len(body) > JWKS_MAX_BYTES:
            raise jose.JwtRejected("jwks_uri answer too large")
        return body.decode("utf-8", "replace")


class PrivateKeyJwt:
    """The ``private_key_jwt`` method for authlib's client authentication registry."""

    def __init__(self, server: OidcServer) -> None:
        self.server = server
        self.keys = ClientKeys(server.services.caches.oidc_client_keys,
                               allow_http_loopback=server.services.settings.server.development)

    def __call__(self, query_client: Any, request: Any) -> OidcClient | None:
        form = request.form
        assertion = form.get("client_assertion")
        if form.get("client_assertion_type") != ASSERTION_TYPE or not assertion:
            return None
        try:
            unverified = _unverified_claims(assertion)
        except jose.JwtRejected as exc:
            raise _refuse(str(exc)) from exc
        client_id = form.get("client_id") or unverified.get("sub")
        client: OidcClient | None = query_client(client_id) if isinstance(client_id, str) else None
        if client is None:
            raise _refuse("unknown client")
        if client.record.auth_method != "private_key_jwt":
            return None
        try:
            keys = self.keys.for_client(client.record.jwks, client.record.jwks_uri)
            claims = jose.verify(assertion, keys, ASSERTION_ALGORITHMS)
        except jose.JwtRejected as exc:
            raise _refuse(str(exc)) from exc
        self._check_claims(claims, client.client_id, request)
        return client

    def _audiences(self, request: Any) -> set[str]:
        server = self.server
        called = request.uri.split("?")[0] if isinstance(request.uri, str) else ""
        path = urlsplit(called).path
        return {server.issuer, server.base, server.url("/oidc/token"), server.url(path) if path else server.issuer}

    def _check_claims(self, claims: dict[str, Any], client_id: str, request: Any) -> None:
        policy, now = self.server.policy, self.server.now()
        skew = policy.clock_skew.total_seconds()
        stamp = now.timestamp()
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise _refuse("iss and sub must be the client_id")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not self._audiences(request) & {a for a in audiences if isinstance(a, str)}:
            raise _refuse("aud must be the issuer or the token endpoint")
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise _refuse("exp is required")
        if exp <= stamp - skew:
            raise _refuse("expired")
        if exp > stamp + policy.assertion_max_lifetime.total_seconds() + skew:
            raise _refuse("exp too far in the future")
        for name in ("iat", "nbf"):
            value = claims.get(name)
            if value is not None and (not isinstance(value, int | float) or value > stamp + skew):
                raise _refuse(f"{name} in the future")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > 255:
            raise _refuse("jti is required")
        until = dt.datetime.fromtimestamp(exp, dt.UTC) + policy.clock_skew
        if not self.server.store.remember_jti(client_id, jti, until):
            raise _refuse("jti already used")
