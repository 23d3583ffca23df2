"""The token endpoint's usual requests answered without authlib's machinery (OIDC Core 3.1.3, RFC 6749 §6).

A code exchange or a refresh grant from a confidential client (``client_secret_basic`` or
``client_secret_post``) whose every parameter matches what is stored is answered here: client checked from the
registration kept in memory (``OidcServer.current_client``: SHA-256 of its 256-bit secret, constant-time
compare), code or refresh token redeemed and new tokens stored in one database statement, ID token signed
once. Anything else — an unknown client, a wrong secret, two authentication methods, a ``scope`` parameter, a
used, expired or mismatching code or token, a public or ``private_key_jwt`` client — returns ``None`` before
anything is written, and the general path (authlib, ``OidcServer``) answers with the precise error, detects a
replay or a reuse and revokes the grant. A request is thus never judged differently by the two paths.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oauth2.rfc7636.challenge import CODE_VERIFIER_PATTERN
from flask import Request, Response

from idp.oidc.models import OidcClient
from idp.storage.oidc_fast import NewTokens, Redeemed, TokenRedeemer
from idp.storage.oidc_store import digest

if TYPE_CHECKING:
    from idp.oidc.server import OidcServer

#: authlib's token answer headers (RFC 6749 §5.1).
TOKEN_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_SECRET_LENGTH = 256


class FastTokens:
    """Answer the token endpoint's well-formed code exchanges and refresh grants in one round trip."""

    def __init__(self, server: OidcServer) -> None:
        self.server = server
        self.redeemer = TokenRedeemer(server.services.db)

    def answer(self, request: Request) -> Response | None:
        """The token answer, or None: let the general path handle (and explain) this request."""
        body = self.decide(request.headers.get("Authorization", ""), request.form)
        return Response(json.dumps(body), status=200, headers=TOKEN_HEADERS) if body is not None else None

    def decide(self, header: str, form: Mapping[str, str]) -> dict[str, Any] | None:
        """The token answer's JSON members, or None (nothing written): the general path must answer.

        ``header`` is the ``Authorization`` header ("" if absent), ``form`` the body's parameters (first value
        of each); shared by the Flask view and the WSGI lane (``idp.oidc.fastlane``)."""
        grant_type = form.get("grant_type")
        if grant_type not in ("authorization_code", "refresh_token"):
            return None
        client = self._client(header, form)
        if client is None or not client.check_grant_type(grant_type):
            return None
        if grant_type == "refresh_token":
            return self._refresh(client, form)
        return self._code(client, form)

    # --- client authentication -------------------------------------------------------------------

    def _client(self, header: str, form: Mapping[str, str]) -> OidcClient | None:
        """The client authenticated by its one registered secret method (its registration cached per process)."""
        if "client_assertion" in form or "client_assertion_type" in form:
            return None
        if header:
            if header[:6].lower() != "basic " or "client_secret" in form:
                return None
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, ValueError, UnicodeDecodeError):
                return None
            client_id, sep, secret = decoded.partition(":")
            client_id, secret, method = unquote(client_id), unquote(secret), "client_secret_basic"
            if not sep:
                return None
        else:
            client_id, secret, method = form.get("client_id", ""), form.get("client_secret", ""), "client_secret_post"
        if not client_id or not secret or len(secret) > MAX_SECRET_LENGTH:
            return None
        client = self.server.current_client(client_id)
        if client is None or client.record.auth_method != method or not client.check_client_secret(secret):
            return None
        return client

    # --- grants ----------------------------------------------------------------------------------

    def _refresh(self, client: OidcClient, form: Mapping[str, str]) -> dict[str, Any] | None:
        token = form.get("refresh_token", "")
        if not token or len(token) > 256 or form.get("scope"):
            return None
        new, plain = self._new_tokens(refresh=True)
        redeemed = self.redeemer.refresh(digest(token), client.client_id, self.server.now(), new)
        return self._respond(client, redeemed, plain) if redeemed else None

    def _code(self, client: OidcClient, form: Mapping[str, str]) -> dict[str, Any] | None:
        code, verifier = form.get("code", ""), form.get("code_verifier", "")
        redirect_uri = form.get("redirect_uri", "")
        if (not code or len(code) > 256 or (verifier and not CODE_VERIFIER_PATTERN.match(verifier))
                or "\x00" in redirect_uri or len(redirect_uri) > 2048):
            return None
        challenge = create_s256_code_challenge(verifier) if verifier else ""
        new, plain = self._new_tokens(refresh=client.check_grant_type("refresh_token"))
        redeemed = self.redeemer.code(digest(code), client.client_id, redirect_uri, challenge, self.server.now(), new)
        return self._respond(client, redeemed, plain) if redeemed else None

    def _new_tokens(self, refresh: bool) -> tuple[NewTokens, dict[str, str]]:
        policy, now = self.server.policy, self.server.now()
        plain = {"access_token": secrets.token_urlsafe(32)}
        if refresh:
            plain["refresh_token"] = secrets.token_urlsafe(32)
        new = NewTokens(access_hash=digest(plain["access_token"]), access_expires=now + policy.access_token_ttl,
                        refresh_hash=digest(plain["refresh_token"]) if refresh else None,
                        refresh_expires=now + policy.refresh_idle)
        return new, plain

    def _respond(self, client: OidcClient, redeemed: Redeemed, plain: dict[str, str]) -> dict[str, Any]:
        """The same answer as the general path: Bearer token, lifetime, scope, refresh token, ID token."""
        body: dict[str, Any] = {"token_type": "Bearer", "access_token": plain["access_token"],
                                "expires_in": int(self.server.policy.access_token_ttl.total_seconds()),
                                "scope": redeemed.scope}
        if "refresh_token" in plain:
            body["refresh_token"] = plain["refresh_token"]
        if "openid" in redeemed.scope.split():
            body["id_token"] = self.id_token(client, redeemed, plain["access_token"])
        return body

    def id_token(self, client: OidcClient, redeemed: Redeemed, access_token: str) -> str:
        alg = client.record.id_token_alg
        return self.server.sign(self.server.id_token_claims(redeemed.grant, redeemed.nonce, access_token, alg), alg=alg)
