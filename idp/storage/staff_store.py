"""SQL storage of the staff console's accounts: staff members, their schools, passkeys, TOTP, sessions.

Enrolment tokens and session ids are stored as SHA-256 of the random value the mail or cookie holds; the TOTP
secret is sealed with AES-GCM under a key derived from the secret key (a dump does not hand out second factors).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from idp.core.staff.model import Membership, Role, StaffMember, StaffSession, StaffState
from idp.storage.models import Base, SchoolRow, UtcDateTime


class StaffMemberRow(Base):
    """A school staff member or an operator (not a person of the register)."""

    __tablename__ = "staff_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    operator: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(10))
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    totp_sealed: Mapped[str] = mapped_column(Text, default="")
    totp_pending: Mapped[str] = mapped_column(Text, default="")
    totp_last_step: Mapped[int] = mapped_column(Integer, default=0)
    enrol_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    enrol_expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class StaffMembershipRow(Base):
    """A staff member's role in one school."""

    __tablename__ = "staff_memberships"
    __table_args__ = (UniqueConstraint("staff_id", "uai", name="uq_staff_memberships_staff_uai"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_members.id", ondelete="CASCADE"), index=True)
    uai: Mapped[str] = mapped_column(ForeignKey("schools.uai"), index=True)
    role: Mapped[str] = mapped_column(String(12))


class StaffPasskeyRow(Base):
    """A WebAuthn credential (public key only) of a staff member."""

    __tablename__ = "staff_passkeys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_members.id", ondelete="CASCADE"), index=True)
    credential_id: Mapped[str] = mapped_column(String(400), unique=True)
    public_key: Mapped[str] = mapped_column(Text)
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class StaffSessionRow(Base):
    """A staff browser session; ``id`` is the SHA-256 of the cookie value."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_members.id", ondelete="CASCADE"), index=True)
    second_factor: Mapped[str] = mapped_column(String(10), default="")
    second_factor_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    challenge: Mapped[str] = mapped_column(String(200), default="")
    failures: Mapped[int] = mapped_column(Integer, default=0)
    ip: Mapped[str] = mapped_column(String(45), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True, index=True)


class SqlStaffStore:
    """``StaffStore`` on one unit of work's SQLAlchemy session."""

    def __init__(self, session: Session) -> None:
        self._s = session

    # --- members ----------------------------------------------------------------------------------

    def school_name(self, uai: str) -> str | None:
        return self._s.scalar(select(SchoolRow.name).where(SchoolRow.uai == uai))

    def add_member(self, email: str, display_name: str, operator: bool, at: dt.datetime, token_hash: str,
                   expires_at: dt.datetime) -> int:
        row = StaffMemberRow(email=email, display_name=display_name, operator=operator,
                             state=StaffState.INVITED.value, created_at=at, enrol_token_hash=token_hash,
                             enrol_expires_at=expires_at, totp_sealed="", totp_pending="", totp_last_step=0)
        self._s.add(row)
        self._s.flush()
        return row.id

    def add_membership(self, staff_id: int, uai: str, role: Role) -> None:
        found = self._s.scalar(select(StaffMembershipRow).where(StaffMembershipRow.staff_id == staff_id,
                                                                StaffMembershipRow.uai == uai))
        if found is None:
            self._s.add(StaffMembershipRow(staff_id=staff_id, uai=uai, role=role.value))
        else:
            found.role = role.value
        self._s.flush()

    def _to_member(self, row: StaffMemberRow) -> StaffMember:
        memberships = self._s.execute(
            select(StaffMembershipRow.uai, StaffMembershipRow.role, SchoolRow.name)
            .join(SchoolRow, SchoolRow.uai == StaffMembershipRow.uai)
            .where(StaffMembershipRow.staff_id == row.id).order_by(StaffMembershipRow.uai)).all()
        passkeys = self._s.scalar(select(func.count()).select_from(StaffPasskeyRow)
                                  .where(StaffPasskeyRow.staff_id == row.id)) or 0
        return StaffMember(id=row.id, email=row.email, display_name=row.display_name, state=StaffState(row.state),
                           operator=row.operator, password_hash=row.password_hash, has_totp=bool(row.totp_sealed),
                           passkeys=passkeys, created_at=row.created_at, last_login_at=row.last_login_at,
                           memberships=tuple(Membership(uai=u, role=Role(r), school_name=n) for u, r, n in memberships))

    def member(self, staff_id: int) -> StaffMember | None:
        row = self._s.get(StaffMemberRow, staff_id)
        return self._to_member(row) if row is not None else None

    def member_by_email(self, email: str) -> StaffMember | None:
        row = self._s.scalar(select(StaffMemberRow).where(StaffMemberRow.email == email))
        return self._to_member(row) if row is not None else None

    def member_by_token(self, token_hash: str, now: dt.datetime) -> StaffMember | None:
        row = self._s.scalar(select(StaffMemberRow).where(StaffMemberRow.enrol_token_hash == token_hash,
                                                          StaffMemberRow.enrol_expires_at > now,
                                                          StaffMemberRow.state == StaffState.INVITED.value))
        return self._to_member(row) if row is not None else None

    def list_members(self) -> Sequence[StaffMember]:
        rows = self._s.scalars(select(StaffMemberRow).order_by(StaffMemberRow.email)).all()
        return [self._to_member(r) for r in rows]

    def set_enrolment(self, staff_id: int, token_hash: str | None, expires_at: dt.datetime | None) -> None:
        self._s.execute(update(StaffMemberRow).where(StaffMemberRow.id == staff_id)
                        .values(enrol_token_hash=token_hash, enrol_expires_at=expires_at))

    def consume_enrolment(self, token_hash: str, password_hash: str, now: dt.datetime) -> bool:
        """Set the password and burn the link, once (a conditional UPDATE only one caller wins)."""
        result = self._s.execute(update(StaffMemberRow).where(
            StaffMemberRow.enrol_token_hash == token_hash, StaffMemberRow.enrol_expires_at > now,
            StaffMemberRow.state == StaffState.INVITED.value).values(
            password_hash=password_hash, enrol_token_hash=None, enrol_expires_at=None))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def set_state(self, staff_id: int, state: StaffState, at: dt.datetime) -> None:
        values: dict[str, object] = {"state": state.value}
        if state is StaffState.DISABLED:
            values.update(disabled_at=at, enrol_token_hash=None, enrol_expires_at=None)
        self._s.execute(update(StaffMemberRow).where(StaffMemberRow.id == staff_id).values(**values))

    def set_totp_pending(self, staff_id: int, sealed: str) -> None:
        self._s.execute(update(StaffMemberRow).where(StaffMemberRow.id == staff_id).values(totp_pending=sealed))

    def totp_secrets(self, staff_id: int) -> tuple[str, str, int]:
        """(sealed secret, sealed pending secret, last accepted time step)."""
        row = self._s.get(StaffMemberRow, staff_id)
        return (row.totp_sealed, row.totp_pending, row.totp_last_step) if row else ("", "", 0)

    def confirm_totp(self, staff_id: int, sealed: str, step: int) -> None:
        self._s.execute(update(StaffMemberRow).where(StaffMemberRow.id == staff_id).values(
            totp_sealed=sealed, totp_pending="", totp_last_step=step))

    def use_totp_step(self, staff_id: int, step: int) -> bool:
        """Accept a TOTP time step once (no replay of a code within its window)."""
        result = self._s.execute(update(StaffMemberRow).where(StaffMemberRow.id == staff_id,
                                                              StaffMemberRow.totp_last_step < step)
                                 .values(totp_last_step=step))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def add_passkey(self, staff_id: int, credential_id: str, public_key: str, sign_count: int,
                    at: dt.datetime) -> None:
        self._s.add(StaffPasskeyRow(staff_id=staff_id, credential_id=credential_id, public_key=public_key,
                                    sign_count=sign_count, created_at=at))
        self._s.flush()

    def passkeys(self, staff_id: int) -> Sequence[tuple[str, str, int]]:
        rows = self._s.execute(select(StaffPasskeyRow.credential_id, StaffPasskeyRow.public_key,
                                      StaffPasskeyRow.sign_count).where(StaffPasskeyRow.staff_id == staff_id))
        return [(c, k, n) for c, k, n in rows]

    def use_passkey(self, credential_id: str, sign_count: int, at: dt.datetime) -> None:
        self._s.execute(update(StaffPasskeyRow).where(StaffPasskeyRow.credential_id == credential_id)
                        .values(sign_count=sign_count, last_used_at=at))

    def activate(self, staff_id: int, at: dt.datetime) -> None:
        self._s.execute(update(StaffMemberRow).where(StaffMemberRow.id == staff_id,
                                                     StaffMemberRow.state == StaffState.INVITED.value)
                        .values(state=StaffState.ACTIVE.value))

    def record_login(self, staff_id: int, at: dt.datetime) -> None:
        self._s.execute(update(StaffMemberRow).where(StaffMemberRow.id == staff_id).values(last_login_at=at))

    # --- sessions ---------------------------------------------------------------------------------

    def add_session(self, session: StaffSession, ip: str) -> None:
        self._s.add(StaffSessionRow(id=session.id, staff_id=session.staff_id, second_factor=session.second_factor,
                                    second_factor_at=session.second_factor_at, challenge="", failures=0, ip=ip,
                                    created_at=session.created_at, last_seen_at=session.last_seen_at))
        self._s.flush()

    def session(self, session_id: str) -> StaffSession | None:
        row = self._s.get(StaffSessionRow, session_id)
        if row is None or row.ended_at is not None:
            return None
        return StaffSession(id=row.id, staff_id=row.staff_id, created_at=row.created_at,
                            last_seen_at=row.last_seen_at, second_factor=row.second_factor,
                            second_factor_at=row.second_factor_at, challenge=row.challenge, failures=row.failures)

    def touch_session(self, session_id: str, at: dt.datetime) -> None:
        self._s.execute(update(StaffSessionRow).where(StaffSessionRow.id == session_id).values(last_seen_at=at))

    def set_challenge(self, session_id: str, challenge: str) -> None:
        self._s.execute(update(StaffSessionRow).where(StaffSessionRow.id == session_id).values(challenge=challenge))

    def take_challenge(self, session_id: str) -> str:
        """The pending WebAuthn challenge, cleared as it is read (single use)."""
        row = self._s.get(StaffSessionRow, session_id, with_for_update=True)
        if row is None or not row.challenge:
            return ""
        challenge, row.challenge = row.challenge, ""
        return challenge

    def add_failure(self, session_id: str) -> int:
        self._s.execute(update(StaffSessionRow).where(StaffSessionRow.id == session_id)
                        .values(failures=StaffSessionRow.failures + 1))
        return int(self._s.scalar(select(StaffSessionRow.failures).where(StaffSessionRow.id == session_id)) or 0)

    def end_session(self, session_id: str, at: dt.datetime) -> None:
        self._s.execute(update(StaffSessionRow).where(StaffSessionRow.id == session_id,
                                                      StaffSessionRow.ended_at.is_(None)).values(ended_at=at))

    def end_sessions_of(self, staff_id: int, at: dt.datetime) -> None:
        self._s.execute(update(StaffSessionRow).where(StaffSessionRow.staff_id == staff_id,
                                                      StaffSessionRow.ended_at.is_(None)).values(ended_at=at))

    def purge_sessions(self, before: dt.datetime) -> int:
        result = self._s.execute(delete(StaffSessionRow).where(StaffSessionRow.last_seen_at < before))
        return int(result.rowcount)  # type: ignore[attr-defined]
