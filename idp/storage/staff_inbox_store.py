"""SQL storage of the schools' inbox (wrong-link reports, birth dates refused, requests for help) and of the
activation funnel. Every read is filtered on the caller's schools in the statement."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Integer, String, Text, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

import idp.storage.activation_store as activation_tables  # its rows are read here (a module: no import cycle)
from idp.core.staff.model import InboxItem, Scope
from idp.storage.models import (
    AccountRow,
    AuditEventRow,
    Base,
    RepresentativeRow,
    StudentLinkRow,
    StudentRow,
    UtcDateTime,
)
from idp.storage.staff_console_store import AuditLinkRow, _in_scope
from idp.storage.staff_store import StaffMemberRow

BIRTHDATE_LOCKED = "activation.birthdate_locked"


class HelpRequestRow(Base):
    """A family's request for help (``/aide/demande``), for one school's inbox."""

    __tablename__ = "help_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    uai: Mapped[str] = mapped_column(String(8), index=True)
    family_name: Mapped[str] = mapped_column(String(100))
    given_names: Mapped[str] = mapped_column(String(200))
    children: Mapped[str] = mapped_column(Text, default="")
    contact: Mapped[str] = mapped_column(String(254))
    message: Mapped[str] = mapped_column(Text, default="")
    context: Mapped[str] = mapped_column(String(40), default="")
    #: The language of the page the request was typed on: the school answers in it.
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    ip_key: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)


class InboxHandledRow(Base):
    """An inbox item marked handled (by whom, when)."""

    __tablename__ = "staff_inbox_handled"
    __table_args__ = (UniqueConstraint("kind", "item_id", name="uq_staff_inbox_handled_item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    item_id: Mapped[int] = mapped_column(Integer)
    staff_id: Mapped[int] = mapped_column(Integer)
    handled_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class SqlInboxStore:
    """``InboxStore`` on one unit of work's SQLAlchemy session."""

    def __init__(self, session: Session) -> None:
        self._s = session

    # --- requests for help --------------------------------------------------------------------------

    def add_help_request(self, reference: str, uai: str, family_name: str, given_names: str, children: str,
                         contact: str, message: str, context: str, ip_key: str, at: dt.datetime,
                         language: str | None = None) -> None:
        self._s.add(HelpRequestRow(reference=reference, uai=uai, family_name=family_name, given_names=given_names,
                                   children=children, contact=contact, message=message, context=context,
                                   ip_key=ip_key, created_at=at, language=language))
        self._s.flush()

    def count_help_requests(self, ip_key: str, since: dt.datetime) -> int:
        return int(self._s.scalar(select(func.count()).select_from(HelpRequestRow).where(
            HelpRequestRow.ip_key == ip_key, HelpRequestRow.created_at >= since)) or 0)

    def school_exists(self, uai: str) -> bool:
        from idp.storage.models import SchoolRow

        return self._s.scalar(select(SchoolRow.uai).where(SchoolRow.uai == uai)) is not None

    # --- the inbox ----------------------------------------------------------------------------------

    def _handled(self) -> dict[tuple[str, int], tuple[dt.datetime, str]]:
        rows = self._s.execute(select(InboxHandledRow.kind, InboxHandledRow.item_id, InboxHandledRow.handled_at,
                                      StaffMemberRow.display_name)
                               .outerjoin(StaffMemberRow, StaffMemberRow.id == InboxHandledRow.staff_id))
        return {(k, i): (at, name or "") for k, i, at, name in rows}

    def items(self, scope: Scope, uai: str = "", student_id: int | None = None) -> list[InboxItem]:
        """Every inbox item of the schools in scope (or of one school, or about one pupil), newest first."""
        handled = self._handled()
        items: list[InboxItem] = []
        WrongLinkReportRow = activation_tables.WrongLinkReportRow  # noqa: N806
        reports = (select(WrongLinkReportRow, StudentRow.family_name, StudentRow.given_names,
                          RepresentativeRow.family_name, RepresentativeRow.given_names)
                   .join(StudentRow, StudentRow.id == WrongLinkReportRow.student_id)
                   .outerjoin(RepresentativeRow, RepresentativeRow.id == WrongLinkReportRow.representative_id)
                   .where(_in_scope(WrongLinkReportRow.uai, scope)))
        if uai:
            reports = reports.where(WrongLinkReportRow.uai == uai)
        if student_id is not None:
            reports = reports.where(WrongLinkReportRow.student_id == student_id)
        for r, s_family, s_given, r_family, r_given in self._s.execute(reports):
            summary = (f"{r_given or ''} {r_family or ''} déclare ne pas être représentant légal de "
                       f"{s_given} {s_family}").strip()
            items.append(self._item("wrong_link", r.id, r.uai, r.created_at, summary, handled,
                                    student_id=r.student_id))
        items.extend(self._birthdates(scope, uai, student_id, handled))
        if student_id is None:
            helps = select(HelpRequestRow).where(_in_scope(HelpRequestRow.uai, scope))
            if uai:
                helps = helps.where(HelpRequestRow.uai == uai)
            for h in self._s.scalars(helps):
                items.append(self._item("help_request", h.id, h.uai, h.created_at,
                                        f"Demande d'aide {h.reference} : {h.given_names} {h.family_name}", handled,
                                        details={"reference": h.reference, "children": h.children,
                                                 "contact": h.contact, "message": h.message, "context": h.context,
                                                 "language": h.language}))
        return sorted(items, key=lambda i: (i.created_at, i.id), reverse=True)

    def _birthdates(self, scope: Scope, uai: str, student_id: int | None,
                    handled: dict[tuple[str, int], tuple[dt.datetime, str]]) -> list[InboxItem]:
        query = select(AuditEventRow).where(AuditEventRow.event == BIRTHDATE_LOCKED)
        if student_id is not None:
            reps = select(StudentLinkRow.representative_id).where(StudentLinkRow.student_id == student_id)
            records = [f"student:{student_id}", *(f"rep:{r}" for r in self._s.scalars(reps))]
            query = query.where(AuditEventRow.id.in_(select(AuditLinkRow.event_id)
                                                     .where(AuditLinkRow.record.in_(records))))
        found = []
        for row in self._s.scalars(query.order_by(AuditEventRow.at.desc()).limit(500)):
            details: dict[str, Any] = json.loads(row.details)
            schools = [u for u in details.get("uai", []) if scope.allows(u) and (not uai or u == uai)]
            if not schools:
                continue
            found.append(self._item("birthdate", row.id, schools[0], row.at,
                                    "Dates de naissance refusées 3 fois : démarche d'activation annulée", handled,
                                    details={"schools": details.get("schools", [])}))
        return found

    @staticmethod
    def _item(kind: str, item_id: int, uai: str, at: dt.datetime, summary: str,
              handled: dict[tuple[str, int], tuple[dt.datetime, str]], *, student_id: int | None = None,
              details: dict[str, Any] | None = None) -> InboxItem:
        done = handled.get((kind, item_id))
        return InboxItem(kind=kind, id=item_id, uai=uai, created_at=at, summary=summary,
                         status="handled" if done else "new", student_id=student_id, details=details or {},
                         handled_at=done[0] if done else None, handled_by=done[1] if done else "")

    def mark_handled(self, kind: str, item_id: int, staff_id: int, at: dt.datetime) -> bool:
        if self._s.scalar(select(InboxHandledRow.id).where(InboxHandledRow.kind == kind,
                                                           InboxHandledRow.item_id == item_id)) is not None:
            return False
        self._s.add(InboxHandledRow(kind=kind, item_id=item_id, staff_id=staff_id, handled_at=at))
        self._s.flush()
        return True

    # --- the funnel ---------------------------------------------------------------------------------

    def funnel_rows(self, scope: Scope, uai: str) -> list[tuple[str, str, int, int | None, str, Any]]:
        """(class, profile, record id, account id, account state, last login) for the school's pupils and
        their legal representatives (a representative once per class of their children)."""
        pupils = (select(StudentRow.class_code, StudentRow.id, StudentRow.account_id, AccountRow.state,
                         AccountRow.last_login_at)
                  .outerjoin(AccountRow, AccountRow.id == StudentRow.account_id)
                  .where(StudentRow.uai == uai, StudentRow.status == "present", _in_scope(StudentRow.uai, scope)))
        rows: list[tuple[str, str, int, int | None, str, Any]] = [
            (c, "student", i, a, s or "none", last) for c, i, a, s, last in self._s.execute(pupils)]
        reps = (select(StudentRow.class_code, RepresentativeRow.id, RepresentativeRow.account_id, AccountRow.state,
                       AccountRow.last_login_at).distinct()
                .join(StudentLinkRow, StudentLinkRow.representative_id == RepresentativeRow.id)
                .join(StudentRow, StudentRow.id == StudentLinkRow.student_id)
                .outerjoin(AccountRow, AccountRow.id == RepresentativeRow.account_id)
                .where(RepresentativeRow.uai == uai, RepresentativeRow.status == "present",
                       StudentLinkRow.status == "present", StudentRow.status == "present",
                       _in_scope(RepresentativeRow.uai, scope)))
        rows.extend((c, "parent", i, a, s or "none", last) for c, i, a, s, last in self._s.execute(reps))
        return rows
