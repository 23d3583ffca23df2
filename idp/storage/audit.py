"""The audit trail in SQL, mirrored to the structured log."""

from __future__ import annotations

import json
import logging

from sqlalchemy import insert

from idp.core.ports import AuditEvent
from idp.storage.models import AuditEventRow, Executor, table_of
from idp.storage.staff_console_store import AuditLinkRow

log = logging.getLogger("idp.audit")
_INSERT = insert(table_of(AuditEventRow))


class SqlAuditLog:
    """``AuditLog`` on SQLAlchemy; each event also goes to the ``idp.audit`` logger."""

    def __init__(self, session: Executor) -> None:
        self._s = session

    def record(self, event: AuditEvent) -> None:
        about = (event.details or {}).get("about")
        if about:  # the register records it is about (a family's history in the staff console)
            event_id = self._s.execute(_INSERT.returning(table_of(AuditEventRow).c.id), row_values(event)).scalar_one()
            self._s.execute(insert(table_of(AuditLinkRow)), [{"event_id": event_id, "record": str(r)[:24]}
                                                             for r in about])
        else:
            self._s.execute(_INSERT, row_values(event))
        log_event(event)


def row_values(event: AuditEvent) -> dict[str, object]:
    """The ``audit_events`` row of an event."""
    return {"at": event.at, "event": event.event, "account_id": event.account_id, "subject": event.subject,
            "ip": event.ip, "details": json.dumps(event.details or {})}


def log_event(event: AuditEvent) -> None:
    """Mirror an event recorded in the table to the ``idp.audit`` logger."""
    log.info(event.event, extra={"audit": {"account_id": event.account_id, "subject": event.subject,
                                           "ip": event.ip, **(event.details or {})}})
