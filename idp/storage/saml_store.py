"""SQL storage of the SAML front-end: registered service providers, the replay cache, persistent NameIDs,
requests handed from a cross-site POST to a same-site GET, and single-logout chains.

Every piece of state lives in the database so that any worker can carry on what another one started
(SECURITY R07, S14).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, String, Text, bindparam, delete, false, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from idp.storage import catalogue
from idp.storage.models import Base, ServiceProviderRow, SsoSessionRow, UtcDateTime, table_of


class SamlServiceProviderRow(Base):
    """A SAML service provider: its metadata as registered, and its release policy."""

    __tablename__ = "saml_service_providers"

    entity_id: Mapped[str] = mapped_column(String(400), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    metadata_xml: Mapped[str] = mapped_column(Text)
    metadata_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(600), default="")  # file path, URL, or "" (CLI)
    refresh_url: Mapped[str] = mapped_column(String(600), default="")
    refresh_cert: Mapped[str] = mapped_column(Text, default="")
    valid_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    attributes: Mapped[str] = mapped_column(Text, default="")  # comma-separated canonical names
    nameid_format: Mapped[str] = mapped_column(String(20), default="persistent")
    clear_ine: Mapped[bool] = mapped_column(Boolean, default=False)
    compat_oid: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_idp_initiated: Mapped[bool] = mapped_column(Boolean, default=False)
    sign_response: Mapped[bool] = mapped_column(Boolean, default=False)
    encrypt_assertion: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Never send this SP a clear assertion (SECURITY S24): registration needs an encryption key in its metadata.
    require_encryption: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: The operator's exception for a legacy SP that cannot sign its AuthnRequests (signed ones are required
    #: by default; ``idp.saml.checks.signature_required``).
    allow_unsigned_requests: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    refreshed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class SamlReplayRow(Base):
    """A consumed message ID (keyed by a hash of issuer and ID) until its freshness window has passed."""

    __tablename__ = "saml_replay_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)


class SamlNameIdRow(Base):
    """A persistent NameID once issued to a service provider (for ``AllowCreate="false"``)."""

    __tablename__ = "saml_persistent_ids"

    entity_id: Mapped[str] = mapped_column(String(400), primary_key=True)
    name_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class SamlPendingRow(Base):
    """A checked AuthnRequest handed from a cross-site POST to a same-site GET (SECURITY S28); single use."""

    __tablename__ = "saml_pending_requests"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    payload: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)


class SamlLogoutRow(Base):
    """A single-logout redirect chain in progress: who asked, who is left to tell, what they answered."""

    __tablename__ = "saml_logout_chains"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)


@dataclass(frozen=True)
class SpRow:
    """A registered SAML service provider as the front-end reads it."""

    entity_id: str
    name: str
    metadata_xml: str
    metadata_hash: str
    source: str
    refresh_url: str
    refresh_cert: str
    valid_until: dt.datetime | None
    attributes: tuple[str, ...]
    nameid_format: str
    clear_ine: bool
    compat_oid: bool
    allow_idp_initiated: bool
    sign_response: bool
    encrypt_assertion: bool
    updated_at: dt.datetime
    refreshed_at: dt.datetime | None = None
    require_encryption: bool = False
    allow_unsigned_requests: bool = False


#: ``SqlSamlStore.consume_once``: the insert that wins only when the key is new or its entry has expired.
CONSUME_ONCE = text(
    "INSERT INTO saml_replay_cache (key, expires_at) VALUES (:key, :expires_at) "
    "ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at "
    "WHERE saml_replay_cache.expires_at <= :now RETURNING key"
).bindparams(bindparam("expires_at", type_=UtcDateTime()), bindparam("now", type_=UtcDateTime()))



#: ``SqlSamlStore.take_pending``: whoever deletes the row owns the request.
TAKE_PENDING = text("DELETE FROM saml_pending_requests WHERE id = :id RETURNING payload, expires_at").columns(
    payload=Text(), expires_at=UtcDateTime())

POLICY_FIELDS = ("name", "attributes", "nameid_format", "clear_ine", "compat_oid", "allow_idp_initiated",
                 "sign_response", "encrypt_assertion", "require_encryption", "refresh_url", "refresh_cert",
                 "allow_unsigned_requests")


_NAME_IDS = table_of(SamlNameIdRow)


def _insert(session: Session) -> Any:
    """The dialect's ``insert`` (with ``on_conflict_do_…``): PostgreSQL or SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


def _to_sp(row: SamlServiceProviderRow) -> SpRow:
    return SpRow(
        entity_id=row.entity_id, name=row.name, metadata_xml=row.metadata_xml, metadata_hash=row.metadata_hash,
        source=row.source, refresh_url=row.refresh_url, refresh_cert=row.refresh_cert, valid_until=row.valid_until,
        attributes=tuple(a for a in row.attributes.split(",") if a), nameid_format=row.nameid_format,
        clear_ine=row.clear_ine, compat_oid=row.compat_oid, allow_idp_initiated=row.allow_idp_initiated,
        sign_response=row.sign_response, encrypt_assertion=row.encrypt_assertion, updated_at=row.updated_at,
        refreshed_at=row.refreshed_at, require_encryption=bool(row.require_encryption),
        allow_unsigned_requests=bool(row.allow_unsigned_requests),
    )


class SqlSamlStore:
    """The SAML front-end's repository on one SQLAlchemy session (commit through the unit of work)."""

    def __init__(self, session: Session | Callable[[], Session]) -> None:
        """``session``, or a function building it on first use."""
        self._session = session if isinstance(session, Session) else None
        self._factory = None if isinstance(session, Session) else session

    @property
    def _s(self) -> Session:
        if self._session is None:
            assert self._factory is not None
            self._session = self._factory()
        return self._session

    # --- service providers -----------------------------------------------------------------------

    def get_sp(self, entity_id: str) -> SpRow | None:
        """The service provider registered under ``entity_id``."""
        if len(entity_id) > 400:
            return None
        row = self._s.get(SamlServiceProviderRow, entity_id)
        return _to_sp(row) if row else None

    def list_sps(self) -> Sequence[SpRow]:
        """Every registered SAML service provider, by entity id."""
        rows = self._s.scalars(select(SamlServiceProviderRow).order_by(SamlServiceProviderRow.entity_id))
        return [_to_sp(r) for r in rows]

    def save_sp(self, entity_id: str, metadata_xml: str, metadata_hash: str, valid_until: dt.datetime | None,
                source: str, at: dt.datetime, *, home_url: str | None = None, **policy: Any) -> bool:
        """Insert or update a service provider and its "Mes services" entry; True when it was new."""
        unknown = set(policy) - set(POLICY_FIELDS)
        if unknown:
            raise ValueError(f"unknown policy fields {sorted(unknown)}")
        if "attributes" in policy and not isinstance(policy["attributes"], str):
            policy["attributes"] = ",".join(policy["attributes"])
        row = self._s.get(SamlServiceProviderRow, entity_id)
        created = row is None
        if row is None:
            row = SamlServiceProviderRow(entity_id=entity_id, name=policy.get("name") or entity_id, created_at=at,
                                         metadata_xml="", metadata_hash="")
            self._s.add(row)
        row.metadata_xml, row.metadata_hash, row.valid_until = metadata_xml, metadata_hash, valid_until
        row.source, row.updated_at, row.refreshed_at = source or row.source or "", at, at
        for key, value in policy.items():
            if value is not None:
                setattr(row, key, value)
        self._sync_catalogue(row, home_url, at)
        return created

    def set_policy(self, entity_id: str, at: dt.datetime, *, home_url: str | None = None, **policy: Any) -> bool:
        """Change the release policy (or name) of a registered service provider; False if unknown."""
        row = self._s.get(SamlServiceProviderRow, entity_id)
        if row is None:
            return False
        if "attributes" in policy and policy["attributes"] is not None and not isinstance(policy["attributes"], str):
            policy["attributes"] = ",".join(policy["attributes"])
        for key, value in policy.items():
            if key not in POLICY_FIELDS:
                raise ValueError(f"unknown policy field {key}")
            if value is not None:
                setattr(row, key, value)
        row.updated_at = at
        self._sync_catalogue(row, home_url, at)
        return True

    def _sync_catalogue(self, row: SamlServiceProviderRow, home_url: str | None, at: dt.datetime) -> None:
        entry = self._s.scalars(select(ServiceProviderRow).where(ServiceProviderRow.protocol == "saml",
                                                                 ServiceProviderRow.client_id == row.entity_id)).first()
        if entry is None:
            entry = ServiceProviderRow(protocol="saml", client_id=row.entity_id, name=row.name, created_at=at,
                                       home_url=home_url or "", description="", enabled=True)
            self._s.add(entry)
        entry.name = row.name
        if home_url is not None:
            entry.home_url = home_url
        catalogue.changed_in(self._s)

    def remove_sp(self, entity_id: str) -> bool:
        """Forget a service provider (and its "Mes services" entry)."""
        result = self._s.execute(delete(SamlServiceProviderRow).where(SamlServiceProviderRow.entity_id == entity_id))
        self._s.execute(delete(ServiceProviderRow).where(ServiceProviderRow.protocol == "saml",
                                                         ServiceProviderRow.client_id == entity_id))
        catalogue.changed_in(self._s)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # --- replay cache ----------------------------------------------------------------------------

    def consume_once(self, key: str, expires_at: dt.datetime, now: dt.datetime) -> bool:
        """Record ``key``; False when it is already there and not expired (a replay).

        One statement, ``INSERT … ON CONFLICT … RETURNING`` (PostgreSQL, SQLite ≥ 3.35): an expired entry is taken over,
        a live one is left alone; with concurrent callers exactly one sees a row written (SECURITY R04). Written as
        text once (the same SQL on both databases): building and caching the Core construct cost twice as much.
        """
        params = {"key": key, "expires_at": expires_at, "now": now}
        return self._s.execute(CONSUME_ONCE, params).first() is not None

    def purge(self, now: dt.datetime) -> int:
        """Delete expired replay entries, pending requests and logout chains."""
        count = 0
        for model in (SamlReplayRow, SamlPendingRow, SamlLogoutRow):
            result = self._s.execute(delete(model).where(model.expires_at <= now))
            count += int(result.rowcount)  # type: ignore[attr-defined]
        return count

    # --- persistent NameIDs ----------------------------------------------------------------------

    def persistent_id_known(self, entity_id: str, name_id: str) -> bool:
        """Whether this persistent NameID was already issued to this service provider."""
        return self._s.get(SamlNameIdRow, (entity_id, name_id)) is not None

    def remember_persistent_id(self, entity_id: str, name_id: str, at: dt.datetime) -> None:
        """Record a persistent NameID as issued (idempotent, one statement)."""
        statement = _insert(self._s)(_NAME_IDS).values(entity_id=entity_id, name_id=name_id,
                                                                      created_at=at)
        self._s.execute(statement.on_conflict_do_nothing())

    # --- pending requests (POST -> GET) ----------------------------------------------------------

    def add_pending(self, handle: str, payload: dict[str, Any], expires_at: dt.datetime) -> None:
        """Keep a checked request for the same-site GET that follows."""
        self._s.add(SamlPendingRow(id=handle, payload=json.dumps(payload), expires_at=expires_at))

    def take_pending(self, handle: str, now: dt.datetime) -> dict[str, Any] | None:
        """Return and delete a pending request (single use, one statement); None if unknown or expired."""
        if len(handle) > 64:
            return None
        row = self._s.execute(TAKE_PENDING, {"id": handle}).first()
        if row is None or row.expires_at <= now:
            return None
        return json.loads(row.payload)  # type: ignore[no-any-return]

    def session_id_by_public_id(self, public_id: str) -> str | None:
        """The internal id of the SSO session with this public id (SAML SessionIndex carries the latter)."""
        if len(public_id) > 32:
            return None
        return self._s.scalars(select(SsoSessionRow.id).where(SsoSessionRow.public_id == public_id)).first()

    # --- logout chains ---------------------------------------------------------------------------

    def add_logout(self, chain_id: str, state: dict[str, Any], expires_at: dt.datetime) -> None:
        """Start a single-logout chain."""
        self._s.add(SamlLogoutRow(id=chain_id, state=json.dumps(state), expires_at=expires_at))

    def get_logout(self, chain_id: str, now: dt.datetime) -> dict[str, Any] | None:
        """A logout chain in progress, locked for update (one step at a time)."""
        if len(chain_id) > 64:
            return None
        row = self._s.scalars(select(SamlLogoutRow).where(SamlLogoutRow.id == chain_id).with_for_update()).first()
        if row is None or row.expires_at <= now:
            return None
        return json.loads(row.state)  # type: ignore[no-any-return]

    def save_logout(self, chain_id: str, state: dict[str, Any]) -> None:
        """Store the next step of a logout chain."""
        self._s.execute(update(SamlLogoutRow).where(SamlLogoutRow.id == chain_id).values(state=json.dumps(state)))

    def end_logout(self, chain_id: str) -> None:
        """Forget a finished logout chain."""
        self._s.execute(delete(SamlLogoutRow).where(SamlLogoutRow.id == chain_id))
