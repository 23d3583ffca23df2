"""Where CAS tickets live: the database (``SqlCasTickets``) or Redis (``idp.storage.cas_redis``).

Every worker sees them either way (issue 5). Both stores keep the same contract, ``CasTicketStore``, and the
same tests run against both (``tests/protocols/cas/test_ticket_store.py``):

- tickets are keyed by the SHA-256 of their string (never stored in clear) and kept at least until their
  ``expires_at`` (a store may drop them then; callers still compare ``expires_at`` with their own clock);
- ``consume`` takes a service or proxy ticket out in ONE atomic step (``DELETE … RETURNING``, ``GETDEL``):
  whoever gets it back is the only validation that ever sees it, whether it then succeeds or fails (CAS 3.0
  §3.1.1); a proxy-granting ticket is never consumed (§3.3.1), only read by ``proxy_granting``;
- what validations answer for an SSO session and a service (user id, attributes) is computed at the first
  ticket and kept (``keep_session_attributes``; the reference CAS server keeps the principal's attributes
  with its TGT the same way), with the account's register version (``register_version``: when a register
  import last changed what it releases); ``from_session`` stores a ticket carrying that copy in one step, or
  answers False when there is none for the account's current register version, and the next copy kept
  replaces the stale one: a register change reaches the next ticket of the SSO session;
- ``end_session`` forgets a session's tickets (its PGTs die with it) and attributes; ``forget_service`` those
  of a registration that is removed.

On the database, each operation is one plain SQL statement on a pooled DBAPI connection, in autocommit on
PostgreSQL (one round trip: no BEGIN/COMMIT pair, no ORM, no statement compilation); on SQLite the driver
commits each statement. ``end_session`` and ``forget_service`` are two statements (attributes, then tickets):
each is idempotent.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Engine, create_engine

from idp.errors import ServiceUnavailable
from idp.settings import Settings
from idp.storage.cas_store import CasServiceRecord, TicketRecord
from idp.storage.db import Database
from idp.storage.uow import OUTAGE_ERRORS, is_outage

#: ``application_name`` of the CAS hot-path pool's PostgreSQL connections (visible in ``pg_stat_activity``).
CAS_POOL_NAME = "idp-cas"


class CasTicketStore(Protocol):
    """Where tickets and the per-session attributes live (database or Redis); see the module docstring."""

    def add(self, record: TicketRecord) -> None: ...

    def from_session(self, record: TicketRecord, register: str) -> bool: ...

    def consume(self, ticket_id: str) -> TicketRecord | None: ...

    def proxy_granting(self, ticket_id: str) -> TicketRecord | None: ...

    def session_attributes(self, session_id: str, service_id: str, register: str) -> dict[str, Any] | None: ...

    def keep_session_attributes(self, session_id: str, service_id: str, payload: dict[str, Any],
                                at: dt.datetime, register: str) -> None: ...

    def end_session(self, session_id: str) -> None: ...

    def forget_service(self, service_id: str) -> None: ...


def ticket_store(settings: Settings, db: Database) -> tuple[SqlCasTickets, CasTicketStore]:
    """The CAS statements on the database (registry lookup, session participants) and the ticket store: Redis
    when ``[redis] url`` is set, else the same database store."""
    pool = settings.database
    database = SqlCasTickets(db, pool_size=pool.pool_size, timeout_seconds=pool.pool_timeout_seconds)
    if not settings.redis.url:
        return database, database
    from idp.storage.cas_redis import RedisCasTickets
    from idp.storage.redis_store import connect

    lifetime = dt.timedelta(hours=settings.session.absolute_hours)
    return database, RedisCasTickets(connect(settings.redis.url), attributes_ttl=lifetime)


_SERVICE_COLUMNS = ("service_id", "name", "match", "pattern", "scheme", "host", "preset", "attributes", "clear_ine",
                    "proxy", "slo", "ca_file", "home_url", "enabled")
_TICKET_FIELDS = ("id", "kind", "service_id", "service", "session_id", "account_id", "fresh", "created_at",
                  "expires_at", "proxies", "payload")
_SQL = {
    "services_on": "SELECT service_id, name, match, pattern, scheme, host, preset, attributes, clear_ine, proxy, "
                   "slo, ca_file, home_url, enabled FROM cas_services "
                   "WHERE host = :host AND scheme = :scheme AND enabled ORDER BY id",
    "add": "INSERT INTO cas_tickets (id, kind, service_id, service, session_id, account_id, fresh, created_at, "
           "expires_at, proxies, payload) VALUES (:id, :kind, :service_id, :service, :session_id, :account_id, "
           ":fresh, :created_at, :expires_at, :proxies, :payload)",
    "from_session": "INSERT INTO cas_tickets (id, kind, service_id, service, session_id, account_id, fresh, "
                    "created_at, expires_at, proxies, payload) SELECT :id, :kind, :service_id, :service, "
                    ":session_id, :account_id, :fresh, :created_at, :expires_at, :proxies, payload "
                    "FROM cas_session_attributes WHERE session_id = :of_session AND service_id = :of_service "
                    "AND register_version = :of_register",
    # A single-logout service's ticket and its session participant (read by single logout), in one PostgreSQL
    # statement: data-modifying CTEs run together, atomically; no attributes copy, neither row.
    "from_session_joining": "WITH t AS (INSERT INTO cas_tickets (id, kind, service_id, service, session_id, "
                            "account_id, fresh, created_at, expires_at, proxies, payload) SELECT :id, :kind, "
                            ":service_id, :service, :session_id, :account_id, :fresh, :created_at, :expires_at, "
                            ":proxies, payload FROM cas_session_attributes WHERE session_id = :of_session "
                            "AND service_id = :of_service AND register_version = :of_register "
                            "RETURNING session_id) "
                            "INSERT INTO sso_session_participants (session_id, protocol, client_id, data, "
                            "created_at) SELECT session_id, 'cas', :of_service, :data, :created_at FROM t",
    "participant": "INSERT INTO sso_session_participants (session_id, protocol, client_id, data, created_at) "
                   "VALUES (:session_id, 'cas', :client_id, :data, :created_at)",
    "consume": "DELETE FROM cas_tickets WHERE id = :id AND kind IN ('ST', 'PT') RETURNING id, kind, service_id, "
               "service, session_id, account_id, fresh, created_at, expires_at, proxies, payload",
    "pgt": "SELECT id, kind, service_id, service, session_id, account_id, fresh, created_at, expires_at, proxies, payload FROM cas_tickets WHERE id = :id AND kind = 'PGT'",
    "attributes": "SELECT payload FROM cas_session_attributes WHERE session_id = :session_id "
                  "AND service_id = :service_id AND register_version = :register",
    # A copy older than the account's register change is replaced, not kept (see ``keep_session_attributes``).
    "keep": "INSERT INTO cas_session_attributes (session_id, service_id, payload, register_version, created_at) "
            "VALUES (:session_id, :service_id, :payload, :register, :created_at) "
            "ON CONFLICT (session_id, service_id) DO UPDATE SET payload = excluded.payload, "
            "register_version = excluded.register_version, created_at = excluded.created_at",
    "end_attributes": "DELETE FROM cas_session_attributes WHERE session_id = :session_id",
    "end_tickets": "DELETE FROM cas_tickets WHERE session_id = :session_id",
    "forget_attributes": "DELETE FROM cas_session_attributes WHERE service_id = :service_id",
    "forget_tickets": "DELETE FROM cas_tickets WHERE service_id = :service_id",
}
_PYFORMAT = {name: re.sub(r":(\w+)", r"%(\1)s", sql) for name, sql in _SQL.items()}


class SqlCasTickets:
    """The registry lookup and the ticket store on the database, as single autocommit statements on a pooled
    DBAPI connection.

    No ORM, no statement compilation, no result-metadata processing: on PostgreSQL a validation is one round
    trip. PostgreSQL gets its own small pool (kept on the ``Database``, so one per process and database) in
    autocommit and without pre-ping, which would double the round trips: when a connection is found dead the
    whole pool is replaced and the statement tried once more on a new connection, which is how it recovers
    after an outage. Failures that remain become ``ServiceUnavailable``, as in ``SqlUnitOfWork``.
    """

    def __init__(self, db: Database, *, pool_size: int = 10, timeout_seconds: int = 5) -> None:
        self._outage_errors, self._is_outage = OUTAGE_ERRORS, is_outage
        self._postgres = db.dialect == "postgresql"
        self._engine: Engine = self._pool_for(db, pool_size, timeout_seconds) if self._postgres else db.engine
        dbapi = db.engine.dialect.dbapi
        self._driver_errors = (dbapi.OperationalError, dbapi.InterfaceError)  # type: ignore[union-attr]
        self._integrity_error = dbapi.IntegrityError  # type: ignore[union-attr]
        self._sql = _PYFORMAT if self._postgres else _SQL

    @staticmethod
    def _pool_for(db: Database, pool_size: int, timeout_seconds: int) -> Engine:
        engine = getattr(db, "cas_engine", None)
        if engine is None:
            # Autocommit: a returned connection has no transaction to roll back (no reset on return).
            engine = create_engine(db.engine.url, isolation_level="AUTOCOMMIT", pool_pre_ping=False,
                                   pool_reset_on_return=None, pool_size=pool_size, max_overflow=pool_size, pool_timeout=timeout_seconds,
                                   connect_args={"connect_timeout": timeout_seconds,
                                                 "application_name": CAS_POOL_NAME})
            db.cas_engine = engine  # type: ignore[attr-defined]
        return engine

    def _bind_time(self, value: dt.datetime) -> object:
        naive = value.astimezone(dt.UTC).replace(tzinfo=None)
        return naive if self._postgres else naive.strftime("%Y-%m-%d %H:%M:%S.%f")

    def _checkout(self) -> Any:
        try:
            return self._engine.raw_connection()
        except self._driver_errors as exc:  # the pool hands the driver's connection error through
            raise ServiceUnavailable() from exc
        except self._outage_errors as exc:
            if self._is_outage(exc):
                raise ServiceUnavailable() from exc
            raise

    def _run(self, name: str, params: dict[str, Any], *, rows: bool) -> Any:
        for attempt in (1, 2):
            fairy = self._checkout()
            try:
                cursor = fairy.driver_connection.cursor()
                try:
                    cursor.execute(self._sql[name], params)
                    return cursor.fetchall() if rows else cursor.rowcount
                finally:
                    cursor.close()
            except self._driver_errors as exc:
                fairy.invalidate(exc)
                if attempt == 2 or not self._postgres:
                    raise ServiceUnavailable() from exc
                # The server went away (restart, failover): its other pooled connections are dead too.
                self._engine.dispose()
            finally:
                fairy.close()
        raise AssertionError("unreachable")

    def services_on(self, scheme: str, host: str) -> Sequence[CasServiceRecord]:
        """Enabled registrations on this scheme and host."""
        records = []
        for row in self._run("services_on", {"scheme": scheme, "host": host}, rows=True):
            values = dict(zip(_SERVICE_COLUMNS, row, strict=True))
            values["attributes"] = tuple(json.loads(values["attributes"])) if values["attributes"] else ()
            for name in ("clear_ine", "proxy", "slo", "enabled"):
                values[name] = bool(values[name])
            records.append(CasServiceRecord(**values))
        return records

    # --- the ticket store (CasTicketStore) -------------------------------------------------------

    def _params(self, record: TicketRecord) -> dict[str, Any]:
        return {"id": record.id, "kind": record.kind, "service_id": record.service_id, "service": record.service,
                "session_id": record.session_id, "account_id": record.account_id, "fresh": record.fresh,
                "proxies": json.dumps(list(record.proxies)), "created_at": self._bind_time(record.created_at),
                "expires_at": self._bind_time(record.expires_at),
                "payload": json.dumps(record.payload) if record.payload else ""}

    def add(self, record: TicketRecord) -> None:
        """Store a new ticket (by hash)."""
        with contextlib.suppress(self._integrity_error):  # a retry after a lost answer: the first one stored it
            self._run("add", self._params(record), rows=False)

    def from_session(self, record: TicketRecord, register: str) -> bool:
        """Store a ticket with the attributes already computed for its session and service from the account's
        register version ``register``; False if there is no such copy."""
        # The WHERE parameters are separate: PostgreSQL deduces one type per parameter (text vs varchar here).
        params = {**self._params(record), "of_session": record.session_id, "of_service": record.service_id,
                  "of_register": register}
        try:
            return bool(self._run("from_session", params, rows=False))
        except self._integrity_error:  # a retry after a lost answer: the first attempt did store it
            return True

    def from_session_joining(self, record: TicketRecord, register: str, participant: dict[str, Any]) -> bool:
        """``from_session`` for a single-logout service, with its session participant row (``participant`` as
        its data); False, and neither row, when the session has no attributes copy for the service and register
        version.

        One statement on PostgreSQL. On SQLite (no data-modifying CTE) the ticket first, then the participant:
        the caller hands the ticket out only once both are stored, so a failure in between leaves a ticket
        nobody received, which expires unseen."""
        if not self._postgres:
            if not self.from_session(record, register):
                return False
            self.add_participant(record.session_id, record.service_id, participant, record.created_at)
            return True
        params = {**self._params(record), "of_session": record.session_id, "of_service": record.service_id,
                  "of_register": register, "data": json.dumps(participant)}
        try:
            return bool(self._run("from_session_joining", params, rows=False))
        except self._integrity_error:  # a retry after a lost answer: the first attempt stored both rows
            return True

    def add_participant(self, session_id: str, client_id: str, data: dict[str, Any], at: dt.datetime) -> None:
        """Record a CAS service as a participant of an SSO session (what ``SessionRepository.add_participant``
        writes), as one autocommit statement."""
        self._run("participant", {"session_id": session_id, "client_id": client_id, "data": json.dumps(data),
                                  "created_at": self._bind_time(at)}, rows=False)

    def consume(self, ticket_id: str) -> TicketRecord | None:
        """Take a service or proxy ticket out of the store: one ``DELETE … RETURNING``, one winner."""
        rows = self._run("consume", {"id": ticket_id}, rows=True)
        return self._ticket(rows[0]) if rows else None

    def proxy_granting(self, ticket_id: str) -> TicketRecord | None:
        """A proxy-granting ticket (not consumed: a PGT may be used many times, CAS 3.0 §3.3.1)."""
        rows = self._run("pgt", {"id": ticket_id}, rows=True)
        return self._ticket(rows[0]) if rows else None

    def session_attributes(self, session_id: str, service_id: str, register: str) -> dict[str, Any] | None:
        """The attributes computed for this session and service from register version ``register``, if any."""
        rows = self._run("attributes", {"session_id": session_id, "service_id": service_id, "register": register},
                         rows=True)
        return json.loads(rows[0][0]) if rows and rows[0][0] else None

    def keep_session_attributes(self, session_id: str, service_id: str, payload: dict[str, Any],
                                at: dt.datetime, register: str) -> None:
        """Remember a session's attributes for a service, computed from register version ``register``, in place
        of any earlier copy (a stale one, or a concurrent first ticket's, computed from the same register)."""
        self._run("keep", {"session_id": session_id, "service_id": service_id, "payload": json.dumps(payload),
                           "register": register, "created_at": self._bind_time(at)}, rows=False)

    def end_session(self, session_id: str) -> None:
        """Drop every ticket and the attributes of an ended SSO session (its PGTs die with it, §3.3.1)."""
        self._run("end_attributes", {"session_id": session_id}, rows=False)
        self._run("end_tickets", {"session_id": session_id}, rows=False)

    def forget_service(self, service_id: str) -> None:
        """Drop every ticket and attributes copy of a registration that is removed."""
        self._run("forget_attributes", {"service_id": service_id}, rows=False)
        self._run("forget_tickets", {"service_id": service_id}, rows=False)

    @staticmethod
    def _ticket(row: Sequence[Any]) -> TicketRecord:
        values = dict(zip(_TICKET_FIELDS, row, strict=True))
        for name in ("created_at", "expires_at"):
            value = values[name]
            value = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
            values[name] = value.replace(tzinfo=dt.UTC)
        values["fresh"] = bool(values["fresh"])
        values["proxies"] = tuple(json.loads(values["proxies"] or "[]"))
        values["payload"] = json.loads(values["payload"]) if values["payload"] else {}
        return TicketRecord(**values)
