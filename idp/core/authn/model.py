"""The protocol-neutral login: an authentication request, the SSO session that answers it, the assertion."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any

from idp.core.accounts.model import Account


class AuthMethod(enum.StrEnum):
    """How the person proved who they are in this SSO session."""

    PASSWORD = "password"
    PROVISIONAL = "provisional"
    #: The right password of an account whose password must be replaced (``must_change_password``, set by a
    #: campaign): the session only opens the change-password step, nothing is answered from it.
    PASSWORD_CHANGE = "password_change"
    SMS = "sms"
    FEDERATION = "federation"


@dataclass(frozen=True)
class AuthnRequest:
    """Who asks for a login and what they require; survives the login page and any detour."""

    id: str
    protocol: str
    client_id: str = ""
    client_name: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    force_authn: bool = False
    passive: bool = False
    profile_hint: str = ""
    created_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    session_id: str | None = None
    authenticated_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None


@dataclass(frozen=True)
class SsoSession:
    """A logged-in browser, stored server-side; the cookie only holds a random reference to it."""

    id: str
    public_id: str
    account_id: int
    auth_method: AuthMethod
    authn_instant: dt.datetime
    created_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime
    ended_at: dt.datetime | None = None
    ip: str = ""
    user_agent: str = ""


@dataclass(frozen=True)
class Assertion:
    """The outcome handed to a protocol front-end: this account, authenticated this way, at that time."""

    account: Account
    session: SsoSession
    request: AuthnRequest
    fresh_login: bool
