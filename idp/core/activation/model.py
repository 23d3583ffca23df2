"""Values of the activation and recovery flows: transactions, codes, register records, queued messages."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any


class TxKind(enum.StrEnum):
    """What a transaction is for; a code is bound to its transaction and to this purpose (SECURITY A06)."""

    PARENT_SMS = "parent_sms"
    PROVISIONAL = "provisional"
    RECOVER_IDENTIFIER = "recover_identifier"
    RECOVER_PASSWORD = "recover_password"
    CHANGE_EMAIL = "change_email"
    CHANGE_PHONE = "change_phone"
    FEDERATION = "federation"


class TxState(enum.StrEnum):
    """Steps of the state machines; a step is only accepted from the state before it (SECURITY A09)."""

    CODE_SENT = "code_sent"
    CODE_VERIFIED = "code_verified"
    CHILDREN_OK = "children_ok"
    EXISTING = "existing"
    DONE = "done"
    CANCELLED = "cancelled"


class Channel(enum.StrEnum):
    """How a message reaches a person."""

    SMS = "sms"
    MAIL = "mail"


@dataclass(frozen=True)
class Transaction:
    """One run of a flow, held server-side; the browser only holds a random token whose hash is ``id``."""

    id: str
    kind: str
    state: TxState
    browser_hash: str
    ip_key: str
    created_at: dt.datetime
    expires_at: dt.datetime
    request_id: str = ""
    account_id: int | None = None
    channel: str = ""
    destination: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    sends: int = 0
    last_send_at: dt.datetime | None = None
    failures: int = 0
    #: The identifier reserved for the account this transaction will create ("" before the children are confirmed).
    reserved_identifier: str = ""


@dataclass(frozen=True)
class Code:
    """A stored one-time code: only its HMAC, its attempts and its expiry."""

    id: int
    transaction_id: str
    purpose: str
    code_hash: str
    attempts: int
    expires_at: dt.datetime


@dataclass(frozen=True)
class EmailToken:
    """A stored e-mail confirmation link (HMAC of the token)."""

    id: str
    account_id: int
    email: str
    expires_at: dt.datetime
    used_at: dt.datetime | None


@dataclass(frozen=True)
class QueuedMessage:
    """A message to deliver after the answer; ``recipient_key`` (an HMAC) is what limits count by."""

    channel: str
    to: str
    text: str
    recipient_key: str
    subject: str = ""
    purpose: str = ""
    transaction_id: str = ""


@dataclass(frozen=True)
class RepresentativeRecord:
    """A legal representative's register record (one per school)."""

    id: int
    uai: str
    external_id: str
    family_name: str
    given_names: str
    mobile_phone: str
    email: str
    account_id: int | None
    school: str = ""


@dataclass(frozen=True)
class ChildRecord:
    """A pupil reached through a representative record."""

    student_id: int
    representative_id: int
    ine: str
    family_name: str
    given_names: str
    birth_date: dt.date
    uai: str
    school: str
    class_code: str = ""


@dataclass(frozen=True)
class StudentRecord:
    """A pupil's record as the letter run sees it, with the state of its account if any."""

    id: int
    ine: str
    uai: str
    school: str
    family_name: str
    given_names: str
    birth_date: dt.date
    class_code: str
    account_id: int | None
    account_state: str
