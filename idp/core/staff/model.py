"""The school staff console's values: staff members, their schools and roles, their sessions, what they see."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class Role(enum.StrEnum):
    """What a staff member is for one school (an operator sees every school)."""

    REFERENT = "referent"
    SECRETARIAT = "secretariat"

    @property
    def label(self) -> str:
        """The French word the console uses."""
        return "Référent numérique" if self is Role.REFERENT else "Secrétariat"


class StaffState(enum.StrEnum):
    """Invited (enrolment link sent) → active (password and second factor) → disabled."""

    INVITED = "invited"
    ACTIVE = "active"
    DISABLED = "disabled"


class SecondFactor(enum.StrEnum):
    """How a staff member proved the second factor."""

    TOTP = "totp"
    WEBAUTHN = "webauthn"


@dataclass(frozen=True)
class Membership:
    """A staff member's role in one school."""

    uai: str
    role: Role
    school_name: str = ""


@dataclass(frozen=True)
class StaffMember:
    """A staff account (never in the pupils' register); no secret is ever held here but the password hash."""

    id: int
    email: str
    display_name: str
    state: StaffState
    operator: bool
    password_hash: str | None
    has_totp: bool
    passkeys: int
    memberships: tuple[Membership, ...] = ()
    created_at: dt.datetime | None = None
    last_login_at: dt.datetime | None = None

    @property
    def has_second_factor(self) -> bool:
        """A TOTP secret or at least one passkey is registered."""
        return self.has_totp or self.passkeys > 0

    @property
    def uais(self) -> frozenset[str]:
        """The schools this member may see (all of them for an operator: see ``Scope``)."""
        return frozenset(m.uai for m in self.memberships)


@dataclass(frozen=True)
class Scope:
    """The schools a request may read or change: every query of the console is filtered through it."""

    staff_id: int
    uais: frozenset[str]
    everything: bool = False
    #: Schools where the member is the référent numérique: campaigns (population-wide actions) need it.
    referent_uais: frozenset[str] = frozenset()

    def allows(self, uai: str) -> bool:
        """Whether a record of this school is visible."""
        return self.everything or uai in self.uais

    def leads(self, uai: str) -> bool:
        """Whether the member may act on the whole school (campaigns): its référent, or an operator."""
        return self.everything or uai in self.referent_uais


@dataclass(frozen=True)
class StaffSession:
    """A staff browser session: separate from the families' SSO sessions, short idle time."""

    id: str
    staff_id: int
    created_at: dt.datetime
    last_seen_at: dt.datetime
    second_factor: str = ""
    second_factor_at: dt.datetime | None = None
    challenge: str = ""
    failures: int = 0


@dataclass(frozen=True)
class StaffContext:
    """Who is at the console: the member, their session and the scope every query uses."""

    member: StaffMember
    session: StaffSession
    scope: Scope


@dataclass(frozen=True)
class Person:
    """A pupil or a legal representative as the register has them, with their account's state."""

    kind: str  # "student" | "rep"
    id: int
    uai: str
    family_name: str
    given_names: str
    class_code: str = ""
    ine: str = ""
    birth_date: dt.date | None = None
    mobile_phone: str = ""
    email: str = ""
    relationship: str = ""
    legal_responsibility: bool = True
    external_id: str = ""
    account_id: int | None = None
    identifier: str = ""
    account_state: str = "none"  # none, provisional, active, locked, closed
    last_login_at: dt.datetime | None = None
    provisional_expires_at: dt.datetime | None = None
    register_updated_at: dt.datetime | None = None
    #: The language the account's holder reads the screens in (None: not recorded yet, messages in French).
    account_language: str | None = None

    @property
    def key(self) -> str:
        """``student:12`` / ``rep:7``: how audit links name register records."""
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class Correction:
    """A mobile number or address the school recorded for a legal representative, apart from the register."""

    id: int
    representative_id: int
    field: str  # mobile_phone | email
    value: str
    register_value: str
    staff_name: str
    created_at: dt.datetime


@dataclass(frozen=True)
class HistoryLine:
    """One line of a family's history (activation, logins, staff actions)."""

    at: dt.datetime
    event: str
    account_id: int | None
    records: tuple[str, ...]
    details: dict[str, Any] = field(default_factory=dict)
    actor: str = ""


@dataclass(frozen=True)
class Family:
    """A pupil, their legal representatives, and everything the console shows about them."""

    student: Person
    school_name: str
    representatives: Sequence[Person]
    corrections: Sequence[Correction]
    history: Sequence[HistoryLine]
    routes: dict[int, str]
    locks: dict[int, dt.datetime]
    inbox: Sequence[InboxItem]


@dataclass(frozen=True)
class InboxItem:
    """A family's report or request for help, for one school."""

    kind: str  # wrong_link | birthdate | help_request
    id: int
    uai: str
    created_at: dt.datetime
    summary: str
    status: str  # new | handled
    student_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    handled_at: dt.datetime | None = None
    handled_by: str = ""


@dataclass(frozen=True)
class FunnelRow:
    """One line of the funnel: a school or a class, pupils or legal representatives."""

    label: str
    profile: str  # student | parent
    in_register: int
    with_account: int
    activated: int
    logged_in_this_month: int
    by_route: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CampaignTarget:
    """Who a campaign touches: a school, optionally one class, optionally one profile."""

    uai: str
    class_code: str = ""
    profile: str = ""  # "" both, student, parent
