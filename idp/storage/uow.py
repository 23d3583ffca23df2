"""The SQL unit of work: one transaction, the repositories bound to it, database faults turned into 503s."""

from __future__ import annotations

import logging
from typing import Any, Self

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from idp.core.ports import ThrottleStore
from idp.errors import ServiceUnavailable
from idp.storage.accounts import SqlAccountRepository
from idp.storage.audit import SqlAuditLog
from idp.storage.catalogue import CatalogueCache, SqlServiceCatalogue
from idp.storage.db import Database
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


class SqlUnitOfWork:
    """``UnitOfWork`` on one SQLAlchemy session (throttling counters in Redis when configured).

    The repositories are built when first used: most units of work touch two or three of them. An autocommit
    unit of work (``autocommit=True``) gives its repositories the pooled ``Connection`` itself: their Core
    statements then skip the ORM session (its transaction bookkeeping, ``Session.execute``'s dispatch: ~50 µs
    of CPU per unit and ~28 µs per statement); ``session`` (the stores that use the ORM) is built at first use,
    bound to that same connection.
    """

    def __init__(self, db: Database, redis_throttle: ThrottleStore | None = None,
                 maker: sessionmaker[Session] | None = None, catalogue: CatalogueCache | None = None, *,
                 autocommit: bool = False) -> None:
        self._db = db
        self._catalogue = catalogue
        self._redis_throttle = redis_throttle
        self._autocommit = autocommit
        self._maker = db.autocommit_sessionmaker if autocommit else maker or db.sessionmaker
        self._repos: dict[str, Any] = {}
        self._session: Session | None = None
        self._connection: Connection | None = None

    def __enter__(self) -> Self:
        return self

    @property
    def session(self) -> Session:
        """The ORM session of this unit of work (in autocommit, bound to its connection)."""
        if self._session is None:
            self._session = self._maker(bind=self._connect()) if self._autocommit else self._maker()
        return self._session

    def _connect(self) -> Connection:
        if self._connection is None:
            self._connection = self._db.autocommit_engine.connect()
        return self._connection

    @property
    def executor(self) -> Session | Connection:
        """What the repositories send their Core statements through: the pooled ``Connection`` in autocommit
        (no ORM session is built), else the ORM session and its transaction."""
        return self._connect() if self._autocommit else self.session

    @property
    def accounts(self) -> SqlAccountRepository:
        repo = self._repos.get("accounts")
        if repo is None:
            repo = self._repos["accounts"] = SqlAccountRepository(self.executor, self._db.dialect)
        return repo

    @property
    def sessions(self) -> SqlSessionRepository:
        repo = self._repos.get("sessions")
        if repo is None:
            repo = self._repos["sessions"] = SqlSessionRepository(self.executor, self._db.dialect)
        return repo

    @property
    def authn_requests(self) -> SqlAuthnRequestRepository:
        repo = self._repos.get("authn_requests")
        if repo is None:
            repo = self._repos["authn_requests"] = SqlAuthnRequestRepository(self.executor)
        return repo

    @property
    def throttle(self) -> ThrottleStore:
        if self._redis_throttle is not None:
            return self._redis_throttle
        repo = self._repos.get("throttle")
        if repo is None:
            repo = self._repos["throttle"] = SqlThrottleStore(self.executor, self._db.dialect)
        return repo

    @property
    def audit(self) -> SqlAuditLog:
        repo = self._repos.get("audit")
        if repo is None:
            repo = self._repos["audit"] = SqlAuditLog(self.executor)
        return repo

    @property
    def services(self) -> SqlServiceCatalogue:
        repo = self._repos.get("services")
        if repo is None:
            repo = self._repos["services"] = SqlServiceCatalogue(self.executor, self._catalogue)
        return repo

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        session, connection = self._session, self._connection
        try:
            if session is not None and not self._autocommit:  # (autocommit: nothing to roll back)
                session.rollback()
        except OUTAGE_ERRORS:
            pass
        finally:
            if session is not None:
                session.close()
            if connection is not None:
                connection.close()
            self._session = self._connection = None  # a later ``with`` starts afresh
            self._repos.clear()
        if exc is not None and is_outage(exc):
            log.error("database unavailable: %s", type(exc).__name__)
            raise ServiceUnavailable() from exc

    def commit(self) -> None:
        if self._session is None:  # nothing written (or, in autocommit, every statement already committed)
            return
        try:
            self._session.commit()
        except OUTAGE_ERRORS as exc:
            if is_outage(exc):
                raise ServiceUnavailable() from exc
            raise

    def rollback(self) -> None:
        if self._session is not None:
            self._session.rollback()


class SqlUnitOfWorkFactory:
    """Builds a fresh ``SqlUnitOfWork`` per use."""

    def __init__(self, db: Database, redis_throttle: ThrottleStore | None = None,
                 catalogue: CatalogueCache | None = None) -> None:
        self.db = db
        self.redis_throttle = redis_throttle
        self.catalogue = catalogue  # "Mes services" kept by the process (``idp.caches``)

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.db, self.redis_throttle, catalogue=self.catalogue)

    def autocommit(self) -> SqlUnitOfWork:
        """A unit of work without a transaction: each statement commits alone (no BEGIN/ROLLBACK round trips).

        For reads and for work whose only write is ONE statement (an INSERT, or a conditional UPDATE whose
        row count decides): that statement is atomic by itself. Never for several writes that must hold
        together. ``commit()`` is then a no-op kept for the shape of the code. Writes are login state
        (see ``login_state``): they do not wait for the disk.
        """
        return SqlUnitOfWork(self.db, self.redis_throttle, catalogue=self.catalogue, autocommit=True)

    def login_state(self, *, one_write: bool = False) -> SqlUnitOfWork:
        """A transaction whose commit does not wait for the disk (PostgreSQL ``synchronous_commit=off``).

        Only for short-lived login state (opening or ending an SSO session, pending requests, throttle
        counters and the login's audit line): a database crash may lose the last fraction of a second of
        such commits (the person logs in again), never part of one. Account changes stay in ``__call__``.

        ``one_write`` (the caller's only write is one ``add_at_login``, which is ONE statement on PostgreSQL:
        session, last login, request and audit line together): on PostgreSQL that statement runs in
        autocommit, as atomic as the transaction, without its BEGIN and COMMIT round trips. SQLite writes those
        four rows in four statements: it keeps the transaction.
        """
        if one_write and self.db.dialect == "postgresql":
            return SqlUnitOfWork(self.db, self.redis_throttle, catalogue=self.catalogue, autocommit=True)
        return SqlUnitOfWork(self.db, self.redis_throttle, self.db.login_state_sessionmaker, self.catalogue)
