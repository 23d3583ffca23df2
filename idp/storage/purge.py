"""``idp purge``: delete personal data that has outlived its purpose, and expired short-lived state.

Register records "leaving" for longer than ``purge_after_days`` lose their personal data and become
"purged" (the INE, or the school's own identifier, stays so that a pupil who comes back is recognised);
their links go. Closed accounts left without a record that is not purged lose their personal fields.
Every statement is conditional on the state it changes, so running twice, or twice at once, purges once.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Date, bindparam, text
from sqlalchemy.orm import Session

from idp.core.audit import REGISTER_PURGED
from idp.core.ports import AuditEvent
from idp.errors import ServiceUnavailable
from idp.storage.audit import SqlAuditLog
from idp.storage.db import Database
from idp.storage.models import UtcDateTime
from idp.storage.uow import OUTAGE_ERRORS, is_outage

log = logging.getLogger("idp.register")

SESSION_KEEP = dt.timedelta(days=30)
THROTTLE_KEEP = dt.timedelta(days=1)
#: An upstream ID token is only needed while its SSO session may live (absolute timeout, hours).
FEDERATION_TOKEN_KEEP = dt.timedelta(days=2)


@dataclass
class PurgeReport:
    """How many rows each step touched."""

    students: int = 0
    representatives: int = 0
    links: int = 0
    accounts: int = 0
    throttle_counters: int = 0
    authn_requests: int = 0
    sso_sessions: int = 0
    protocol_state: int = 0
    activation_state: int = 0
    staff_state: int = 0


_STEPS: tuple[tuple[str, str], ...] = (
    ("students",
     "UPDATE students SET family_name = '', given_names = '', birth_date = :epoch, class_code = '', level = '', "
     "postal_code = '', fingerprint = '', status = 'purged', updated_at = :now "
     "WHERE status = 'leaving' AND left_at < :cutoff"),
    ("representatives",
     "UPDATE representatives SET family_name = '', given_names = '', mobile_phone = '', email = '', "
     "postal_code = '', fingerprint = '', status = 'purged', updated_at = :now "
     "WHERE status = 'leaving' AND left_at < :cutoff"),
    ("links",
     "DELETE FROM student_links WHERE student_id IN (SELECT id FROM students WHERE status = 'purged') "
     "OR representative_id IN (SELECT id FROM representatives WHERE status = 'purged') "
     "OR (status = 'leaving' AND updated_at < :cutoff)"),
    ("accounts",
     "UPDATE accounts SET family_name = '', given_names = '', email = '', email_verified_at = NULL, phone = '', "
     "phone_verified_at = NULL, password_hash = NULL WHERE state = 'closed' AND closed_at < :cutoff "
     "AND (family_name <> '' OR given_names <> '' OR email <> '' OR phone <> '' OR password_hash IS NOT NULL) "
     "AND NOT EXISTS (SELECT 1 FROM students s WHERE s.account_id = accounts.id AND s.status <> 'purged') "
     "AND NOT EXISTS (SELECT 1 FROM representatives r WHERE r.account_id = accounts.id AND r.status <> 'purged')"),
    ("throttle_counters", "DELETE FROM throttle_counters WHERE updated_at < :throttle_cutoff"),
    ("authn_requests", "DELETE FROM authn_requests WHERE expires_at < :now"),
    ("sso_sessions",
     "DELETE FROM sso_sessions WHERE (ended_at IS NOT NULL AND ended_at < :session_cutoff) "
     "OR expires_at < :session_cutoff"),
)


#: Activation rows also feed the daily and hourly limits (SMS per number per 24 h, starts per IP per hour):
#: they are kept two days, then deleted (SECURITY R18). The development outbox keeps 30 days.
ACTIVATION_KEEP = dt.timedelta(days=2)
OUTBOX_KEEP = dt.timedelta(days=30)
_ACTIVATION_STEPS = (
    "DELETE FROM activation_codes WHERE expires_at < :activation_cutoff",
    "DELETE FROM delivery_queue WHERE created_at < :activation_cutoff",
    "DELETE FROM email_tokens WHERE expires_at < :now",
    "DELETE FROM outbox_messages WHERE created_at < :outbox_cutoff",
    "DELETE FROM activation_transactions WHERE expires_at < :activation_cutoff "
    "AND NOT EXISTS (SELECT 1 FROM activation_codes c WHERE c.transaction_id = activation_transactions.id)",
)


class SqlPurge:
    """Runs every purge step in one transaction and records a ``register.purged`` audit event."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def run(self, now: dt.datetime, purge_after_days: int) -> PurgeReport:
        """Purge what is older than the limits, as of ``now``."""
        params: dict[str, Any] = {
            "now": now, "cutoff": now - dt.timedelta(days=purge_after_days), "epoch": dt.date(1900, 1, 1),
            "throttle_cutoff": now - THROTTLE_KEEP, "session_cutoff": now - SESSION_KEEP,
            "activation_cutoff": now - ACTIVATION_KEEP, "outbox_cutoff": now - OUTBOX_KEEP,
        }
        report = PurgeReport()
        try:
            with self.db.sessionmaker() as session:
                for name, statement in _STEPS:
                    setattr(report, name, self._execute(session, statement, params))
                report.protocol_state = self._protocol_state(session, now)
                report.activation_state = sum(self._execute(session, statement, params)
                                              for statement in _ACTIVATION_STEPS)
                from idp.storage.staff_console_store import purge_staff_state

                report.staff_state = purge_staff_state(session, now, params["cutoff"])
                SqlAuditLog(session).record(AuditEvent(REGISTER_PURGED, now, details=vars(report).copy()))
                session.commit()
        except OUTAGE_ERRORS as exc:
            if is_outage(exc):
                raise ServiceUnavailable() from exc
            raise
        log.info("purge: %s", vars(report))
        return report

    @staticmethod
    def _protocol_state(session: Session, now: dt.datetime) -> int:
        """Expired SAML replay entries and pending requests, CAS tickets, OIDC codes, tokens and grants, federation
        states and upstream ID tokens."""
        from idp.storage.cas_store import SqlCasStore
        from idp.storage.federation_store import SqlFederationStore
        from idp.storage.oidc_store import SqlOidcStore
        from idp.storage.saml_store import SqlSamlStore

        return (SqlSamlStore(session).purge(now) + SqlCasStore(session).purge(now, dt.timedelta(days=1))
                + SqlOidcStore(session).purge(now) + SqlFederationStore(session).purge(now, now - FEDERATION_TOKEN_KEEP))

    @staticmethod
    def _execute(session: Session, statement: str, params: dict[str, Any]) -> int:
        used = {k: v for k, v in params.items() if f":{k}" in statement}
        clause = text(statement).bindparams(*[
            bindparam(k, type_=UtcDateTime() if isinstance(v, dt.datetime) else Date()) for k, v in used.items()])
        return int(session.execute(clause, used).rowcount)  # type: ignore[attr-defined]
