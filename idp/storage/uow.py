"""The SQL unit of work: one transaction, the repositories bound to it, database faults turned into 503s."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Self

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from idp.core.ports import ServiceEntry, ThrottleStore
from idp.errors import ServiceUnavailable
from idp.storage.accounts import SqlAccountRepository
from idp.storage.audit import SqlAuditLog
from idp.storage.db import Database
from idp.storage.models import ServiceProviderRow
from idp.storage.sessions import SqlAuthnRequestRepository, SqlSessionRepository
from idp.storage.throttle import SqlThrottleStore

log = logging.getLogger("idp.storage")

#: Errors meaning "the database is not answering", not "the request is wrong".
OUTAGE_ERRORS = (DBAPIError, PoolTimeout)


def is_outage(exc: BaseException) -> bool:
    """True for connection-level database failures (not constraint violations)."""
    if isinstance(exc, PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and (exc.connection_invalidated or exc.__class__.__name__ == "OperationalError")


_SP = ServiceProviderRow.__table__
_ENABLED_SERVICES = (select(_SP.c.protocol, _SP.c.client_id, _SP.c.name, _SP.c.home_url, _SP.c.description)
                     .where(_SP.c.enabled.is_(True)).order_by(_SP.c.name))


class SqlServiceCatalogue:
    """``ServiceCatalogue`` on SQLAlchemy."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def list_enabled(self) -> Sequence[ServiceEntry]:
        rows = self._s.execute(_ENABLED_SERVICES)
        return [ServiceEntry(protocol=r.protocol, client_id=r.client_id, name=r.name, url=r.home_url,
                             description=r.description) for r in rows]


class SqlUnitOfWork:
    """``UnitOfWork`` on one SQLAlchemy session (throttling counters in Redis when configured)."""

    def __init__(self, db: Database, redis_throttle: ThrottleStore | None = None,
                 maker: sessionmaker[Session] | None = None) -> None:
        self._db = db
        self._redis_throttle = redis_throttle
        self._maker = maker or db.sessionmaker

    def __enter__(self) -> Self:
        self.session = self._maker()
        self.accounts = SqlAccountRepository(self.session)
        self.sessions = SqlSessionRepository(self.session, self._db.dialect)
        self.authn_requests = SqlAuthnRequestRepository(self.session)
        self.throttle: ThrottleStore = self._redis_throttle or SqlThrottleStore(self.session, self._db.dialect)
        self.audit = SqlAuditLog(self.session)
        self.services = SqlServiceCatalogue(self.session)
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        try:
            self.session.rollback()
        except OUTAGE_ERRORS:
            pass
        finally:
            self.session.close()
        if exc is not None and is_outage(exc):
            log.error("database unavailable: %s", type(exc).__name__)
            raise ServiceUnavailable() from exc

    def commit(self) -> None:
        try:
            self.session.commit()
        except OUTAGE_ERRORS as exc:
            if is_outage(exc):
                raise ServiceUnavailable() from exc
            raise

    def rollback(self) -> None:
        self.session.rollback()


class SqlUnitOfWorkFactory:
    """Builds a fresh ``SqlUnitOfWork`` per use."""

    def __init__(self, db: Database, redis_throttle: ThrottleStore | None = None) -> None:
        self.db = db
        self.redis_throttle = redis_throttle

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.db, self.redis_throttle)

    def autocommit(self) -> SqlUnitOfWork:
        """A unit of work without a transaction: each statement commits alone (no BEGIN/ROLLBACK round trips).

        For reads and for work whose only write is ONE statement (an INSERT, or a conditional UPDATE whose
        row count decides): that statement is atomic by itself. Never for several writes that must hold
        together. ``commit()`` is then a no-op kept for the shape of the code. Writes are login state
        (see ``login_state``): they do not wait for the disk.
        """
        return SqlUnitOfWork(self.db, self.redis_throttle, self.db.autocommit_sessionmaker)

    def login_state(self) -> SqlUnitOfWork:
        """A transaction whose commit does not wait for the disk (PostgreSQL ``synchronous_commit=off``).

        Only for short-lived login state (opening or ending an SSO session, pending requests, throttle
        counters and the login's audit line): a database crash may lose the last fraction of a second of
        such commits (the person logs in again), never part of one. Account changes stay in ``__call__``.
        """
        return SqlUnitOfWork(self.db, self.redis_throttle, self.db.login_state_sessionmaker)
