"""The audit trail in SQL, mirrored to the structured log."""

from __future__ import annotations

import json
import logging

from sqlalchemy.orm import Session

from idp.core.ports import AuditEvent
from idp.storage.models import AuditEventRow

log = logging.getLogger("idp.audit")


class SqlAuditLog:
    """``AuditLog`` on SQLAlchemy; each event also goes to the ``idp.audit`` logger."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def record(self, event: AuditEvent) -> None:
        details = event.details or {}
        self._s.add(AuditEventRow(at=event.at, event=event.event, account_id=event.account_id,
                                  subject=event.subject, ip=event.ip, details=json.dumps(details)))
        log.info(event.event, extra={"audit": {"account_id": event.account_id, "subject": event.subject,
                                               "ip": event.ip, **details}})
