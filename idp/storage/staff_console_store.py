"""SQL queries of the staff console: finding families, their history, corrections, campaigns' populations.

Every query that reads register records takes the caller's ``Scope`` and filters on the school (UAI) in the
statement itself: a record of another school is never loaded, so it cannot leak through a forgotten check.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, and_, func, or_, select, update
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from idp.core.staff.model import Correction, HistoryLine, Person, Scope
from idp.storage.models import (
    AccountRow,
    AuditEventRow,
    Base,
    RepresentativeRow,
    SchoolRow,
    StudentLinkRow,
    StudentRow,
    UtcDateTime,
)
from idp.storage.staff_store import StaffMemberRow

#: Events that tell how an account was activated (the funnel's routes).
ROUTE_EVENTS = {"activation.completed": "sms", "provisional.completed": "letter", "federation.linked": "franceconnect"}


class AuditLinkRow(Base):
    """Which register records an audit event is about (``student:12``, ``rep:7``): a family's history."""

    __tablename__ = "audit_event_records"
    __table_args__ = (Index("ix_audit_event_records_record", "record"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), index=True)
    record: Mapped[str] = mapped_column(String(24))


class ContactCorrectionRow(Base):
    """A mobile number or address a school recorded for a legal representative, apart from the register."""

    __tablename__ = "contact_corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    representative_id: Mapped[int] = mapped_column(ForeignKey("representatives.id", ondelete="CASCADE"),
                                                   index=True)
    field: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(String(254))
    register_value: Mapped[str] = mapped_column(String(254), default="")
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_members.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


def live_phone_corrections(*, phone: str = "", representative_ids: Sequence[int] = ()) -> Any:
    """(representative id, corrected number) of the school corrections that still apply — the latest mobile
    correction of a representative, unless a register import since carries a number (the same rule as
    ``idp.core.staff.console.correction_state``) —, carrying ``phone`` or of these representatives."""
    newer = aliased(ContactCorrectionRow)
    query = (select(ContactCorrectionRow.representative_id, ContactCorrectionRow.value)
             .join(RepresentativeRow, RepresentativeRow.id == ContactCorrectionRow.representative_id)
             .where(ContactCorrectionRow.field == "mobile_phone",
                    ~select(newer.id).where(newer.representative_id == ContactCorrectionRow.representative_id,
                                            newer.field == "mobile_phone",
                                            newer.id > ContactCorrectionRow.id).exists(),
                    or_(RepresentativeRow.mobile_phone == "",
                        and_(RepresentativeRow.mobile_phone == ContactCorrectionRow.register_value,
                             RepresentativeRow.updated_at <= ContactCorrectionRow.created_at))))
    if phone:
        return query.where(ContactCorrectionRow.value == phone)
    return query.where(ContactCorrectionRow.representative_id.in_(list(representative_ids)))


def _like(text: str) -> str:
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _in_scope(column: Any, scope: Scope) -> ColumnElement[bool]:
    if scope.everything:
        return column.is_not(None)  # type: ignore[no-any-return]
    return column.in_(sorted(scope.uais))  # type: ignore[no-any-return]


def _state(account_state: str | None) -> str:
    return account_state or "none"


class SqlConsoleStore:
    """``ConsoleStore`` on one unit of work's SQLAlchemy session."""

    def __init__(self, session: Session) -> None:
        self._s = session

    # --- schools ------------------------------------------------------------------------------------

    def schools(self, scope: Scope | None) -> list[tuple[str, str]]:
        """(UAI, name) of the schools in scope (``None``: every school of the register, for families)."""
        query = select(SchoolRow.uai, SchoolRow.name).order_by(SchoolRow.name)
        if scope is not None:
            query = query.where(_in_scope(SchoolRow.uai, scope))
        return [(u, n) for u, n in self._s.execute(query)]

    def classes(self, scope: Scope, uai: str) -> list[str]:
        query = (select(StudentRow.class_code).distinct().where(StudentRow.uai == uai, StudentRow.status == "present",
                                                                 _in_scope(StudentRow.uai, scope))
                 .order_by(StudentRow.class_code))
        return [c for c in self._s.scalars(query) if c]

    # --- people -------------------------------------------------------------------------------------

    def _student_query(self) -> Any:
        return (select(StudentRow, AccountRow.identifier, AccountRow.state, AccountRow.last_login_at,
                       AccountRow.provisional_expires_at, AccountRow.language)
                .outerjoin(AccountRow, AccountRow.id == StudentRow.account_id))

    @staticmethod
    def _student(row: Any) -> Person:
        s, identifier, state, last_login, expires, language = row
        return Person(kind="student", id=s.id, uai=s.uai, family_name=s.family_name, given_names=s.given_names,
                      class_code=s.class_code, ine=s.ine, birth_date=s.birth_date, account_id=s.account_id,
                      identifier=identifier or "", account_state=_state(state), last_login_at=last_login,
                      provisional_expires_at=expires, register_updated_at=s.updated_at, account_language=language)

    def search(self, scope: Scope, text: str, limit: int) -> list[Person]:
        """Pupils in scope matching a name, given name, INE, class or identifier, or whose legal
        representatives match a name, an identifier or the last digits of a phone number."""
        text = text.strip()
        if not text:
            return []
        like = _like(text)
        digits = "".join(c for c in text if c.isdigit())
        rep_match = or_(func.lower(RepresentativeRow.family_name).like(like, escape="\\"),
                        func.lower(RepresentativeRow.given_names).like(like, escape="\\"),
                        RepresentativeRow.account_id.in_(select(AccountRow.id).where(
                            AccountRow.identifier == text.lower())))
        if digits == text.replace(" ", "") and 2 <= len(digits) <= 10:
            rep_match = or_(rep_match, RepresentativeRow.mobile_phone.like("%" + digits))
        via_reps = (select(StudentLinkRow.student_id)
                    .join(RepresentativeRow, RepresentativeRow.id == StudentLinkRow.representative_id)
                    .where(rep_match, RepresentativeRow.status == "present", _in_scope(RepresentativeRow.uai, scope)))
        own = or_(func.lower(StudentRow.family_name).like(like, escape="\\"),
                  func.lower(StudentRow.given_names).like(like, escape="\\"),
                  func.upper(StudentRow.ine) == text.upper(), func.lower(StudentRow.class_code) == text.lower(),
                  AccountRow.identifier == text.lower(), StudentRow.id.in_(via_reps))
        query = (self._student_query().where(own, StudentRow.status == "present", _in_scope(StudentRow.uai, scope))
                 .order_by(StudentRow.family_name, StudentRow.given_names).limit(limit))
        return [self._student(r) for r in self._s.execute(query)]

    def student(self, scope: Scope, student_id: int) -> Person | None:
        row = self._s.execute(self._student_query().where(StudentRow.id == student_id,
                                                          _in_scope(StudentRow.uai, scope))).first()
        return self._student(row) if row is not None else None

    def representatives_of(self, scope: Scope, student_id: int) -> list[Person]:
        query = (select(RepresentativeRow, StudentLinkRow.relationship, StudentLinkRow.legal_responsibility,
                        AccountRow.identifier, AccountRow.state, AccountRow.last_login_at,
                        AccountRow.provisional_expires_at, AccountRow.language)
                 .join(StudentLinkRow, StudentLinkRow.representative_id == RepresentativeRow.id)
                 .outerjoin(AccountRow, AccountRow.id == RepresentativeRow.account_id)
                 .where(StudentLinkRow.student_id == student_id, StudentLinkRow.status == "present",
                        _in_scope(RepresentativeRow.uai, scope))
                 .order_by(RepresentativeRow.family_name, RepresentativeRow.given_names))
        return [Person(kind="rep", id=r.id, uai=r.uai, family_name=r.family_name, given_names=r.given_names,
                       mobile_phone=r.mobile_phone, email=r.email, relationship=rel or "", external_id=r.external_id, legal_responsibility=legal,
                       account_id=r.account_id, identifier=ident or "", account_state=_state(state),
                       last_login_at=last, provisional_expires_at=exp, register_updated_at=r.updated_at,
                       account_language=language)
                for r, rel, legal, ident, state, last, exp, language in self._s.execute(query)]

    def school_name(self, uai: str) -> str:
        return self._s.scalar(select(SchoolRow.name).where(SchoolRow.uai == uai)) or uai

    # --- corrections --------------------------------------------------------------------------------

    def add_correction(self, representative_id: int, field: str, value: str, register_value: str, staff_id: int,
                       at: dt.datetime) -> None:
        self._s.add(ContactCorrectionRow(representative_id=representative_id, field=field, value=value,
                                         register_value=register_value, staff_id=staff_id, created_at=at))
        self._s.flush()

    def corrections(self, representative_ids: Iterable[int]) -> list[Correction]:
        ids = list(representative_ids)
        if not ids:
            return []
        query = (select(ContactCorrectionRow, StaffMemberRow.display_name)
                 .join(StaffMemberRow, StaffMemberRow.id == ContactCorrectionRow.staff_id)
                 .where(ContactCorrectionRow.representative_id.in_(ids))
                 .order_by(ContactCorrectionRow.created_at.desc(), ContactCorrectionRow.id.desc()))
        return [Correction(id=c.id, representative_id=c.representative_id, field=c.field, value=c.value,
                           register_value=c.register_value, staff_name=name, created_at=c.created_at)
                for c, name in self._s.execute(query)]

    # --- history ------------------------------------------------------------------------------------

    def history(self, records: Sequence[str], account_ids: Sequence[int], limit: int = 200) -> list[HistoryLine]:
        """Audit events about these register records or accounts, newest first, with their links."""
        linked = select(AuditLinkRow.event_id).where(AuditLinkRow.record.in_(list(records)))
        condition: ColumnElement[bool] = AuditEventRow.id.in_(linked)
        if account_ids:
            condition = or_(condition, AuditEventRow.account_id.in_(list(account_ids)))
        rows = self._s.scalars(select(AuditEventRow).where(condition)
                               .order_by(AuditEventRow.at.desc(), AuditEventRow.id.desc()).limit(limit)).all()
        links: dict[int, list[str]] = {}
        if rows:
            for event_id, record in self._s.execute(select(AuditLinkRow.event_id, AuditLinkRow.record).where(
                    AuditLinkRow.event_id.in_([r.id for r in rows]))):
                links.setdefault(event_id, []).append(record)
        staff_names = self._staff_names({json.loads(r.details).get("staff") for r in rows})
        lines = []
        for r in rows:
            details = json.loads(r.details)
            actor = staff_names.get(details.get("staff"), "") if r.event.startswith("staff.") else ""
            lines.append(HistoryLine(at=r.at, event=r.event, account_id=r.account_id,
                                     records=tuple(links.get(r.id, ())), details=details, actor=actor))
        return lines

    def _staff_names(self, ids: set[Any]) -> dict[int, str]:
        wanted = [i for i in ids if isinstance(i, int)]
        if not wanted:
            return {}
        return dict(self._s.execute(select(StaffMemberRow.id, StaffMemberRow.display_name)
                                    .where(StaffMemberRow.id.in_(wanted))).all())

    def routes(self, account_ids: Sequence[int]) -> dict[int, str]:
        """How each account was activated: the first of SMS, letter or FranceConnect (FranceConnect on a tie)."""
        if not account_ids:
            return {}
        found: dict[int, tuple[dt.datetime, int, str]] = {}
        query = (select(AuditEventRow.account_id, AuditEventRow.event, func.min(AuditEventRow.at))
                 .where(AuditEventRow.account_id.in_(list(account_ids)),
                        AuditEventRow.event.in_(list(ROUTE_EVENTS)))
                 .group_by(AuditEventRow.account_id, AuditEventRow.event))
        for account_id, event, at in self._s.execute(query):
            if account_id is None:
                continue
            route = ROUTE_EVENTS[event]
            rank = (at, 0 if route == "franceconnect" else 1, route)
            if account_id not in found or rank < found[account_id]:
                found[account_id] = rank
        return {a: r[2] for a, r in found.items()}

    # --- campaigns ----------------------------------------------------------------------------------

    def campaign_accounts(self, scope: Scope, uai: str, class_code: str, profile: str) -> list[int]:
        """Accounts (not closed) of a school's pupils and/or legal representatives, optionally of one class."""
        pupils = and_(StudentRow.uai == uai, StudentRow.status == "present", _in_scope(StudentRow.uai, scope))
        if class_code:
            pupils = and_(pupils, StudentRow.class_code == class_code)
        ids: set[int] = set()
        if profile in ("", "student"):
            ids.update(self._s.scalars(select(StudentRow.account_id).where(pupils, StudentRow.account_id.is_not(None))))
        if profile in ("", "parent"):
            reps = (select(RepresentativeRow.account_id)
                    .join(StudentLinkRow, StudentLinkRow.representative_id == RepresentativeRow.id)
                    .join(StudentRow, StudentRow.id == StudentLinkRow.student_id)
                    .where(pupils, RepresentativeRow.uai == uai, RepresentativeRow.status == "present",
                           StudentLinkRow.status == "present", RepresentativeRow.account_id.is_not(None)))
            ids.update(self._s.scalars(reps))
        if not ids:
            return []
        open_ids = select(AccountRow.id).where(AccountRow.id.in_(sorted(ids)), AccountRow.state != "closed")
        return sorted(self._s.scalars(open_ids))

    def force_password_change(self, account_ids: Sequence[int]) -> int:
        """Set ``must_change_password`` on these accounts (active or locked; a provisional one changes anyway)."""
        if not account_ids:
            return 0
        result = self._s.execute(update(AccountRow).where(AccountRow.id.in_(list(account_ids)),
                                                          AccountRow.state.in_(["active", "locked"]))
                                 .values(must_change_password=True))
        return int(result.rowcount)  # type: ignore[attr-defined]


def purge_staff_state(session: Session, now: dt.datetime, cutoff: dt.datetime) -> int:
    """``idp purge``: staff sessions ended or idle for two days, corrections of representatives whose data was
    purged, requests for help older than the register's retention (``cutoff``) with their handled marks."""
    from sqlalchemy import delete

    from idp.storage.staff_inbox_store import HelpRequestRow, InboxHandledRow
    from idp.storage.staff_store import SqlStaffStore

    purged_reps = select(RepresentativeRow.id).where(RepresentativeRow.status == "purged")
    old_helps = select(HelpRequestRow.id).where(HelpRequestRow.created_at < cutoff)
    counts = [SqlStaffStore(session).purge_sessions(now - dt.timedelta(days=2)),
              session.execute(delete(ContactCorrectionRow).where(
                  ContactCorrectionRow.representative_id.in_(purged_reps))).rowcount,  # type: ignore[attr-defined]
              session.execute(delete(InboxHandledRow).where(InboxHandledRow.kind == "help_request",
                                                            InboxHandledRow.item_id.in_(old_helps))).rowcount,  # type: ignore[attr-defined]
              session.execute(delete(HelpRequestRow).where(HelpRequestRow.created_at < cutoff)).rowcount]  # type: ignore[attr-defined]
    return sum(int(c) for c in counts)
