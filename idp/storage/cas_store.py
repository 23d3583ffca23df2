"""SQL storage of the CAS front-end: the service registry, and the tables of the tickets kept in the database.

Tickets are stored by the SHA-256 of their string, never in clear, either in these tables or in Redis when
``[redis] url`` is set; ``idp.storage.cas_tickets`` has both ticket stores and their contract. Here are the
models, the registry (``SqlCasStore``, on a unit of work) and what the ``idp`` commands do to the tables:
remove a registration with its live tickets, purge what has expired.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Boolean,
    Index,
    Integer,
    String,
    Text,
    delete,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from idp.storage import catalogue
from idp.storage.models import Base, ServiceProviderRow, UtcDateTime, table_of

KIND_ST, KIND_PT, KIND_PGT = "ST", "PT", "PGT"


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
    """What validations answer for one SSO session and service (user id, attributes), computed at its first
    ticket and again after a register change of the account."""

    __tablename__ = "cas_session_attributes"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    payload: Mapped[str] = mapped_column(Text)
    # The account's register version the copy was computed from (``register_version``; "": never changed).
    register_version: Mapped[str] = mapped_column(String(40), default="", server_default="")
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


_T = table_of(CasTicketRow)

class SqlCasStore:
    """The CAS registry's administration on one SQLAlchemy session (``uow.session``), and the removal and purge
    of tickets kept in the database (the login's registry lookup and the ticket stores themselves are in
    ``idp.storage.cas_tickets``)."""

    def __init__(self, session: Session) -> None:
        self._s = session

    # --- registry --------------------------------------------------------------------------------

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
        catalogue.changed_in(self._s)

    def remove_service(self, service_id: str) -> bool:
        """Remove a registration (and its "Mes services" entry); its live tickets die with it."""
        result = self._s.execute(delete(CasServiceRow).where(CasServiceRow.service_id == service_id))
        self._s.execute(delete(ServiceProviderRow).where(ServiceProviderRow.protocol == "cas",
                                                         ServiceProviderRow.client_id == service_id))
        catalogue.changed_in(self._s)
        self._s.execute(delete(_T).where(_T.c.service_id == service_id))
        self._s.execute(delete(CasSessionAttributesRow).where(CasSessionAttributesRow.service_id == service_id))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # --- tickets kept in the database ----------------------------------------------------------

    def purge(self, now: dt.datetime, session_lifetime: dt.timedelta) -> int:
        """Delete expired tickets and attributes older than any session (idempotent, concurrent-safe)."""
        self._s.execute(delete(CasSessionAttributesRow).where(CasSessionAttributesRow.created_at
                                                              <= now - session_lifetime))
        return int(self._s.execute(delete(_T).where(_T.c.expires_at <= now)).rowcount)  # type: ignore[attr-defined]
