"""SQL storage of the CAS front-end: the service registry and the tickets (tables on the shared metadata).

Tickets are stored by the SHA-256 of their string, never in clear. A service or proxy ticket is consumed by
ONE ``DELETE … RETURNING``: whoever gets the row back is the only validation that ever sees it, whether it then
succeeds or fails (CAS 3.0 §3.1.1), so ten parallel validations on PostgreSQL give exactly one row; on SQLite
``BEGIN IMMEDIATE`` serialises the writers. Deleting (rather than setting ``used_at``) also means a used ticket
leaves nothing behind, attributes snapshot included, and a replayed ticket cannot be told from an unknown one.
Proxy-granting tickets are read, never consumed: they live until the SSO session ends (logout hook) or expires.

What a ticket's validation answers (user id and attributes) is computed once per SSO session and service, at
the first ticket, and kept in ``cas_session_attributes`` (as the reference CAS server keeps the principal's
attributes with its TGT); later tickets of that session copy it. The hot statements (registry lookup, ticket
from that copy, consumption) run as single statements through ``FastCasStore``: plain SQL on a pooled
connection, in autocommit on PostgreSQL (one round trip each), in a ``BEGIN IMMEDIATE`` transaction on SQLite.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    Engine,
    Index,
    Integer,
    String,
    Table,
    Text,
    create_engine,
    delete,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from idp.errors import ServiceUnavailable
from idp.storage.db import Database
from idp.storage.models import Base, ServiceProviderRow, UtcDateTime

KIND_ST, KIND_PT, KIND_PGT = "ST", "PT", "PGT"
#: ``application_name`` of the CAS hot-path pool's PostgreSQL connections (visible in ``pg_stat_activity``).
FAST_POOL_NAME = "idp-cas"


class CasServiceRow(Base):
    """A registered CAS service: a URL pattern (exact, prefix or anchored regex) on one scheme and host."""

    __tablename__ = "cas_services"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    match: Mapped[str] = mapped_column(String(10))  # exact, prefix, regex
    pattern: Mapped[str] = mapped_column(String(1000))
    scheme: Mapped[str] = mapped_column(String(5))
    host: Mapped[str] = mapped_column(String(260), index=True)  # normalised host[:port]
    preset: Mapped[str] = mapped_column(String(20), default="generic")
    attributes: Mapped[str] = mapped_column(Text, default="")  # JSON list of canonical names; "" = preset's
    clear_ine: Mapped[bool] = mapped_column(Boolean, default=False)
    proxy: Mapped[bool] = mapped_column(Boolean, default=False)
    slo: Mapped[bool] = mapped_column(Boolean, default=False)
    ca_file: Mapped[str] = mapped_column(String(500), default="")
    home_url: Mapped[str] = mapped_column(String(400), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class CasTicketRow(Base):
    """A live CAS ticket (ST, PT or PGT), keyed by the SHA-256 of its string."""

    __tablename__ = "cas_tickets"
    __table_args__ = (Index("ix_cas_tickets_session", "session_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(3))
    service_id: Mapped[str] = mapped_column(String(64))
    service: Mapped[str] = mapped_column(Text)  # normalised service URL (for a PGT: its pgtUrl)
    session_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(Integer)
    fresh: Mapped[bool] = mapped_column(Boolean, default=False)
    proxies: Mapped[str] = mapped_column(Text, default="[]")  # JSON list, most recent proxy first
    payload: Mapped[str] = mapped_column(Text, default="")  # JSON snapshot of the released identity
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)


class CasSessionAttributesRow(Base):
    """What validations answer for one SSO session and service (user id, attributes), computed once."""

    __tablename__ = "cas_session_attributes"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)


@dataclass(frozen=True)
class CasServiceRecord:
    """A registry entry as the CAS front-end uses it."""

    service_id: str
    name: str
    match: str
    pattern: str
    scheme: str
    host: str
    preset: str = "generic"
    attributes: tuple[str, ...] = ()
    clear_ine: bool = False
    proxy: bool = False
    slo: bool = False
    ca_file: str = ""
    home_url: str = ""
    enabled: bool = True


@dataclass(frozen=True)
class TicketRecord:
    """A ticket as stored (the ticket string itself is never stored)."""

    id: str
    kind: str
    service_id: str
    service: str
    session_id: str
    account_id: int
    fresh: bool
    created_at: dt.datetime
    expires_at: dt.datetime
    proxies: tuple[str, ...] = ()
    payload: dict[str, Any] = field(default_factory=dict)


def _service(row: CasServiceRow) -> CasServiceRecord:
    return CasServiceRecord(
        service_id=row.service_id, name=row.name, match=row.match, pattern=row.pattern, scheme=row.scheme,
        host=row.host, preset=row.preset, attributes=tuple(json.loads(row.attributes)) if row.attributes else (),
        clear_ine=row.clear_ine, proxy=row.proxy, slo=row.slo, ca_file=row.ca_file, home_url=row.home_url,
        enabled=row.enabled,
    )


_T = cast(Table, CasTicketRow.__table__)
_TICKET_COLUMNS = (_T.c.id, _T.c.kind, _T.c.service_id, _T.c.service, _T.c.session_id, _T.c.account_id,
                   _T.c.fresh, _T.c.created_at, _T.c.expires_at, _T.c.proxies, _T.c.payload)


def _ticket(row: Any) -> TicketRecord:
    return TicketRecord(
        id=row.id, kind=row.kind, service_id=row.service_id, service=row.service, session_id=row.session_id,
        account_id=row.account_id, fresh=bool(row.fresh), created_at=row.created_at, expires_at=row.expires_at,
        proxies=tuple(json.loads(row.proxies or "[]")), payload=json.loads(row.payload) if row.payload else {},
    )


class SqlCasStore:
    """The CAS registry and ticket repository on one SQLAlchemy session (``uow.session``)."""

    def __init__(self, session: Session) -> None:
        self._s = session

    # --- registry --------------------------------------------------------------------------------

    def services_on(self, scheme: str, host: str) -> Sequence[CasServiceRecord]:
        """Enabled services registered on this scheme and host (the only ones a URL there may match)."""
        rows = self._s.scalars(select(CasServiceRow).where(
            CasServiceRow.host == host, CasServiceRow.scheme == scheme, CasServiceRow.enabled.is_(True))
            .order_by(CasServiceRow.id))
        return [_service(r) for r in rows]

    def service(self, service_id: str) -> CasServiceRecord | None:
        """One registry entry by its id (enabled or not)."""
        row = self._s.scalars(select(CasServiceRow).where(CasServiceRow.service_id == service_id)).first()
        return _service(row) if row else None

    def all_services(self) -> Sequence[CasServiceRecord]:
        """Every registry entry, by name."""
        return [_service(r) for r in self._s.scalars(select(CasServiceRow).order_by(CasServiceRow.name))]

    def add_service(self, record: CasServiceRecord, description: str, at: dt.datetime) -> None:
        """Register a service and list it in the shared ``service_providers`` table ("Mes services")."""
        self._s.add(CasServiceRow(
            service_id=record.service_id, name=record.name, match=record.match, pattern=record.pattern,
            scheme=record.scheme, host=record.host, preset=record.preset,
            attributes=json.dumps(list(record.attributes)) if record.attributes else "",
            clear_ine=record.clear_ine, proxy=record.proxy, slo=record.slo, ca_file=record.ca_file,
            home_url=record.home_url, enabled=record.enabled, created_at=at,
        ))
        self._s.add(ServiceProviderRow(protocol="cas", client_id=record.service_id, name=record.name,
                                       home_url=record.home_url, description=description, enabled=True,
                                       created_at=at))

    def remove_service(self, service_id: str) -> bool:
        """Remove a registration (and its "Mes services" entry); its live tickets die with it."""
        result = self._s.execute(delete(CasServiceRow).where(CasServiceRow.service_id == service_id))
        self._s.execute(delete(ServiceProviderRow).where(ServiceProviderRow.protocol == "cas",
                                                         ServiceProviderRow.client_id == service_id))
        self._s.execute(delete(_T).where(_T.c.service_id == service_id))
        self._s.execute(delete(CasSessionAttributesRow).where(CasSessionAttributesRow.service_id == service_id))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # --- tickets ---------------------------------------------------------------------------------

    def add_ticket(self, record: TicketRecord) -> None:
        """Store a new ticket (by hash)."""
        self._s.execute(insert(_T).values(
            id=record.id, kind=record.kind, service_id=record.service_id, service=record.service,
            session_id=record.session_id, account_id=record.account_id, fresh=record.fresh,
            proxies=json.dumps(list(record.proxies)), payload=json.dumps(record.payload) if record.payload else "",
            created_at=record.created_at, expires_at=record.expires_at,
        ))

    def proxy_granting(self, ticket_id: str) -> TicketRecord | None:
        """A proxy-granting ticket (not consumed: a PGT may be used many times, CAS 3.0 §3.3.1)."""
        row = self._s.execute(select(*_TICKET_COLUMNS).where(_T.c.id == ticket_id, _T.c.kind == KIND_PGT)).first()
        return _ticket(row) if row else None

    def session_attributes(self, session_id: str, service_id: str) -> dict[str, Any] | None:
        """The attributes computed for this session and service, if any."""
        payload = self._s.scalars(select(CasSessionAttributesRow.payload).where(
            CasSessionAttributesRow.session_id == session_id, CasSessionAttributesRow.service_id == service_id)).first()
        return json.loads(payload) if payload else None

    def keep_session_attributes(self, session_id: str, service_id: str, payload: dict[str, Any],
                                at: dt.datetime) -> None:
        """Remember a session's attributes for a service (a concurrent first ticket may have done it)."""
        dialect = self._s.get_bind().dialect.name
        statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(CasSessionAttributesRow)
        self._s.execute(statement.values(session_id=session_id, service_id=service_id, payload=json.dumps(payload),
                                         created_at=at).on_conflict_do_nothing())

    def end_session(self, session_id: str) -> int:
        """Drop every ticket of an ended SSO session (its PGTs die with it, CAS 3.0 §3.3.1)."""
        self._s.execute(delete(CasSessionAttributesRow).where(CasSessionAttributesRow.session_id == session_id))
        return int(self._s.execute(delete(_T).where(_T.c.session_id == session_id)).rowcount)  # type: ignore[attr-defined]

    def purge(self, now: dt.datetime, session_lifetime: dt.timedelta) -> int:
        """Delete expired tickets and attributes older than any session (idempotent, concurrent-safe)."""
        self._s.execute(delete(CasSessionAttributesRow).where(CasSessionAttributesRow.created_at
                                                              <= now - session_lifetime))
        return int(self._s.execute(delete(_T).where(_T.c.expires_at <= now)).rowcount)  # type: ignore[attr-defined]


_SERVICE_COLUMNS = ("service_id", "name", "match", "pattern", "scheme", "host", "preset", "attributes", "clear_ine",
                    "proxy", "slo", "ca_file", "home_url", "enabled")
_TICKET_FIELDS = ("id", "kind", "service_id", "service", "session_id", "account_id", "fresh", "created_at",
                  "expires_at", "proxies", "payload")
_SQL = {
    "services_on": "SELECT service_id, name, match, pattern, scheme, host, preset, attributes, clear_ine, proxy, "
                   "slo, ca_file, home_url, enabled FROM cas_services "
                   "WHERE host = :host AND scheme = :scheme AND enabled ORDER BY id",
    "from_session": "INSERT INTO cas_tickets (id, kind, service_id, service, session_id, account_id, fresh, proxies, "
                    "payload, created_at, expires_at) SELECT :id, :kind, :service_id, :service, :session_id, "
                    ":account_id, :fresh, :proxies, payload, :created_at, :expires_at FROM cas_session_attributes "
                    "WHERE session_id = :of_session AND service_id = :of_service",
    "consume": "DELETE FROM cas_tickets WHERE id = :id AND kind IN ('ST', 'PT') RETURNING id, kind, service_id, "
               "service, session_id, account_id, fresh, created_at, expires_at, proxies, payload",
}
_PYFORMAT = {name: re.sub(r":(\w+)", r"%(\1)s", sql) for name, sql in _SQL.items()}


class FastCasStore:
    """The three statements of the hot path, as single autocommit statements on a pooled DBAPI connection.

    No ORM, no statement compilation, no result-metadata processing: on PostgreSQL a validation is one round
    trip. PostgreSQL gets its own small pool (kept on the ``Database``, so one per process and database) in
    autocommit and without pre-ping, which would double the round trips: when a connection is found dead the
    whole pool is replaced and the statement tried once more on a new connection, which is how it recovers
    after an outage. Failures that remain become ``ServiceUnavailable``, as in ``SqlUnitOfWork``.
    """

    def __init__(self, db: Database, *, pool_size: int = 10, timeout_seconds: int = 5) -> None:
        from idp.storage.uow import OUTAGE_ERRORS, is_outage  # uow imports models, which import this module

        self._outage_errors, self._is_outage = OUTAGE_ERRORS, is_outage
        self._postgres = db.dialect == "postgresql"
        self._engine: Engine = self._pool_for(db, pool_size, timeout_seconds) if self._postgres else db.engine
        dbapi = db.engine.dialect.dbapi
        self._driver_errors = (dbapi.OperationalError, dbapi.InterfaceError)  # type: ignore[union-attr]
        self._integrity_error = dbapi.IntegrityError  # type: ignore[union-attr]
        self._sql = _PYFORMAT if self._postgres else _SQL

    @staticmethod
    def _pool_for(db: Database, pool_size: int, timeout_seconds: int) -> Engine:
        engine = getattr(db, "cas_fast_engine", None)
        if engine is None:
            engine = create_engine(db.engine.url, isolation_level="AUTOCOMMIT", pool_pre_ping=False,
                                   pool_size=pool_size, max_overflow=pool_size, pool_timeout=timeout_seconds,
                                   connect_args={"connect_timeout": timeout_seconds,
                                                 "application_name": FAST_POOL_NAME})
            db.cas_fast_engine = engine  # type: ignore[attr-defined]
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

    def ticket_from_session(self, record: TicketRecord) -> bool:
        """Store a ticket with the attributes already computed for its session and service; False if none."""
        params = {"id": record.id, "kind": record.kind, "service_id": record.service_id, "service": record.service,
                  "session_id": record.session_id, "account_id": record.account_id, "fresh": record.fresh,
                  "proxies": json.dumps(list(record.proxies)), "created_at": self._bind_time(record.created_at),
                  "expires_at": self._bind_time(record.expires_at), "of_session": record.session_id,
                  "of_service": record.service_id}
        try:
            return bool(self._run("from_session", params, rows=False))
        except self._integrity_error:  # a retry after a lost answer: the first attempt did store it
            return True

    def consume(self, ticket_id: str) -> TicketRecord | None:
        """Take a service or proxy ticket out of the store: one ``DELETE … RETURNING``, one winner."""
        rows = self._run("consume", {"id": ticket_id}, rows=True)
        if not rows:
            return None
        row = dict(zip(_TICKET_FIELDS, rows[0], strict=True))
        for name in ("created_at", "expires_at"):
            value = row[name]
            value = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
            row[name] = value.replace(tzinfo=dt.UTC)
        return _ticket(_Row(row))


class _Row:
    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)
