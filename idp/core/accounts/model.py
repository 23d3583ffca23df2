"""Accounts: what a person logs in with."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from idp.core.i18n import N_


class Profile(enum.StrEnum):
    """Who the account belongs to: a legal representative or a pupil."""

    PARENT = "parent"
    STUDENT = "student"

    @property
    def label(self) -> str:
        """The French word the screens use."""
        return N_("Représentant légal") if self is Profile.PARENT else N_("Élève")

    @property
    def choice(self) -> str:
        """The word the login screens name this profile by (``?profil=parent|eleve``)."""
        return "parent" if self is Profile.PARENT else "eleve"

    @classmethod
    def from_choice(cls, choice: str) -> Profile | None:
        """The profile a login screen's ``profil`` names, or None when it names none."""
        return {"parent": cls.PARENT, "eleve": cls.STUDENT}.get(choice)


class AccountState(enum.StrEnum):
    """Life cycle: provisional → active, or locked by the helpdesk, or closed when the person leaves."""

    PROVISIONAL = "provisional"
    ACTIVE = "active"
    LOCKED = "locked"
    CLOSED = "closed"


@dataclass(frozen=True)
class Account:
    """An account as the core sees it (never holds a clear password)."""

    id: int
    public_id: str
    identifier: str
    profile: Profile
    state: AccountState
    family_name: str
    given_names: str
    password_hash: str | None
    must_change_password: bool = False
    provisional_expires_at: dt.datetime | None = None
    email: str = ""
    email_verified: bool = False
    phone: str = ""
    phone_verified: bool = False
    created_at: dt.datetime | None = None
    last_login_at: dt.datetime | None = None
    #: When a register import last changed what this account's answers release: copies kept before are stale.
    register_changed_at: dt.datetime | None = None
    #: The language the person reads the screens in, recorded at login, activation, recovery and the language
    #: switch (``idp.core.accounts.language``); None until then. Messages staff send go out in it.
    language: str | None = None

    @property
    def display_name(self) -> str:
        """Given name then family name, as the screens greet people."""
        first = self.given_names.split(" ")[0] if self.given_names else ""
        return f"{first} {self.family_name}".strip()


@dataclass(frozen=True)
class NewAccount:
    """What is needed to create an account (the identifier is generated)."""

    profile: Profile
    family_name: str
    given_names: str
    state: AccountState = AccountState.ACTIVE
    password_hash: str | None = None
    provisional_expires_at: dt.datetime | None = None
    must_change_password: bool = False
    email: str = ""
    phone: str = ""
