"""The UserInfo endpoint (OIDC Core 5.3): a bearer access token in, the granted claims out."""

from __future__ import annotations

import datetime as dt
from typing import Any

from idp.core.accounts.model import AccountState
from idp.core.identity import identity_of
from idp.oidc.claims import userinfo_claims
from idp.oidc.server import OidcServer
from idp.storage.accounts import SqlAccountRepository
from idp.storage.oidc_store import SqlOidcStore, TokenRecord, digest

#: Scopes whose claims come from the school register (the others need the account row only).
REGISTER_SCOPES = frozenset({"fr_edu", "fr_edu_ine", "fr_edu_children"})


class BearerRejected(Exception):
    """The token is missing, unknown, expired or revoked (401), or lacks the ``openid`` scope (403)."""

    def __init__(self, error: str, status: int) -> None:
        super().__init__(error)
        self.error = error
        self.status = status


def claims_for(server: OidcServer, access_token: str) -> dict[str, Any]:
    """The claims one access token gives access to; ``sub`` equals the ID token's (SECURITY O20)."""
    if not access_token or len(access_token) > 256:
        raise BearerRejected("invalid_token", 401)
    now = server.now()
    redeemer = server.fast.redeemer
    if redeemer.one_statement_bearer:
        # PostgreSQL: token, grant, account and register records in one statement in autocommit.
        bearer = redeemer.bearer(digest(access_token))
        token = _live(bearer.token if bearer else None, now)
        account = bearer.account if bearer else None
        client = server.current_client(token.client_id)
        if account is None or account.state is not AccountState.ACTIVE or client is None:
            raise BearerRejected("invalid_token", 401)
        register = bool(REGISTER_SCOPES.intersection(token.scope.split()))
        records = _Loaded(bearer.records if bearer else [])
        identity = identity_of(records, account, register=register, postal=False)  # type: ignore[arg-type]
    else:
        # Reads only: the token (with its grant and account state), the account, then the register records
        # when a scope needs them; the postal code is never a claim.
        with redeemer.reading() as session:
            store = SqlOidcStore(session)
            token = _live(store.token(digest(access_token)), now)
            found = store.account(token.grant.account_id)
            client = server.client_in(store, token.client_id)
            if found is None or found.state is not AccountState.ACTIVE or client is None:
                raise BearerRejected("invalid_token", 401)
            account = found
            register = bool(REGISTER_SCOPES.intersection(token.scope.split()))
            identity = identity_of(SqlAccountRepository(session), account, register=register, postal=False)
    settings = server.services.settings
    return userinfo_claims(identity, token.scope.split(), sub=token.grant.sub, sector=client.sector,
                           secret=settings.pairwise_salt, logout_url=server.url("/logout"), now=now)


class _Loaded:
    """The register records the statement already read, where ``identity_of`` asks its repository for them."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self._records = records

    def linked_records(self, account_id: int) -> list[dict[str, Any]]:
        return self._records

    def postal_code(self, account_id: int) -> str:
        return ""  # never asked: the postal code is never a claim (postal=False)


def _live(token: TokenRecord | None, now: dt.datetime) -> TokenRecord:
    """A live access token with the ``openid`` scope, or the bearer error (RFC 6750 §3.1)."""
    if token is None or token.kind != "access" or not token.alive(now):
        raise BearerRejected("invalid_token", 401)
    if "openid" not in token.scope.split():
        raise BearerRejected("insufficient_scope", 403)
    return token
