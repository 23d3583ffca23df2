"""The UserInfo endpoint (OIDC Core 5.3): a bearer access token in, the granted claims out."""

from __future__ import annotations

import datetime as dt
from typing import Any

from werkzeug.wrappers import Request, Response

from idp.core.accounts.model import AccountState
from idp.core.identity import identity_of
from idp.oidc.claims import userinfo_claims
from idp.oidc.server import OidcServer
from idp.oidc.token_endpoint import json_response
from idp.storage.accounts import SqlAccountRepository
from idp.storage.oidc_store import TokenRecord, digest

#: Scopes whose claims come from the school register (the others need the account row only).
REGISTER_SCOPES = frozenset({"fr_edu", "fr_edu_ine", "fr_edu_children"})


class BearerRejected(Exception):
    """The token is missing, unknown, expired or revoked (401), or lacks the ``openid`` scope (403)."""

    def __init__(self, error: str, status: int) -> None:
        super().__init__(error)
        self.error = error
        self.status = status


def claims_for(server: OidcServer, access_token: str) -> dict[str, Any]:
    """The claims one access token gives access to; ``sub`` equals the ID token's (SECURITY O20).

    Reads only: the token (with its grant and account state), the account, then the register records when a
    scope needs them; the postal code is never a claim. A register change reaches the next answer."""
    if not access_token or len(access_token) > 256:
        raise BearerRejected("invalid_token", 401)
    now = server.now()
    with server.reading() as store:
        token = _live(store.token(digest(access_token)), now)
        account = store.account(token.grant.account_id)
        client = server.client_in(store, token.client_id)
        if account is None or account.state is not AccountState.ACTIVE or client is None:
            raise BearerRejected("invalid_token", 401)
        register = bool(REGISTER_SCOPES.intersection(token.scope.split()))
        identity = identity_of(SqlAccountRepository(store.session), account, register=register, postal=False)
    settings = server.services.settings
    return userinfo_claims(identity, token.scope.split(), sub=token.grant.sub, sector=client.sector,
                           secret=settings.pairwise_salt, logout_url=server.url("/logout"), now=now)


def _bearer(request: Request) -> str:
    """The access token of a request: ``Authorization: Bearer`` (RFC 6750 §2.1) or a form body (§2.2)."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        return request.form.get("access_token", "")
    return ""


def userinfo(server: OidcServer, request: Request) -> Response:
    """UserInfo (OIDC Core 5.3) with a bearer token in the header or a POST body; never the query string."""
    try:
        if "access_token" in request.args:
            raise BearerRejected("invalid_request", 400)
        claims = claims_for(server, _bearer(request))
    except BearerRejected as rejected:
        return json_response({"error": rejected.error}, rejected.status,
                             {"WWW-Authenticate": f'Bearer error="{rejected.error}"'})
    return json_response(claims)


def _live(token: TokenRecord | None, now: dt.datetime) -> TokenRecord:
    """A live access token with the ``openid`` scope, or the bearer error (RFC 6750 §3.1)."""
    if token is None or token.kind != "access" or not token.alive(now):
        raise BearerRejected("invalid_token", 401)
    if "openid" not in token.scope.split():
        raise BearerRejected("insufficient_scope", 403)
    return token
