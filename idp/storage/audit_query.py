"""Reading the audit trail (``idp audit``): filters by account, school, event and date."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, literal, or_, select
from sqlalchemy.orm import Session

from idp.storage.models import AccountRow, AuditEventRow, RepresentativeRow, StudentRow
from idp.storage.staff_console_store import AuditLinkRow


@dataclass(frozen=True)
class AuditFilter:
    """What ``idp audit`` asks for; empty fields do not filter."""

    account: str = ""
    school: str = ""
    event: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = 200


def read_audit(session: Session, wanted: AuditFilter) -> Sequence[dict[str, Any]]:
    """Events matching the filter, oldest first (the last ``limit`` of them)."""
    query = select(AuditEventRow, AccountRow.identifier).outerjoin(AccountRow, AccountRow.id == AuditEventRow.account_id)
    if wanted.account:
        account_id = session.scalar(select(AccountRow.id).where(AccountRow.identifier == wanted.account.lower()))
        query = query.where(AuditEventRow.account_id == (account_id if account_id is not None else -1))
    if wanted.event:
        prefix = wanted.event.rstrip("*")
        query = query.where(AuditEventRow.event.like(prefix.replace("%", "").replace("_", "\\_") + "%", escape="\\")
                            if wanted.event.endswith(("*", ".")) else AuditEventRow.event == wanted.event)
    if wanted.school:
        query = query.where(_about_school(wanted.school.upper()))
    if wanted.since is not None:
        query = query.where(AuditEventRow.at >= wanted.since)
    if wanted.until is not None:
        query = query.where(AuditEventRow.at < wanted.until)
    rows = session.execute(query.order_by(AuditEventRow.at.desc(), AuditEventRow.id.desc()).limit(wanted.limit))
    out = [{"at": row.at, "event": row.event, "account": identifier or (row.account_id or ""),
            "subject": row.subject, "ip": row.ip, "details": json.loads(row.details)} for row, identifier in rows]
    return list(reversed(out))



def _about_school(uai: str) -> Any:
    """Events naming the school in their details, linked to one of its register records, or on an account
    linked to one of them."""
    as_text = String(24)
    linked = select(AuditLinkRow.event_id).where(or_(
        AuditLinkRow.record.in_(select(literal("student:") + StudentRow.id.cast(as_text)).where(StudentRow.uai == uai)),
        AuditLinkRow.record.in_(select(literal("rep:") + RepresentativeRow.id.cast(as_text))
                                .where(RepresentativeRow.uai == uai))))
    accounts = select(StudentRow.account_id).where(StudentRow.uai == uai, StudentRow.account_id.is_not(None)) \
        .union(select(RepresentativeRow.account_id).where(RepresentativeRow.uai == uai,
                                                          RepresentativeRow.account_id.is_not(None)))
    return or_(AuditEventRow.details.like(f'%"{uai}"%'), AuditEventRow.id.in_(linked),
               AuditEventRow.account_id.in_(accounts))
