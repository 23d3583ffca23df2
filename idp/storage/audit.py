"""The audit trail in SQL, mirrored to the structured log."""

from __future__ import annotations

import json
import logging

from sqlalchemy import insert
from sqlalchemy.orm import Session

from idp.core.ports import AuditEvent
from idp.storage.models import AuditEventRow

log = logging.getLogger("idp.audit")
_INSERT = insert(AuditEventRow.__table__)


class SqlAuditLog:
    """``AuditLog`` on SQLAlchemy; each event also goes to the ``idp.audit`` logger."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def record(self, event: AuditEvent) -> None:
        details = event.details or {}
        self._s.execute(_INSERT, {"at": event.at, "event": event.event, "account_id": event.account_id,
                                  "subject": event.subject, "ip": event.ip, "details": json.dumps(details)})
        log.info(event.event, extra={"audit": {"account_id": event.account_id, "subject": event.subject,
                                               "ip": event.ip, **details}})
