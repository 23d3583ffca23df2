"""The UserInfo endpoint (OIDC Core 5.3): a bearer access token in, the granted claims out."""

from __future__ import annotations

import datetime as dt
from typing import Any

from werkzeug.wrappers import Request, Response

from idp.core.accounts.model import AccountState
from idp.core.identity import identity_with
from idp.oidc.claims import userinfo_claims
from idp.oidc.server import OidcServer
from idp.oidc.token_endpoint import json_response
from idp.storage.oidc_store import TokenRecord, digest

#: Scopes whose claims come from the school register (the others need the account row only).
REGISTER_SCOPES = frozenset({"fr_edu", "fr_edu_ine", "fr_edu_children"})


def needs_register(scope: str) -> bool:
    """Whether a token's scope releases register claims."""
    return not REGISTER_SCOPES.isdisjoint(scope.split())


class BearerRejected(Exception):
    """The token is missing, unknown, expired or revoked (401), or lacks the ``openid`` scope (403)."""

    def __init__(self, error: str, status: int) -> None:
        super().__init__(error)
        self.error = error
        self.status = status


def claims_for(server: OidcServer, access_token: str) -> dict[str, Any]:
    """The claims one access token gives access to; ``sub`` equals the ID token's (SECURITY O20).

    One read (``SqlOidcStore.bearer``): the token with its grant, the account, and its register records when a
    scope needs them; the postal code is never a claim. A register change reaches the next answer."""
    if not access_token or len(access_token) > 256:
        raise BearerRejected("invalid_token", 401)
    now = server.now()
    with server.reading() as store:
        bearer = store.bearer(digest(access_token), register=needs_register)
        if bearer is None:
            raise BearerRejected("invalid_token", 401)
        token = _live(bearer.token, now)
        client = server.client_in(store, token.client_id)
    account = bearer.account
    if account is None or account.state is not AccountState.ACTIVE or client is None:
        raise BearerRejected("invalid_token", 401)
    identity = identity_with(account, bearer.records if needs_register(token.scope) else ())
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


def _live(token: TokenRecord, now: dt.datetime) -> TokenRecord:
    """A live access token with the ``openid`` scope, or the bearer error (RFC 6750 §3.1)."""
    if token.kind != "access" or not token.alive(now):
        raise BearerRejected("invalid_token", 401)
    if "openid" not in token.scope.split():
        raise BearerRejected("insufficient_scope", 403)
    return token
