"""SQL storage of activation, recovery and delivery: transactions, codes, e-mail links, wrong-link reports,
the delivery queue and the development outbox.

Codes and link tokens are stored as HMAC-SHA256 only. Queued messages (which carry codes until sent) are
encrypted with a key derived from the secret key and wiped once delivered; only the development outbox keeps
messages in clear, which is its purpose.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import (
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    and_,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from idp.core.activation.model import (
    ChildRecord,
    Code,
    EmailToken,
    QueuedMessage,
    RepresentativeRecord,
    StudentRecord,
    Transaction,
    TxState,
)
from idp.storage import locks
from idp.storage.models import (
    AccountRow,
    Base,
    RepresentativeRow,
    SchoolRow,
    StudentLinkRow,
    StudentRow,
    UtcDateTime,
)

# Activation matches a typed mobile number against the register: look it up by index, not by scan.
Index("ix_representatives_mobile_phone", RepresentativeRow.mobile_phone)


class ActivationTxRow(Base):
    """A server-side state machine (activation, recovery, contact change); its id is the SHA-256 of the
    random token the browser holds."""

    __tablename__ = "activation_transactions"
    __table_args__ = (Index("ix_activation_tx_ip", "ip_key", "created_at"),
                      Index("ix_activation_tx_account", "account_id", "kind"),
                      # One transaction per reserved identifier: a reservation that has ended is set back to NULL
                      # before its identifier is reserved again (``SqlAccountRepository.reserve_identifier``).
                      Index("ux_activation_tx_reserved_identifier", "reserved_identifier", unique=True))

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    state: Mapped[str] = mapped_column(String(20))
    browser_hash: Mapped[str] = mapped_column(String(64))
    ip_key: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(64), default="")
    account_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    channel: Mapped[str] = mapped_column(String(8), default="")
    destination: Mapped[str] = mapped_column(String(254), default="")
    data: Mapped[str] = mapped_column(Text, default="{}")
    sends: Mapped[int] = mapped_column(Integer, default=0)
    last_send_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    #: The ``p.nomNN`` identifier shown before the password, kept for this transaction's account while it lives.
    reserved_identifier: Mapped[str | None] = mapped_column(String(64), nullable=True)


def reservation_holds(at: dt.datetime) -> ColumnElement[bool]:
    """Whether a transaction's reserved identifier is still its own at ``at``: the transaction has neither ended
    (account made, or cancelled) nor expired. Other reservations are ignored, and released when reserved again."""
    return and_(ActivationTxRow.reserved_identifier.is_not(None), ActivationTxRow.expires_at > at,
                ActivationTxRow.state.not_in([TxState.DONE.value, TxState.CANCELLED.value]))


class ActivationCodeRow(Base):
    """A one-time code (HMAC only), bound to its transaction and purpose; attempts counted here."""

    __tablename__ = "activation_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transaction_id: Mapped[str] = mapped_column(ForeignKey("activation_transactions.id", ondelete="CASCADE"),
                                                index=True)
    purpose: Mapped[str] = mapped_column(String(24))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class EmailTokenRow(Base):
    """An e-mail confirmation link (its id is the HMAC of the 128-bit token)."""

    __tablename__ = "email_tokens"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class WrongLinkReportRow(Base):
    """"Je ne suis pas le représentant légal de cet élève": a report for the school to check."""

    __tablename__ = "wrong_link_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uai: Mapped[str] = mapped_column(String(8), index=True)
    representative_id: Mapped[int] = mapped_column(Integer)
    student_id: Mapped[int] = mapped_column(Integer)
    transaction_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10), default="open")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class DeliveryRow(Base):
    """A message waiting to be sent (or sent: then its encrypted payload is wiped)."""

    __tablename__ = "delivery_queue"
    __table_args__ = (Index("ix_delivery_due", "status", "next_attempt_at"),
                      Index("ix_delivery_recipient", "recipient_key", "created_at"),
                      Index("ix_delivery_channel", "channel", "created_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))
    recipient_key: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text, default="")
    purpose: Mapped[str] = mapped_column(String(24), default="")
    transaction_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class OutboxRow(Base):
    """Development outbox: messages "sent" by the outbox backends, read by ``idp outbox`` and /dev/outbox."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))
    recipient: Mapped[str] = mapped_column(String(254), index=True)
    subject: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


# --- payload encryption --------------------------------------------------------------------------------


class PayloadCipher:
    """AES-GCM with a key derived from the secret key: queued messages are unreadable in a dump."""

    def __init__(self, secret_key: str) -> None:
        key = hmac.new(secret_key.encode(), b"idp-delivery-queue-v1", hashlib.sha256).digest()
        self._aead = AESGCM(key)

    def seal(self, data: dict[str, str]) -> str:
        """Encrypt a small JSON document."""
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, json.dumps(data).encode(), None)
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, token: str) -> dict[str, str]:
        """Decrypt what ``seal`` produced."""
        raw = base64.urlsafe_b64decode(token.encode())
        data: dict[str, str] = json.loads(self._aead.decrypt(raw[:12], raw[12:], None))
        return data


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def _to_tx(row: ActivationTxRow) -> Transaction:
    return Transaction(
        id=row.id, kind=row.kind, state=TxState(row.state), browser_hash=row.browser_hash, ip_key=row.ip_key,
        request_id=row.request_id, account_id=row.account_id, channel=row.channel, destination=row.destination,
        data=json.loads(row.data), sends=row.sends, last_send_at=row.last_send_at, failures=row.failures,
        created_at=row.created_at, expires_at=row.expires_at, reserved_identifier=row.reserved_identifier or "",
    )


class SqlActivationStore:
    """``ActivationStore`` on SQLAlchemy, bound to one unit of work's session."""

    def __init__(self, session: Session, cipher: PayloadCipher) -> None:
        self._s = session
        self._cipher = cipher

    # --- transactions ------------------------------------------------------------------------------

    def add_transaction(self, tx: Transaction) -> None:
        self._s.add(ActivationTxRow(
            id=tx.id, kind=tx.kind, state=tx.state.value, browser_hash=tx.browser_hash, ip_key=tx.ip_key,
            request_id=tx.request_id, account_id=tx.account_id, channel=tx.channel, destination=tx.destination,
            data=json.dumps(tx.data), sends=tx.sends, last_send_at=tx.last_send_at, failures=tx.failures,
            created_at=tx.created_at, updated_at=tx.created_at, expires_at=tx.expires_at,
        ))
        self._s.flush()

    def get_transaction(self, tx_id: str) -> Transaction | None:
        row = self._s.get(ActivationTxRow, tx_id)
        return _to_tx(row) if row else None

    def move(self, tx_id: str, from_states: Sequence[TxState], to_state: TxState, at: dt.datetime,
             **values: Any) -> bool:
        """Change state only from one of ``from_states`` (conditional update: one winner)."""
        if "data" in values:
            values["data"] = json.dumps(values["data"])
        result = self._s.execute(update(ActivationTxRow).where(
            ActivationTxRow.id == tx_id, ActivationTxRow.state.in_([s.value for s in from_states]))
            .values(state=to_state.value, updated_at=at, **values))
        return _rowcount(result) == 1

    def add_failure(self, tx_id: str, at: dt.datetime) -> int:
        self._s.execute(update(ActivationTxRow).where(ActivationTxRow.id == tx_id)
                        .values(failures=ActivationTxRow.failures + 1, updated_at=at))
        return int(self._s.scalar(select(ActivationTxRow.failures).where(ActivationTxRow.id == tx_id)) or 0)

    def count_send(self, tx_id: str, max_sends: int, not_after: dt.datetime, at: dt.datetime) -> bool:
        """Count one more send if the transaction has sends left and its cooldown is over."""
        result = self._s.execute(update(ActivationTxRow).where(
            ActivationTxRow.id == tx_id, ActivationTxRow.sends < max_sends,
            or_(ActivationTxRow.last_send_at.is_(None), ActivationTxRow.last_send_at <= not_after))
            .values(sends=ActivationTxRow.sends + 1, last_send_at=at, updated_at=at))
        return _rowcount(result) == 1

    def count_starts(self, ip_key: str, kinds: Sequence[str], since: dt.datetime) -> int:
        return int(self._s.scalar(select(func.count()).select_from(ActivationTxRow).where(
            ActivationTxRow.ip_key == ip_key, ActivationTxRow.kind.in_(list(kinds)),
            ActivationTxRow.created_at > since)) or 0)

    def cancel_account_transactions(self, account_id: int, kinds: Sequence[str], at: dt.datetime,
                                    except_id: str = "") -> int:
        """Cancel open transactions of an account (a newer request or a password change wins) and their codes."""
        open_states = [TxState.CODE_SENT.value, TxState.CODE_VERIFIED.value]
        ids = list(self._s.scalars(select(ActivationTxRow.id).where(
            ActivationTxRow.account_id == account_id, ActivationTxRow.kind.in_(list(kinds)),
            ActivationTxRow.state.in_(open_states), ActivationTxRow.id != except_id)))
        if not ids:
            return 0
        self._s.execute(update(ActivationTxRow).where(ActivationTxRow.id.in_(ids))
                        .values(state=TxState.CANCELLED.value, updated_at=at))
        self._s.execute(update(ActivationCodeRow).where(
            ActivationCodeRow.transaction_id.in_(ids), ActivationCodeRow.used_at.is_(None),
            ActivationCodeRow.revoked_at.is_(None)).values(revoked_at=at))
        return len(ids)

    def serialise(self, key: str) -> None:
        """Serialise transactions working on the same key (PostgreSQL advisory lock; SQLite already is)."""
        locks.hold(self._s, key)

    # --- codes -------------------------------------------------------------------------------------

    def add_code(self, tx_id: str, purpose: str, code_hash: str, at: dt.datetime, expires_at: dt.datetime) -> int:
        self._s.execute(update(ActivationCodeRow).where(
            ActivationCodeRow.transaction_id == tx_id, ActivationCodeRow.used_at.is_(None),
            ActivationCodeRow.revoked_at.is_(None)).values(revoked_at=at))
        row = ActivationCodeRow(transaction_id=tx_id, purpose=purpose, code_hash=code_hash, attempts=0,
                                created_at=at, expires_at=expires_at)
        self._s.add(row)
        self._s.flush()
        return row.id

    def active_code(self, tx_id: str) -> Code | None:
        row = self._s.scalars(select(ActivationCodeRow).where(
            ActivationCodeRow.transaction_id == tx_id, ActivationCodeRow.revoked_at.is_(None),
            ActivationCodeRow.used_at.is_(None)).order_by(ActivationCodeRow.id.desc())).first()
        if row is None:
            return None
        return Code(id=row.id, transaction_id=row.transaction_id, purpose=row.purpose, code_hash=row.code_hash,
                    attempts=row.attempts, expires_at=row.expires_at)

    def count_attempt(self, code_id: int, max_attempts: int) -> int | None:
        """Count one attempt atomically; None when the code has no attempts left (or is used or revoked)."""
        result = self._s.execute(update(ActivationCodeRow).where(
            ActivationCodeRow.id == code_id, ActivationCodeRow.attempts < max_attempts,
            ActivationCodeRow.used_at.is_(None), ActivationCodeRow.revoked_at.is_(None))
            .values(attempts=ActivationCodeRow.attempts + 1))
        if _rowcount(result) != 1:
            return None
        return int(self._s.scalar(select(ActivationCodeRow.attempts).where(ActivationCodeRow.id == code_id)) or 0)

    def use_code(self, code_id: int, at: dt.datetime) -> bool:
        result = self._s.execute(update(ActivationCodeRow).where(
            ActivationCodeRow.id == code_id, ActivationCodeRow.used_at.is_(None),
            ActivationCodeRow.revoked_at.is_(None)).values(used_at=at))
        return _rowcount(result) == 1

    # --- e-mail links ------------------------------------------------------------------------------

    def add_email_token(self, token_hash: str, account_id: int, email: str, at: dt.datetime,
                        expires_at: dt.datetime) -> None:
        self._s.execute(update(EmailTokenRow).where(EmailTokenRow.account_id == account_id,
                                                    EmailTokenRow.used_at.is_(None)).values(used_at=at))
        self._s.add(EmailTokenRow(id=token_hash, account_id=account_id, email=email, created_at=at,
                                  expires_at=expires_at))

    def get_email_token(self, token_hash: str) -> EmailToken | None:
        row = self._s.get(EmailTokenRow, token_hash)
        if row is None:
            return None
        return EmailToken(id=row.id, account_id=row.account_id, email=row.email, expires_at=row.expires_at,
                          used_at=row.used_at)

    def use_email_token(self, token_hash: str, at: dt.datetime) -> bool:
        result = self._s.execute(update(EmailTokenRow).where(EmailTokenRow.id == token_hash,
                                                             EmailTokenRow.used_at.is_(None)).values(used_at=at))
        return _rowcount(result) == 1

    # --- the register, as activation needs it ------------------------------------------------------

    def representatives_by_phone(self, phone: str) -> Sequence[RepresentativeRecord]:
        """Present representatives whose mobile number is this one: the register's, or a school correction that
        still applies (the staff console's), which then replaces the register's number."""
        from idp.storage.staff_console_store import live_phone_corrections

        extra = [rep for rep, _ in self._s.execute(live_phone_corrections(phone=phone))]
        rows = self._s.execute(select(RepresentativeRow, SchoolRow.name).join(
            SchoolRow, SchoolRow.uai == RepresentativeRow.uai).where(
            or_(RepresentativeRow.mobile_phone == phone, RepresentativeRow.id.in_(extra)),
            RepresentativeRow.status == "present")).all()
        corrected = dict(self._s.execute(live_phone_corrections(representative_ids=[r.id for r, _ in rows])).all())
        return [RepresentativeRecord(id=r.id, uai=r.uai, external_id=r.external_id, family_name=r.family_name,
                                     given_names=r.given_names, mobile_phone=corrected.get(r.id, r.mobile_phone),
                                     email=r.email, account_id=r.account_id, school=name)
                for r, name in rows if corrected.get(r.id, r.mobile_phone) == phone]

    def representatives_by_name(self, family_name: str) -> Sequence[RepresentativeRecord]:
        """Present representatives whose family name may be this one (case aside; the caller compares the
        names exactly with ``names_match``): at most 200, looked up by the first two letters."""
        head = family_name.strip()[:2].lower()
        if len(head) < 2:
            return []
        rows = self._s.execute(select(RepresentativeRow, SchoolRow.name).join(
            SchoolRow, SchoolRow.uai == RepresentativeRow.uai).where(
            func.lower(RepresentativeRow.family_name).like(head.replace("%", "").replace("_", "") + "%"),
            RepresentativeRow.status == "present").limit(200))
        return [RepresentativeRecord(id=r.id, uai=r.uai, external_id=r.external_id, family_name=r.family_name,
                                     given_names=r.given_names, mobile_phone=r.mobile_phone, email=r.email,
                                     account_id=r.account_id, school=name) for r, name in rows]

    def children_of(self, representative_ids: Sequence[int]) -> Sequence[ChildRecord]:
        if not representative_ids:
            return []
        rows = self._s.execute(
            select(StudentRow, StudentLinkRow.representative_id, SchoolRow.name)
            .join(StudentLinkRow, StudentLinkRow.student_id == StudentRow.id)
            .join(SchoolRow, SchoolRow.uai == StudentRow.uai)
            .where(StudentLinkRow.representative_id.in_(list(representative_ids)),
                   StudentLinkRow.status == "present", StudentLinkRow.legal_responsibility.is_(True),
                   StudentRow.status == "present")
            .order_by(StudentRow.family_name, StudentRow.given_names, StudentRow.id))
        return [ChildRecord(student_id=s.id, representative_id=rep_id, ine=s.ine, family_name=s.family_name,
                            given_names=s.given_names, birth_date=s.birth_date, uai=s.uai, school=school,
                            class_code=s.class_code) for s, rep_id, school in rows]

    def report_wrong_link(self, child: ChildRecord, tx_id: str, at: dt.datetime) -> None:
        """Record the report and suspend the link until the school checks it (the next import decides)."""
        self._s.add(WrongLinkReportRow(uai=child.uai, representative_id=child.representative_id,
                                       student_id=child.student_id, transaction_id=tx_id, created_at=at))
        self._s.execute(update(StudentLinkRow).where(
            StudentLinkRow.student_id == child.student_id,
            StudentLinkRow.representative_id == child.representative_id).values(status="disputed", updated_at=at))

    def open_reports(self, uai: str) -> Sequence[tuple[int, int, dt.datetime]]:
        rows = self._s.execute(select(WrongLinkReportRow.representative_id, WrongLinkReportRow.student_id,
                                      WrongLinkReportRow.created_at).where(
            WrongLinkReportRow.uai == uai, WrongLinkReportRow.status == "open"))
        return [(a, b, c) for a, b, c in rows]

    def students_for_letters(self, uai: str, class_code: str = "", ine: str = "") -> Sequence[StudentRecord]:
        query = (select(StudentRow, SchoolRow.name, AccountRow.state)
                 .join(SchoolRow, SchoolRow.uai == StudentRow.uai)
                 .outerjoin(AccountRow, AccountRow.id == StudentRow.account_id)
                 .where(StudentRow.uai == uai, StudentRow.status == "present"))
        if class_code:
            query = query.where(StudentRow.class_code == class_code)
        if ine:
            query = query.where(StudentRow.ine == ine.upper())
        rows = self._s.execute(query.order_by(StudentRow.class_code, StudentRow.family_name, StudentRow.given_names))
        return [StudentRecord(id=s.id, ine=s.ine, uai=s.uai, school=school, family_name=s.family_name,
                              given_names=s.given_names, birth_date=s.birth_date, class_code=s.class_code,
                              account_id=s.account_id, account_state=state or "") for s, school, state in rows]

    def representatives_of(self, student_ids: Sequence[int]) -> Sequence[tuple[RepresentativeRecord, str]]:
        """Legal representatives of these pupils, each with its account state ("" when none)."""
        if not student_ids:
            return []
        rows = self._s.execute(
            select(RepresentativeRow, SchoolRow.name, AccountRow.state).distinct()
            .join(StudentLinkRow, StudentLinkRow.representative_id == RepresentativeRow.id)
            .join(SchoolRow, SchoolRow.uai == RepresentativeRow.uai)
            .outerjoin(AccountRow, AccountRow.id == RepresentativeRow.account_id)
            .where(StudentLinkRow.student_id.in_(list(student_ids)), StudentLinkRow.status == "present",
                   StudentLinkRow.legal_responsibility.is_(True), RepresentativeRow.status == "present")
            .order_by(RepresentativeRow.family_name, RepresentativeRow.given_names, RepresentativeRow.id))
        return [(RepresentativeRecord(id=r.id, uai=r.uai, external_id=r.external_id, family_name=r.family_name,
                                      given_names=r.given_names, mobile_phone=r.mobile_phone, email=r.email,
                                      account_id=r.account_id, school=school), state or "")
                for r, school, state in rows]

    def linked_representatives(self, account_id: int) -> Sequence[RepresentativeRecord]:
        rows = self._s.execute(select(RepresentativeRow, SchoolRow.name).join(
            SchoolRow, SchoolRow.uai == RepresentativeRow.uai).where(RepresentativeRow.account_id == account_id))
        return [RepresentativeRecord(id=r.id, uai=r.uai, external_id=r.external_id, family_name=r.family_name,
                                     given_names=r.given_names, mobile_phone=r.mobile_phone, email=r.email,
                                     account_id=r.account_id, school=name) for r, name in rows]

    def move_representatives(self, from_account: int, to_account: int) -> int:
        result = self._s.execute(update(RepresentativeRow).where(RepresentativeRow.account_id == from_account)
                                 .values(account_id=to_account))
        return _rowcount(result)

    # --- delivery queue ----------------------------------------------------------------------------

    def enqueue(self, message: QueuedMessage, at: dt.datetime) -> int:
        payload = self._cipher.seal({"to": message.to, "subject": message.subject, "text": message.text})
        row = DeliveryRow(channel=message.channel, recipient_key=message.recipient_key, payload=payload,
                          purpose=message.purpose, transaction_id=message.transaction_id, status="pending",
                          created_at=at, next_attempt_at=at)
        self._s.add(row)
        self._s.flush()
        return row.id

    def count_messages(self, channel: str, since: dt.datetime, recipient_key: str = "", *,
                       purposes: Sequence[str] = (), other_than: Sequence[str] = (),
                       before: dt.datetime | None = None) -> int:
        """Messages that count against limits: pending, being sent or sent (a failed send is not counted); only
        those of ``purposes``, or all but those of ``other_than``, or created before ``before``, when given."""
        query = select(func.count()).select_from(DeliveryRow).where(
            DeliveryRow.channel == channel, DeliveryRow.created_at > since,
            DeliveryRow.status.in_(("pending", "sending", "sent")))
        if recipient_key:
            query = query.where(DeliveryRow.recipient_key == recipient_key)
        if purposes:
            query = query.where(DeliveryRow.purpose.in_(list(purposes)))
        if other_than:
            query = query.where(DeliveryRow.purpose.not_in(list(other_than)))
        if before is not None:
            query = query.where(DeliveryRow.created_at < before)
        return int(self._s.scalar(query) or 0)

    def count_account_sends(self, account_id: int, kinds: Sequence[str], since: dt.datetime) -> int:
        """Codes sent for an account's transactions of these kinds started since ``since`` (resends included)."""
        return int(self._s.scalar(select(func.coalesce(func.sum(ActivationTxRow.sends), 0)).where(
            ActivationTxRow.account_id == account_id, ActivationTxRow.kind.in_(list(kinds)),
            ActivationTxRow.created_at > since)) or 0)

    def delivery_status(self, tx_id: str) -> str:
        """The latest message's status; ``retrying`` when it waits after a failed attempt."""
        row = self._s.execute(select(DeliveryRow.status, DeliveryRow.attempts)
                              .where(DeliveryRow.transaction_id == tx_id)
                              .order_by(DeliveryRow.id.desc()).limit(1)).first()
        if row is None:
            return ""
        return "retrying" if row.status == "pending" and row.attempts > 0 else row.status

    def channel_failing(self, channel: str, since: dt.datetime) -> bool:
        """True when the latest finished send on the channel since ``since`` failed (the gateway is down)."""
        status = self._s.scalar(select(DeliveryRow.status).where(
            DeliveryRow.channel == channel, DeliveryRow.created_at > since,
            DeliveryRow.status.in_(("sent", "failed"))).order_by(DeliveryRow.id.desc()).limit(1))
        return status == "failed"

    def cancel_messages(self, tx_id: str, at: dt.datetime) -> int:
        result = self._s.execute(update(DeliveryRow).where(
            DeliveryRow.transaction_id == tx_id, DeliveryRow.status == "pending")
            .values(status="cancelled", payload=""))
        return _rowcount(result)


# --- the delivery worker's side of the queue, and the outbox ----------------------------------------------


@dataclass(frozen=True)
class ClaimedMessage:
    """A message claimed for sending: its row, channel, opened payload, attempt number and idempotency key."""

    id: int
    channel: str
    payload: dict[str, str]
    attempt: int
    key: str


class SqlDeliveryQueue:
    """What the delivery worker does with the queue: claim due messages, then mark each sent or failed."""

    STUCK_AFTER = dt.timedelta(minutes=10)

    def __init__(self, sessionmaker: Any, cipher: PayloadCipher) -> None:
        self._sessionmaker = sessionmaker
        self._cipher = cipher

    def claim_due(self, now: dt.datetime, limit: int = 50) -> list[ClaimedMessage]:
        """Claim pending messages (one conditional update each: two workers never send the same one)."""
        claimed: list[ClaimedMessage] = []
        with self._sessionmaker() as s:
            s.execute(update(DeliveryRow).where(DeliveryRow.status == "sending",
                                                DeliveryRow.claimed_at < now - self.STUCK_AFTER)
                      .values(status="failed", payload="", last_error="interrompu"))
            rows = s.execute(select(DeliveryRow.id, DeliveryRow.channel, DeliveryRow.payload, DeliveryRow.attempts,
                                    DeliveryRow.created_at).where(
                DeliveryRow.status == "pending", DeliveryRow.next_attempt_at <= now)
                .order_by(DeliveryRow.id).limit(limit)).all()
            for row_id, channel, payload, attempts, created in rows:
                result = s.execute(update(DeliveryRow).where(DeliveryRow.id == row_id,
                                                             DeliveryRow.status == "pending")
                                   .values(status="sending", claimed_at=now, attempts=DeliveryRow.attempts + 1))
                if _rowcount(result) == 1:
                    key = f"idp-{row_id}-{int(created.timestamp())}"  # the same at every attempt of this message
                    claimed.append(ClaimedMessage(row_id, channel, self._cipher.open(payload), attempts + 1, key))
            s.commit()
        return claimed

    def mark_sent(self, row_id: int, at: dt.datetime) -> None:
        with self._sessionmaker() as s:
            s.execute(update(DeliveryRow).where(DeliveryRow.id == row_id)
                      .values(status="sent", sent_at=at, payload=""))
            s.commit()

    def retry_later(self, row_id: int, error: str, at: dt.datetime) -> None:
        """A transient failure: the message waits (payload kept) until ``at``; the page then says "delayed"."""
        with self._sessionmaker() as s:
            s.execute(update(DeliveryRow).where(DeliveryRow.id == row_id, DeliveryRow.status == "sending")
                      .values(status="pending", next_attempt_at=at, claimed_at=None, last_error=error[:200]))
            s.commit()

    def mark_failed(self, row_id: int, error: str, at: dt.datetime) -> None:
        """A failed message is not counted against limits: its transaction gets its send back."""
        with self._sessionmaker() as s:
            tx_id = s.scalar(select(DeliveryRow.transaction_id).where(DeliveryRow.id == row_id))
            s.execute(update(DeliveryRow).where(DeliveryRow.id == row_id)
                      .values(status="failed", payload="", last_error=error[:200]))
            if tx_id:
                s.execute(update(ActivationTxRow).where(ActivationTxRow.id == tx_id, ActivationTxRow.sends > 0)
                          .values(sends=ActivationTxRow.sends - 1, last_send_at=None, updated_at=at))
            s.commit()

    def depth_by_channel(self) -> dict[str, int]:
        """Messages queued or being sent, per channel (``idp_delivery_queue_depth``)."""
        with self._sessionmaker() as s:
            rows = s.execute(select(DeliveryRow.channel, func.count()).where(
                DeliveryRow.status.in_(("pending", "sending"))).group_by(DeliveryRow.channel)).all()
        return {channel: int(count) for channel, count in rows}

    def pending_count(self) -> int:
        with self._sessionmaker() as s:
            return int(s.scalar(select(func.count()).select_from(DeliveryRow).where(
                DeliveryRow.status.in_(("pending", "sending")))) or 0)


class SqlOutbox:
    """The development outbox table: written by the outbox backends, read by ``idp outbox`` and /dev/outbox."""

    def __init__(self, sessionmaker: Any) -> None:
        self._sessionmaker = sessionmaker

    def add(self, channel: str, recipient: str, subject: str, body: str, at: dt.datetime) -> None:
        with self._sessionmaker() as s:
            s.add(OutboxRow(channel=channel, recipient=recipient, subject=subject[:200], body=body, created_at=at))
            s.commit()

    def messages(self, *, to: str = "", after_id: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Messages, oldest first, optionally for one recipient and after a given id."""
        with self._sessionmaker() as s:
            query = select(OutboxRow).where(OutboxRow.id > after_id)
            if to:
                query = query.where(OutboxRow.recipient == to)
            rows = s.scalars(query.order_by(OutboxRow.id.desc()).limit(limit)).all()
            return [{"id": r.id, "channel": r.channel, "to": r.recipient, "subject": r.subject, "body": r.body,
                     "at": r.created_at} for r in reversed(rows)]
