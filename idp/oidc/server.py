"""The authlib authorization server behind ``/oidc``: storage, keys, clock, tokens and ID tokens.

authlib does the protocol (RFC 6749 grants, RFC 7636, RFC 7009, RFC 7662, RFC 9207, OIDC Core and
RP-Initiated Logout); this module supplies storage, keys and our stricter choices: PKCE S256 only and
required for public clients, single-use codes consumed atomically after every check, refresh tokens
rotated with reuse revoking the grant, pinned algorithms for what we verify.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, cast

from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oauth2.rfc7636.challenge import CODE_VERIFIER_PATTERN
from authlib.oidc.core.util import create_half_hash
from werkzeug.wrappers import Request, Response

from idp.core import audit
from idp.core.ports import AuditEvent, UnitOfWork
from idp.oidc import jose
from idp.oidc.assertion import PrivateKeyJwt
from idp.oidc.client_auth import ClientAuthFailures
from idp.oidc.config import OidcPolicy
from idp.oidc.endpoints import EndSession, Introspection, Issuer, Revocation
from idp.oidc.grants import (
    AUTH_METHODS,
    CONFIDENTIAL_METHODS,
    CodeGrant,
    IdToken,
    RefreshGrant,
    S256Only,
    consume_code,
)
from idp.oidc.keyset import OidcKeySet
from idp.oidc.models import OidcClient, StoredCode, StoredToken, Subject
from idp.storage.oidc_store import GrantRecord, NewCode, NewTokens, SqlOidcStore, digest
from idp.storage.uow import SqlUnitOfWork
from idp.wiring import Services

log = logging.getLogger("idp.oidc")

ID_TOKEN_ALG = "RS256"


class RequestPayload(OAuth2Payload):  # type: ignore[misc]
    """The parameters of a werkzeug request as authlib reads them (query, and form for a POST)."""

    def __init__(self, request: Request) -> None:
        self._request = request

    @property
    def data(self) -> Any:
        return self._request.values

    @property
    def datalist(self) -> dict[str, list[str]]:
        values = self._request.values
        return {name: values.getlist(name) for name in values}


class PublicRequest(OAuth2Request):  # type: ignore[misc]
    """A werkzeug request (a Flask view's, or a back-channel handler's) under its public URL (the issuer's),
    whatever proxy terminated TLS before us."""

    def __init__(self, request: Request, uri: str) -> None:
        super().__init__(method=request.method, uri=uri, headers=request.headers)
        self._request = request
        self.payload = RequestPayload(request)
        self.remote_addr = request.remote_addr  # the caller (after ProxyFix's trusted hops), for throttling

    @property
    def args(self) -> Any:
        return self._request.args

    @property
    def form(self) -> Any:
        return self._request.form


class StoredRequest(OAuth2Request):  # type: ignore[misc]
    """An authorization request rebuilt from the parameters kept across the login page."""

    def __init__(self, uri: str, params: dict[str, str]) -> None:
        super().__init__("GET", uri, headers={})
        self.payload = BasicOAuth2Payload(params)
        self._params = params

    @property
    def args(self) -> dict[str, str]:
        return self._params

    @property
    def form(self) -> dict[str, str]:
        return {}


class OidcServer(AuthorizationServer):  # type: ignore[misc]
    """authlib's framework-free authorization server, bound to our storage, keys and clock: the token,
    revocation and introspection endpoints are plain WSGI handlers (``idp.oidc.token_endpoint``), the
    authorization and logout endpoints Flask views; each hands its werkzeug request in."""

    def __init__(self, services: Services, keys: OidcKeySet, policy: OidcPolicy) -> None:
        super().__init__()
        self.services, self.keys, self.policy = services, keys, policy
        self.issuer = services.settings.server.base_url
        self.base = self.issuer.rstrip("/")
        #: The request's unit of work, and whether it runs in autocommit.
        self._uow: ContextVar[tuple[SqlUnitOfWork, bool] | None] = ContextVar("oidc_uow", default=None)
        #: The tokens a redemption stored, handed to authlib by the token generator (``_generate_token``).
        self._issued: ContextVar[dict[str, str] | None] = ContextVar("oidc_issued", default=None)
        self._clients = services.caches.oidc_clients
        self.register_token_generator("default", self._generate_token)
        self.register_grant(CodeGrant, [S256Only(required=True), IdToken(self), consume_code])
        self.register_grant(RefreshGrant, [IdToken(self)])
        self.register_client_auth_method("private_key_jwt", PrivateKeyJwt(self))
        for endpoint in (Revocation, Introspection, EndSession):
            self.register_endpoint(endpoint)
        self.register_extension(Issuer(self.issuer))
        self.client_failures = ClientAuthFailures(self)

    # --- plumbing --------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """An absolute URL under the issuer."""
        return self.base + path

    def now(self) -> dt.datetime:
        return self.services.clock.now()

    @contextmanager
    def transaction(self, *, redeeming: bool = False) -> Iterator[SqlUnitOfWork]:
        """One database transaction for everything authlib asks during a request.

        ``redeeming`` (the token endpoint): on PostgreSQL a redemption is ONE statement (``redeem_code`` /
        ``redeem_refresh``), atomic by itself, so the unit of work runs in autocommit, without BEGIN and COMMIT
        round trips; what a refusal writes goes through ``atomically``. SQLite keeps the transaction."""
        autocommit = redeeming and self.services.db.dialect == "postgresql"
        with (self.services.uow.autocommit() if autocommit else self.services.uow()) as uow:
            uow.oidc = SqlOidcStore(uow)  # type: ignore[attr-defined]
            token = self._uow.set((uow, autocommit))
            try:
                yield uow
            finally:
                self._uow.reset(token)
                self._issued.set(None)

    @contextmanager
    def atomically(self) -> Iterator[None]:
        """Several writes that must hold together (a refusal's revocation and its audit line, a client's failure
        count and audit line): inside ``transaction`` already, or, in an autocommit unit, in a transaction of
        their own, committed at the end of the block."""
        current = self._uow.get()
        if current is None or not current[1]:
            yield
            return
        with self.services.uow() as uow:
            uow.oidc = SqlOidcStore(uow)  # type: ignore[attr-defined]
            token = self._uow.set((uow, False))
            try:
                yield
                uow.commit()
            finally:
                self._uow.reset(token)

    @property
    def uow(self) -> SqlUnitOfWork:
        current = self._uow.get()
        if current is None:
            raise RuntimeError("OIDC storage used outside OidcServer.transaction()")
        return current[0]

    @property
    def store(self) -> SqlOidcStore:
        return self.uow.oidc  # type: ignore[attr-defined,no-any-return]

    @contextmanager
    def reading(self) -> Iterator[SqlOidcStore]:
        """The store on a unit of work for reads only (in autocommit: no ``BEGIN``/``ROLLBACK`` round trips)."""
        with self.services.uow.autocommit() as uow:
            yield SqlOidcStore(uow)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        if not isinstance(request, Request):
            raise TypeError("OidcServer needs the werkzeug request of the endpoint")
        return PublicRequest(request, self.url(request.path))

    def create_json_request(self, request: Any) -> OAuth2Request:
        raise NotImplementedError("no JSON request endpoint is served")

    def handle_response(self, status_code: int, payload: Any, headers: list[tuple[str, str]]) -> Response:
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        return Response(payload, status=status_code, headers=headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No Flask signals: audit is written where things happen."""

    def audit(self, event: str, account_id: int | None, details: dict[str, Any]) -> None:
        self.uow.audit.record(AuditEvent(event=event, at=self.now(), account_id=account_id, details=details))

    # --- clients ---------------------------------------------------------------------------------

    def authenticate_client(self, request: Any, methods: list[str], endpoint: str = "token") -> OidcClient:
        """Client authentication for every endpoint that needs it (token, introspection, revocation); a failure is
        counted, audited and answered by ``ClientAuthFailures`` (SECURITY O28)."""
        try:
            return self._authenticate_client(request, methods, endpoint)
        except InvalidClientError as exc:
            raise self.client_failures.failed(request, exc, endpoint) from None

    def _authenticate_client(self, request: Any, methods: list[str], endpoint: str) -> OidcClient:
        """One authentication method per request (RFC 6749 §2.3): Basic plus body credentials is refused."""
        header = request.headers.get("Authorization", "")
        form = request.form
        if header and len(header.split(None, 1)) < 2:
            raise InvalidClientError(status_code=401, description="Malformed Authorization header.")
        if header[:6].lower() == "basic ":
            if "client_secret" in form or "client_assertion" in form:
                raise InvalidRequestError("Use only one client authentication method.")
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                decoded = ""
            if ":" not in decoded:
                raise InvalidClientError(status_code=401, description="Malformed Basic credentials.")
        client: OidcClient = super().authenticate_client(request, methods, endpoint)
        return client

    def query_client(self, client_id: str | None) -> OidcClient | None:
        """A registered, enabled client; kept in memory for ``[caches] oidc_clients_seconds`` (a registration
        change made by ``idp oidc`` reaches running workers within that delay)."""
        if not isinstance(client_id, str) or not client_id.isprintable() or len(client_id) > 64:
            return None
        if self._uow.get() is None:  # outside a transaction (the authorization endpoint): memory, else one read
            return self.current_client(client_id)
        return self.client_in(self.store, client_id)

    def client_in(self, store: SqlOidcStore, client_id: str) -> OidcClient | None:
        """``query_client`` reading from ``store`` on a cache miss."""
        found, client = self._clients.lookup(client_id)
        if found:
            return client  # type: ignore[no-any-return]
        record = store.client(client_id)
        client = OidcClient(record) if record is not None and record.enabled else None
        self._clients.put(client_id, client)
        return client

    def current_client(self, client_id: str) -> OidcClient | None:
        """``query_client`` outside a transaction: from memory, else one read in autocommit."""
        if not client_id.isprintable() or len(client_id) > 64:
            return None
        found, client = self._clients.lookup(client_id)
        if found:
            return client  # type: ignore[no-any-return]
        with self.reading() as store:
            return self.client_in(store, client_id)

    def forget_clients(self) -> None:
        """Drop the in-memory client cache (after a registration change in this process)."""
        self._clients.clear()

    # --- codes -----------------------------------------------------------------------------------

    def save_code(self, code: str, request: Any) -> None:
        """Prepare the grant and its code (hashed), bound to client, redirect_uri, nonce and PKCE challenge; the
        front-end stores them (``issue_code``) once authlib has built the answer."""
        client: OidcClient = request.client
        subject: Subject = request.user
        data = request.payload.data
        now = self.now()
        lifetime = self.policy.refresh_absolute if client.record.refresh_tokens else \
            self.policy.access_token_ttl + self.policy.code_ttl
        grant = GrantRecord(id=secrets.token_urlsafe(24), client_id=client.client_id, account_id=subject.account_id,
                            session_id=subject.session_id, sid=subject.sid, sub=subject.sub, scope=request.scope or "",
                            auth_time=subject.auth_time, acr=subject.acr, amr=subject.amr, created_at=now,
                            expires_at=now + lifetime)
        request.new_code = NewCode(grant=grant, code_hash=digest(code), redirect_uri=data.get("redirect_uri") or "",
                                   nonce=data.get("nonce") or "", code_challenge=data.get("code_challenge") or "",
                                   code_challenge_method=data.get("code_challenge_method") or "",
                                   expires_at=now + self.policy.code_ttl)

    def issue_code(self, new: NewCode, uow: UnitOfWork | None = None) -> None:
        """Store the code, its grant and the session participant (one statement on PostgreSQL), in ``uow`` (the
        one that read the SSO session, committed by its owner) or in an autocommit unit of its own."""
        if uow is not None:
            SqlOidcStore(cast(SqlUnitOfWork, uow)).issue_code(new)
            return
        with self.services.uow.autocommit() as own:
            SqlOidcStore(own).issue_code(new)
            own.commit()

    def find_code(self, code: str, client: OidcClient, request: Any) -> StoredCode | None:
        """Redeem a code and store the tokens it gives (``SqlOidcStore.redeem_code``: one conditional UPDATE, RFC
        6749 §4.1.2, §10.5, with the tokens' INSERT in the same statement on PostgreSQL).

        The statement matches only when everything authlib checks next holds (client, redirect_uri, PKCE), so a
        redeemed code always gets its answer. When it takes nothing, the code is only read to explain the
        refusal: a used code is a replay and revokes its grant; a live one is handed back unconsumed so that
        authlib names the mismatch (``redirect_uri``, ``code_verifier``), and ``consume`` refuses it whatever
        authlib decides.
        """
        form = request.form
        verifier, redirect_uri = form.get("code_verifier") or "", form.get("redirect_uri") or ""
        if (CODE_VERIFIER_PATTERN.match(verifier) or not verifier) and "\x00" not in redirect_uri \
                and len(redirect_uri) <= 2048 and len(code) <= 256:
            challenge = create_s256_code_challenge(verifier) if verifier else ""
            issued, new = self._new_tokens(client)
            taken = self.store.redeem_code(digest(code), client.client_id, redirect_uri, challenge, self.now(), new)
            if taken is not None:
                self._issued.set(issued)
                return StoredCode(taken, consumed=True)
        record = self.store.code(digest(code))
        if record is None or record.client_id != client.client_id:
            return None
        if record.used_at is not None:
            self._replayed(record.grant)
            return None
        if self.now() >= record.expires_at or record.grant.revoked_at is not None:
            return None
        return StoredCode(record)

    def consume(self, code: StoredCode) -> None:
        """Only a code redeemed by ``find_code`` gives tokens."""
        if not code.consumed:
            raise InvalidGrantError("The code does not match the authorization request.")

    def _replayed(self, grant: GrantRecord) -> None:
        with self.atomically():
            self.store.revoke_grant(grant.id, self.now())
            self.audit(audit_event("oidc_code_replayed"), grant.account_id, {"client_id": grant.client_id})

    # --- tokens ----------------------------------------------------------------------------------

    def _new_tokens(self, client: OidcClient) -> tuple[dict[str, str], NewTokens]:
        """Fresh token values for a redemption (a refresh token when the client has the grant: RFC 6749 §5.1), and
        what is stored of them (hashes, expiries)."""
        now = self.now()
        issued = {"access_token": secrets.token_urlsafe(32)}
        if client.check_grant_type("refresh_token"):
            issued["refresh_token"] = secrets.token_urlsafe(32)
        refresh = issued.get("refresh_token")
        return issued, NewTokens(access_hash=digest(issued["access_token"]),
                                 access_expires=now + self.policy.access_token_ttl,
                                 refresh_hash=digest(refresh) if refresh else None,
                                 refresh_expires=now + self.policy.refresh_idle)

    def _generate_token(self, grant_type: str, client: OidcClient, user: Any = None, scope: str | None = None,
                        expires_in: int | None = None, include_refresh_token: bool = True) -> dict[str, Any]:
        """authlib's token generator: the tokens the request's redemption stored (both grants issue a refresh
        token exactly when the client has that grant, as ``_new_tokens`` decided)."""
        issued = self._issued.get()
        self._issued.set(None)
        if issued is None or ("refresh_token" in issued) != bool(include_refresh_token
                                                               and client.check_grant_type("refresh_token")):
            raise RuntimeError("tokens are only issued by a redemption (OidcServer.find_code/find_refresh)")
        return {"token_type": "Bearer", **issued, "expires_in": int(self.policy.access_token_ttl.total_seconds()),
                "scope": scope or ""}

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Nothing left to store: the redemption stored these tokens (hashed) under the request's grant."""

    def find_token(self, token: str) -> StoredToken | None:
        record = self.store.token(digest(token)) if token and len(token) <= 256 else None
        return StoredToken(record, self.now()) if record else None

    def find_refresh(self, refresh_token: str, client: OidcClient, scope: str | None) -> StoredToken | None:
        """Redeem a refresh token and store the new tokens (``SqlOidcStore.redeem_refresh``: one conditional UPDATE,
        RFC 6749 §6, with the tokens' INSERT in the same statement on PostgreSQL); presenting a rotated one revokes
        the whole grant (SECURITY O21).

        A ``scope`` parameter wider than the grant's is refused before anything is redeemed (authlib names it);
        when the statement takes nothing, the token is only read to explain the refusal.
        """
        if not refresh_token or len(refresh_token) > 256:
            return None
        if not scope or self._scope_within(refresh_token, scope):
            issued, new = self._new_tokens(client)
            taken = self.store.redeem_refresh(digest(refresh_token), client.client_id, scope or None, self.now(), new)
            if taken is not None:
                self._issued.set(issued)
                return StoredToken(taken, self.now(), consumed=True)
        token = self.find_token(refresh_token)
        if token is None or token.record.kind != "refresh" or token.record.client_id != client.client_id:
            return None
        if token.record.used_at is not None:
            self._reused(token)
            return None
        if token.is_revoked():
            return None
        return token if scope else None  # a wider scope: authlib answers invalid_scope (``rotate`` refuses it)

    def _scope_within(self, refresh_token: str, scope: str) -> bool:
        """Whether a ``scope`` parameter stays within the refresh token's (RFC 6749 §6), read before redeeming."""
        token = self.find_token(refresh_token)
        return token is not None and set(scope.split()) <= set(token.record.scope.split())

    def rotate(self, token: StoredToken) -> None:
        """Only a refresh token redeemed by ``find_refresh`` gives new tokens."""
        if not token.consumed:
            raise InvalidGrantError()

    def _reused(self, token: StoredToken) -> None:
        grant = token.record.grant
        with self.atomically():
            self.store.revoke_grant(grant.id, self.now())
            self.audit(audit_event("oidc_refresh_reused"), grant.account_id, {"client_id": grant.client_id})

    def revoke(self, token: StoredToken) -> None:
        if token.record.kind == "refresh":
            self.store.revoke_grant(token.record.grant.id, self.now())
        else:
            self.store.revoke_token(token.record.token_hash, self.now())

    def id_token(self, token: dict[str, Any], request: Any) -> str:
        """The ID token of authlib's general path (code or refresh grant)."""
        alg = request.client.record.id_token_alg
        code: StoredCode | None = request.authorization_code
        grant: GrantRecord = (code or request.refresh_token).record.grant
        nonce = code.record.nonce if code is not None else ""
        return self.sign(self.id_token_claims(grant, nonce, token["access_token"], alg), alg=alg)

    def id_token_claims(self, grant: GrantRecord, nonce: str, access_token: str, alg: str) -> dict[str, Any]:
        """ID token claims (OIDC Core 2, 3.1.3.6): login facts from the grant, ``at_hash``, ``nonce`` of a code."""
        now = int(self.now().timestamp())
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": grant.sub, "aud": grant.client_id, "exp": now + int(self.policy.id_token_ttl.total_seconds()),
            "iat": now, "auth_time": int(grant.auth_time.timestamp()), "sid": grant.sid,
            "at_hash": create_half_hash(access_token, alg).decode("ascii"),
        }
        if grant.acr:
            claims["acr"] = grant.acr
        if grant.amr:
            claims["amr"] = list(grant.amr)
        if nonce:
            claims["nonce"] = nonce
        return claims

    def sign(self, claims: dict[str, Any], typ: str = "JWT", alg: str = ID_TOKEN_ALG) -> str:
        """Sign with the active key for ``alg`` (loaded once, cached by the key set)."""
        kid, key = self.keys.signing_key(alg)
        return jose.sign_compact(claims, key, kid, alg, typ)

    def verify_id_token_hint(self, hint: str) -> dict[str, Any]:
        """An ID token we issued (expired is fine, RP-Initiated Logout §2); anything else is refused."""
        try:
            claims = jose.verify(hint, self.keys.verification_keys(), ["RS256", "ES256"])
        except jose.JwtRejected as exc:
            raise InvalidRequestError("Invalid id_token_hint.") from exc
        if claims.get("iss") != self.issuer or not isinstance(claims.get("sub"), str):
            raise InvalidRequestError("Invalid id_token_hint.")
        return claims


def audit_event(name: str) -> str:
    """OIDC audit event names (kept beside the core's in the audit trail)."""
    return getattr(audit, name.upper(), name)

__all__ = ["AUTH_METHODS", "CONFIDENTIAL_METHODS", "OidcServer", "StoredRequest"]
