"""What the federation route needs from the outside: the upstream provider and its storage."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from idp.core.activation.model import RepresentativeRecord
from idp.core.federation.matching import PivotIdentity
from idp.core.ports import UnitOfWork


@dataclass(frozen=True)
class UpstreamAnswer:
    """A verified answer of the provider: the pivot identity and the ID token (kept for its logout)."""

    pivot: PivotIdentity
    id_token: str


@dataclass(frozen=True)
class PendingState:
    """A ``state`` we sent upstream: bound to one browser, used once, short-lived (F01)."""

    id: str
    purpose: str  # login | link | logout
    browser_hash: str
    nonce: str
    created_at: dt.datetime
    expires_at: dt.datetime
    request_id: str = ""
    account_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


class Upstream(Protocol):
    """The upstream OpenID provider, endpoints pinned by configuration (F04)."""

    issuer: str

    def available(self) -> bool: ...
    def authorization_url(self, state: str, nonce: str) -> str: ...
    def authenticate(self, code: str, nonce: str) -> UpstreamAnswer: ...
    def logout_url(self, id_token: str, state: str) -> str: ...


class FederationStore(Protocol):
    """States, links ``(issuer, sub)`` → account, upstream ID tokens per SSO session, register lookup."""

    def add_state(self, state: PendingState) -> None: ...
    def take_state(self, state_id: str, at: dt.datetime) -> PendingState | None: ...
    def linked_account(self, issuer: str, sub: str) -> int | None: ...
    def is_linked(self, account_id: int, issuer: str) -> bool: ...
    def link(self, issuer: str, sub: str, account_id: int, at: dt.datetime) -> bool: ...
    def unlink(self, account_id: int, issuer: str) -> int: ...
    def keep_id_token(self, session_id: str, issuer: str, id_token: str, at: dt.datetime) -> None: ...
    def take_id_token(self, session_id: str) -> str | None: ...
    def representatives_named(self, family_keys: Sequence[str]) -> Sequence[RepresentativeRecord]: ...


FederationStoreFactory = Callable[[UnitOfWork], FederationStore]
