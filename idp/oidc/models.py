"""What authlib's server handles: our clients, subjects, codes and tokens behind its mixin interfaces."""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oidc.core import AuthorizationCodeMixin

from idp.core import urls
from idp.core.identity import pairwise_id
from idp.oidc.claims import allowed_scopes
from idp.storage.oidc_store import ClientRecord, CodeRecord, GrantRecord, TokenRecord, digest

#: Sector of clients registered with ``subject_type = public``: one stable id per person for all of them.
PUBLIC_SECTOR = "public"


def sector_of(record: ClientRecord) -> str:
    """The pairwise sector: the registered sector identifier, else the host of the redirect URIs (OIDC Core 8.1)."""
    if record.sector_identifier:
        return record.sector_identifier
    return (urlsplit(record.redirect_uris[0]).hostname or record.client_id) if record.redirect_uris else record.client_id


class OidcClient(ClientMixin):  # type: ignore[misc]
    """A registered client, as authlib asks about it."""

    def __init__(self, record: ClientRecord) -> None:
        self.record = record
        self.client_id = record.client_id

    def get_client_id(self) -> str:
        return self.record.client_id

    def get_default_redirect_uri(self) -> str | None:
        """Only a client with exactly one registered URI has a default (RFC 6749 §3.1.2.3)."""
        uris = self.record.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        """Requested scopes within the client's allowlist; others are dropped (SECURITY O13)."""
        return " ".join(allowed_scopes(scope_to_list(scope) or [], self.record.scopes))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Byte-for-byte comparison with a registered URI (OIDC Core 3.1.2.1, SECURITY O01), after the one
        URL-safety check every candidate goes through (``idp.core.urls``: no dot-segment, no encoded slash)."""
        return redirect_uri in self.record.redirect_uris and urls.is_safe(redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        """Compare hashes in constant time; the secret itself is never stored (SECURITY O08)."""
        expected = self.record.secret_hash
        return bool(expected) and hmac.compare_digest(digest(client_secret), expected)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """A client authenticates only with the one method it registered."""
        return method == self.record.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code" or (grant_type == "refresh_token" and self.record.refresh_tokens)

    @property
    def client_metadata(self) -> dict[str, Any]:
        """What authlib's end-session endpoint reads."""
        return {"post_logout_redirect_uris": list(self.record.post_logout_redirect_uris)}

    @property
    def public(self) -> bool:
        return self.record.auth_method == "none"

    @property
    def sector(self) -> str:
        return sector_of(self.record) if self.record.subject_type == "pairwise" else PUBLIC_SECTOR

    def subject_for(self, salt: str, account_public_id: str) -> str:
        """``sub`` for this client: pairwise per sector, or one public id per person (OIDC Core 8)."""
        return pairwise_id(salt, self.sector, account_public_id)


@dataclass(frozen=True)
class Subject:
    """The person behind a request (authlib's "user"), as seen by one client."""

    account_id: int
    sub: str
    session_id: str
    sid: str
    auth_time: dt.datetime
    acr: str
    amr: tuple[str, ...]

    def get_user_id(self) -> str:
        return self.sub

    @classmethod
    def of(cls, grant: GrantRecord) -> Subject:
        return cls(account_id=grant.account_id, sub=grant.sub, session_id=grant.session_id, sid=grant.sid,
                   auth_time=grant.auth_time, acr=grant.acr, amr=grant.amr)


class StoredCode(AuthorizationCodeMixin):  # type: ignore[misc]
    """An authorization code found in storage."""

    def __init__(self, record: CodeRecord, consumed: bool = False) -> None:
        self.record = record
        self.consumed = consumed
        self.code_challenge = record.code_challenge or None
        self.code_challenge_method = record.code_challenge_method or None

    def get_redirect_uri(self) -> str:
        return self.record.redirect_uri

    def get_scope(self) -> str:
        return self.record.grant.scope

    def get_nonce(self) -> str | None:
        return self.record.nonce or None

    def get_auth_time(self) -> int:
        return int(self.record.grant.auth_time.timestamp())

    def get_acr(self) -> str:
        return self.record.grant.acr

    def get_amr(self) -> list[str]:
        return list(self.record.grant.amr)


class StoredToken(TokenMixin):  # type: ignore[misc]
    """An access or refresh token found in storage, judged at ``now``."""

    def __init__(self, record: TokenRecord, now: dt.datetime, consumed: bool = False) -> None:
        self.record = record
        self.now = now
        self.consumed = consumed

    def check_client(self, client: OidcClient) -> bool:
        return self.record.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.record.scope

    def get_expires_in(self) -> int:
        return int((self.record.expires_at - self.record.created_at).total_seconds())

    def is_expired(self) -> bool:
        return self.now >= self.record.expires_at

    def is_revoked(self) -> bool:
        return not self.record.alive(self.now)
