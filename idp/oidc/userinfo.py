"""The UserInfo endpoint (OIDC Core 5.3): a bearer access token in, the granted claims out."""

from __future__ import annotations

from typing import Any

from idp.core.accounts.model import AccountState
from idp.core.identity import load_identity
from idp.oidc.claims import userinfo_claims
from idp.oidc.server import OidcServer
from idp.storage.oidc_store import digest


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
    with server.transaction() as uow:
        token = server.store.token(digest(access_token))
        if token is None or token.kind != "access" or not token.alive(now):
            raise BearerRejected("invalid_token", 401)
        if "openid" not in token.scope.split():
            raise BearerRejected("insufficient_scope", 403)
        account = uow.accounts.get(token.grant.account_id)
        client = server.query_client(token.client_id)
        if account is None or account.state is not AccountState.ACTIVE or client is None:
            raise BearerRejected("invalid_token", 401)
        identity = load_identity(uow, account)
    settings = server.services.settings
    return userinfo_claims(identity, token.scope.split(), sub=token.grant.sub, sector=client.sector,
                           secret=settings.pairwise_salt, logout_url=server.url("/logout"), now=now)
