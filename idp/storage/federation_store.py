"""SQL storage of the federation: pending states, links ``(issuer, sub)`` → account, the upstream ID token of
each federated SSO session (for its logout), and a name index of the register's representatives.

The name index holds, per representative, the comparison form of the family name (letters a-z only, see
``idp.core.federation.matching``), which SQL cannot compute portably. It is brought up to date lazily before
each lookup from ``representatives.updated_at`` (indexed), and in bulk by ``idp import`` after each import; a
row whose name changed is re-keyed, and the lookup re-checks names against the register row anyway.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint, and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from idp.core.activation.matching import name_key
from idp.core.activation.model import RepresentativeRecord
from idp.core.federation.ports import PendingState
from idp.storage.models import Base, RepresentativeRow, SchoolRow, UtcDateTime, table_of

Index("ix_representatives_updated_at", RepresentativeRow.updated_at)
SYNC_BATCH = 5000


class FederationStateRow(Base):
    """A ``state`` sent upstream (SHA-256 of it), single use."""

    __tablename__ = "federation_states"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(10))
    browser_hash: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(64), default="")
    request_id: Mapped[str] = mapped_column(String(64), default="")
    account_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    data: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class FederationLinkRow(Base):
    """An upstream identity linked to an account: the key is ``(issuer, sub)``, never a name or e-mail (F05)."""

    __tablename__ = "federation_links"
    __table_args__ = (UniqueConstraint("issuer", "sub", name="uq_federation_links_issuer_sub"),
                      UniqueConstraint("account_id", "issuer", name="uq_federation_links_account_issuer"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(200))
    sub: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[int] = mapped_column(Integer, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class FederationSessionRow(Base):
    """The upstream ID token of a federated SSO session, for ``id_token_hint`` at logout (F08)."""

    __tablename__ = "federation_sessions"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(200))
    id_token: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)


class FederationNameKeyRow(Base):
    """The comparison form of a representative's family name (no foreign key: purges delete freely)."""

    __tablename__ = "federation_name_keys"

    representative_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    family_key: Mapped[str] = mapped_column(String(100), index=True)
    source_updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)


class SqlFederationStore:
    """``FederationStore`` on SQLAlchemy, bound to one unit of work's session."""

    def __init__(self, session: Session) -> None:
        self._s = session

    # --- states -------------------------------------------------------------------------------------

    def add_state(self, state: PendingState) -> None:
        self._s.add(FederationStateRow(
            id=state.id, purpose=state.purpose, browser_hash=state.browser_hash, nonce=state.nonce,
            request_id=state.request_id, account_id=state.account_id, data=json.dumps(state.data),
            created_at=state.created_at, expires_at=state.expires_at))

    def take_state(self, state_id: str, at: dt.datetime) -> PendingState | None:
        """Mark the state used (a conditional update: one winner) and return it; None if unknown or used."""
        result = self._s.execute(update(FederationStateRow).where(
            FederationStateRow.id == state_id, FederationStateRow.used_at.is_(None)).values(used_at=at))
        if int(getattr(result, "rowcount", 0)) != 1:
            return None
        row = self._s.get(FederationStateRow, state_id)
        if row is None:
            return None
        return PendingState(id=row.id, purpose=row.purpose, browser_hash=row.browser_hash, nonce=row.nonce,
                            created_at=row.created_at, expires_at=row.expires_at, request_id=row.request_id,
                            account_id=row.account_id, data=json.loads(row.data))

    # --- links --------------------------------------------------------------------------------------

    def linked_account(self, issuer: str, sub: str) -> int | None:
        return self._s.scalar(select(FederationLinkRow.account_id).where(
            FederationLinkRow.issuer == issuer, FederationLinkRow.sub == sub))

    def is_linked(self, account_id: int, issuer: str) -> bool:
        return self._s.scalar(select(func.count()).select_from(FederationLinkRow).where(
            FederationLinkRow.account_id == account_id, FederationLinkRow.issuer == issuer)) != 0

    def link(self, issuer: str, sub: str, account_id: int, at: dt.datetime) -> bool:
        """Insert the link; False when the identity or the account is already linked (unique constraints)."""
        if not issuer or not sub:
            return False
        try:
            with self._s.begin_nested():
                self._s.add(FederationLinkRow(issuer=issuer, sub=sub, account_id=account_id, created_at=at))
                self._s.flush()
        except IntegrityError:
            return False
        return True

    def unlink(self, account_id: int, issuer: str) -> int:
        result = self._s.execute(delete(FederationLinkRow).where(
            FederationLinkRow.account_id == account_id, FederationLinkRow.issuer == issuer))
        return int(getattr(result, "rowcount", 0))

    # --- ID tokens of federated sessions ------------------------------------------------------------

    def keep_id_token(self, session_id: str, issuer: str, id_token: str, at: dt.datetime) -> None:
        if id_token:
            self._s.add(FederationSessionRow(session_id=session_id, issuer=issuer, id_token=id_token, created_at=at))

    def take_id_token(self, session_id: str) -> str | None:
        row = self._s.get(FederationSessionRow, session_id)
        if row is None:
            return None
        token = row.id_token
        self._s.delete(row)
        return token

    def purge(self, now: dt.datetime, sessions_before: dt.datetime) -> int:
        """Expired states, and the ID tokens of sessions that ended or are older than any session lives."""
        states = self._s.execute(delete(FederationStateRow).where(FederationStateRow.expires_at < now))
        return int(getattr(states, "rowcount", 0)) + self.purge_id_tokens(sessions_before)

    def purge_id_tokens(self, before: dt.datetime) -> int:
        """ID tokens of sessions older than any session can live (``idp purge``)."""
        result = self._s.execute(delete(FederationSessionRow).where(FederationSessionRow.created_at < before))
        return int(getattr(result, "rowcount", 0))

    # --- the register, by name ----------------------------------------------------------------------

    def representatives_named(self, family_keys: Sequence[str]) -> Sequence[RepresentativeRecord]:
        """Present representatives whose family name has one of these comparison forms."""
        if not family_keys:
            return []
        self._sync_name_keys()
        rows = self._s.execute(
            select(RepresentativeRow, SchoolRow.name)
            .join(FederationNameKeyRow, FederationNameKeyRow.representative_id == RepresentativeRow.id)
            .join(SchoolRow, SchoolRow.uai == RepresentativeRow.uai)
            .where(FederationNameKeyRow.family_key.in_(list(family_keys)), RepresentativeRow.status == "present"))
        return [RepresentativeRecord(id=r.id, uai=r.uai, external_id=r.external_id, family_name=r.family_name,
                                     given_names=r.given_names, mobile_phone=r.mobile_phone, email=r.email,
                                     account_id=r.account_id, school=name)
                for r, name in rows if name_key(r.family_name) in family_keys]

    def sync_name_keys(self) -> int:
        """Key every representative written since the last sync, in bulk (``idp import`` calls it after an
        import, so that the first FranceConnect login after a large import does not pay for it).

        One DELETE of the stale keys, then the new keys streamed in and inserted ``SYNC_BATCH`` at a time with
        Core statements (no ORM objects), each distinct family name normalised once. Returns the rows keyed."""
        since: dt.datetime | None = self._s.scalar(select(func.max(FederationNameKeyRow.source_updated_at)))
        changed = select(RepresentativeRow.id)
        if since is not None:
            changed = changed.where(RepresentativeRow.updated_at > since)
        keys = table_of(FederationNameKeyRow)
        self._s.execute(delete(keys).where(keys.c.representative_id.in_(changed)))
        query = select(RepresentativeRow.id, RepresentativeRow.family_name, RepresentativeRow.updated_at)
        if since is not None:
            query = query.where(RepresentativeRow.updated_at > since)
        memo: dict[str, str] = {}
        batch: list[dict[str, object]] = []
        keyed = 0
        for rep_id, family_name, updated_at in self._s.execute(query.execution_options(yield_per=SYNC_BATCH)):
            key = memo.get(family_name)
            if key is None:
                key = memo[family_name] = name_key(family_name)[:100]
            batch.append({"representative_id": rep_id, "family_key": key, "source_updated_at": updated_at})
            if len(batch) >= SYNC_BATCH:
                self._s.execute(keys.insert(), batch)
                keyed += len(batch)
                batch = []
        if batch:
            self._s.execute(keys.insert(), batch)
            keyed += len(batch)
        return keyed

    def _sync_name_keys(self) -> None:
        """Key the representatives written since the last sync, in batches (keyset on ``updated_at, id``).

        A savepoint per batch: when a concurrent sync wins a row, this one stops; the lookup then uses what
        is keyed, and re-checks every name it returns."""
        since: dt.datetime | None = self._s.scalar(select(func.max(FederationNameKeyRow.source_updated_at)))
        after_id: int | None = None
        while True:
            query = select(RepresentativeRow.id, RepresentativeRow.family_name, RepresentativeRow.updated_at)
            if since is not None and after_id is None:
                query = query.where(RepresentativeRow.updated_at > since)
            elif since is not None:
                query = query.where(or_(RepresentativeRow.updated_at > since,
                                        and_(RepresentativeRow.updated_at == since, RepresentativeRow.id > after_id)))
            rows = self._s.execute(query.order_by(RepresentativeRow.updated_at, RepresentativeRow.id)
                                   .limit(SYNC_BATCH)).all()
            if not rows:
                return
            try:
                with self._s.begin_nested():
                    ids = [r[0] for r in rows]
                    self._s.execute(delete(FederationNameKeyRow).where(FederationNameKeyRow.representative_id.in_(ids)))
                    self._s.add_all([FederationNameKeyRow(representative_id=i, family_key=name_key(n)[:100],
                                                          source_updated_at=u) for i, n, u in rows])
                    self._s.flush()
            except IntegrityError:
                return
            if len(rows) < SYNC_BATCH:
                return
            since, after_id = rows[-1][2], rows[-1][0]
