"""The UserInfo endpoint (OIDC Core 5.3): a bearer access token in, the granted claims out."""

from __future__ import annotations

from typing import Any

from idp.core.accounts.model import AccountState
from idp.core.identity import identity_of
from idp.oidc.claims import userinfo_claims
from idp.oidc.server import OidcServer
from idp.storage.accounts import SqlAccountRepository
from idp.storage.oidc_store import SqlOidcStore, digest

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
    # Reads only: in autocommit on PostgreSQL, the token (with its grant and account state) then the account,
    # then the register records when a scope needs them; the postal code is never a claim.
    with server.fast.redeemer.reading() as session:
        store = SqlOidcStore(session)
        token = store.token(digest(access_token))
        if token is None or token.kind != "access" or not token.alive(now):
            raise BearerRejected("invalid_token", 401)
        scopes = token.scope.split()
        if "openid" not in scopes:
            raise BearerRejected("insufficient_scope", 403)
        account = store.account(token.grant.account_id)
        client = server.client_in(store, token.client_id)
        if account is None or account.state is not AccountState.ACTIVE or client is None:
            raise BearerRejected("invalid_token", 401)
        identity = identity_of(SqlAccountRepository(session), account, register=bool(REGISTER_SCOPES.intersection(scopes)), postal=False)
    settings = server.services.settings
    return userinfo_claims(identity, scopes, sub=token.grant.sub, sector=client.sector,
                           secret=settings.pairwise_salt, logout_url=server.url("/logout"), now=now)
