"""authlib grants as this provider runs them (RFC 6749 §4.1 and §6, RFC 7636, OIDC Core 3.1.3).

PKCE is restricted to S256 and required for public clients; a code is consumed once every check passed (a
loser of the race is a replay); refresh tokens rotate on every use; ID tokens are made by the server.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge, create_s256_code_challenge
from authlib.oidc.core import OpenIDCode
from authlib.oidc.core.grants.util import is_openid_scope

from idp.oidc.models import OidcClient, StoredCode, StoredToken, Subject

if TYPE_CHECKING:
    from idp.oidc.server import OidcServer

#: Client authentication at the token, revocation and introspection endpoints (each client has one).
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
CONFIDENTIAL_METHODS = AUTH_METHODS[:3]


class S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE restricted to S256 (authlib defaults to plain) and required for public clients (RFC 9700 §2.1.1)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": lambda verifier, challenge: create_s256_code_challenge(verifier) == challenge}

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        challenge, method = data.get("code_challenge"), data.get("code_challenge_method")
        if not challenge and grant.request.client.public:
            raise InvalidRequestError("PKCE is required for public clients: send code_challenge (S256).")
        if challenge and method != "S256":
            # A missing method means "plain" (RFC 7636 §4.3): refused like an explicit one.
            raise InvalidRequestError("Only code_challenge_method=S256 is supported.")
        super().validate_code_challenge(grant, redirect_uri)


class IdToken(OpenIDCode):  # type: ignore[misc]
    """ID tokens at the token endpoint (code and refresh grants), signed RS256 with the active key."""

    def __init__(self, server: OidcServer) -> None:
        super().__init__(require_nonce=False)
        self.server = server

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return False  # codes are single use; a nonce is echoed, not tracked

    def __call__(self, grant: Any) -> None:
        grant.register_hook("after_create_token_response", self.process_token)
        if is_openid_scope(grant.request.payload.scope):
            grant.register_hook("after_validate_authorization_request_payload",
                                self.validate_openid_authorization_request)
        # prompt / max_age are decided with the common login (idp.oidc.prompt), not here.

    def encode_id_token(self, token: dict[str, Any], request: Any) -> str:
        return self.server.id_token(token, request)


class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    """Authorization code grant (RFC 6749 §4.1) on our storage."""

    server: OidcServer

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def generate_authorization_code(self) -> str:
        return secrets.token_urlsafe(32)

    def save_authorization_code(self, code: str, request: Any) -> None:
        self.server.save_code(code, request)

    def query_authorization_code(self, code: str, client: OidcClient) -> StoredCode | None:
        return self.server.find_code(code, client, self.request)

    def delete_authorization_code(self, authorization_code: StoredCode) -> None:
        """Nothing to do: the code was consumed before the tokens were made (``consume_code``)."""

    def authenticate_user(self, authorization_code: StoredCode) -> Subject:
        return Subject.of(authorization_code.record.grant)


def consume_code(grant: CodeGrant) -> None:
    """Consume the code once every check passed; a loser of a race is a replay (SECURITY O03, O04)."""
    grant.register_hook("before_create_token_response", lambda g: g.server.consume(g.request.authorization_code))


class RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    """Refresh tokens rotated on every use (SECURITY O21)."""

    server: OidcServer

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> StoredToken | None:
        return self.server.find_refresh(refresh_token, self.request.client, self.request.payload.scope)

    def authenticate_user(self, refresh_token: StoredToken) -> Subject:
        return Subject.of(refresh_token.record.grant)

    def issue_token(self, user: Subject, refresh_token: StoredToken) -> dict[str, Any]:
        self.server.rotate(refresh_token)
        token: dict[str, Any] = super().issue_token(user, refresh_token)
        return token

    def revoke_old_credential(self, refresh_token: StoredToken) -> None:
        """Nothing to do: ``rotate`` already marked it used."""
