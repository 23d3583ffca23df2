"""Engine and session factory: SQLite (a file in WAL mode) by default, PostgreSQL through psycopg 3."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from idp.errors import ConfigurationError
from idp.settings import Settings


def normalise_url(url: str, root: str = ".") -> str:
    """Pick the psycopg 3 driver for ``postgresql://`` and resolve relative SQLite paths against ``root``."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and ":memory:" not in url:
        relative = url[len("sqlite:///"):]
        path = Path(relative) if Path(relative).is_absolute() else Path(root) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (pysqlite's own transaction handling is not reliable).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # IMMEDIATE takes the write lock up front: a transaction that reads then writes can never fail with
    # SQLITE_BUSY_SNAPSHOT when another worker wrote in between (busy_timeout then simply waits).
    # An autocommit connection opens no transaction: pysqlite (isolation_level None) commits each statement.
    if not conn.get_execution_options().get(AUTOCOMMIT_OPTION):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


#: Execution option marking an autocommit connection (each statement its own transaction).
AUTOCOMMIT_OPTION = "idp_autocommit"


def make_engine(settings: Settings, *, wait_for_flush: bool = True, autocommit: bool = False) -> Engine:
    """Build the engine for the configured database URL.

    ``wait_for_flush=False`` (PostgreSQL): commits return before the WAL reaches the disk
    (``synchronous_commit=off``, one fsync saved per commit: ~3 ms here). A database crash may then lose the
    last fraction of a second of such commits, never half of one: only for short-lived login state.
    ``autocommit`` (PostgreSQL): every connection of the pool is in autocommit from its opening, so a checkout
    switches no isolation level and a return resets none (``autocommit_engine`` switches both ways: ~45 µs of
    CPU per unit of work, three units per password login).
    """
    url = normalise_url(settings.database.url, settings.root)
    try:
        backend = make_url(url).get_backend_name()
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises several types for bad URLs
        raise ConfigurationError(f"[database] url invalide : {exc}") from None
    if backend == "sqlite":
        engine = create_engine(url, echo=settings.database.echo, connect_args={"timeout": 5})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        return create_engine(
            url,
            echo=settings.database.echo,
            **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
            pool_size=settings.database.pool_size,
            max_overflow=settings.database.pool_size,
            pool_timeout=settings.database.pool_timeout_seconds,
            # No pre-ping (one round trip per checkout): a dropped connection raises, SQLAlchemy then
            # invalidates the whole pool, the request answers 503 and the next one reconnects.
            connect_args={"connect_timeout": settings.database.pool_timeout_seconds,
                          **({} if wait_for_flush else {"options": "-c synchronous_commit=off"})},
        )
    raise ConfigurationError(f"[database] url : base {backend!r} non prise en charge (sqlite ou postgresql)")


def autocommit_engine(engine: Engine) -> Engine:
    """The same pool, connections in autocommit: no BEGIN/COMMIT round trips around each statement.

    PostgreSQL: psycopg's autocommit (set client-side when a connection is checked out, reset on return; the
    application's own autocommit work has a pool of its own instead, ``make_engine(autocommit=True)``).
    SQLite: pysqlite already runs in driver autocommit here; the option only skips our ``BEGIN IMMEDIATE``.
    """
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT", **{AUTOCOMMIT_OPTION: True})
    return engine.execution_options(**{AUTOCOMMIT_OPTION: True})


class DisconnectWatch:
    """After this process saw the database drop a connection (a restart, a failover), check each pooled
    connection with ``SELECT 1`` before handing it out, for ``window`` seconds: the stale ones left in the pools
    are replaced there instead of failing a person's request one by one. The rest of the time a checkout costs
    no round trip (no ``pool_pre_ping``). The load balancer's health check (``/healthz`` every second) is usually
    the first to meet a dead connection, so people rarely do."""

    def __init__(self, window: float = 60.0) -> None:
        self.window = window
        self.until = 0.0

    def attach(self, engine: Engine) -> None:
        """Watch this engine's errors and checkouts (PostgreSQL)."""
        event.listen(engine, "handle_error", self._on_error)
        event.listen(engine, "checkout", self._on_checkout)

    def _on_error(self, context: Any) -> None:
        if context.is_disconnect:
            self.until = time.monotonic() + self.window

    def _on_checkout(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if time.monotonic() >= self.until:
            return
        try:
            autocommit = dbapi_connection.autocommit
            dbapi_connection.autocommit = True
            dbapi_connection.execute("SELECT 1")
            dbapi_connection.autocommit = autocommit
        except Exception as exc:  # noqa: BLE001 - any failure: the pool drops it and connects again
            raise DisconnectionError() from exc


#: How often each process reads its pools' checked-out connections into ``idp_db_connections_in_use``.
POOL_SAMPLE_SECONDS = 1.0
_watched: list[tuple[Any, Any]] = []  # (pool, gauge child) of this process
_sampler: dict[str, Any] = {"pid": 0}
_sampler_lock = threading.Lock()


def watch_pool(engine: Engine, name: str, size: int) -> None:
    """Show this pool's checked-out connections in ``idp_db_connections_in_use{pool=name}`` and its capacity (size
    + overflow) in ``idp_db_pool_capacity``.

    The count is read from the pool (``QueuePool.checkedout()``) every ``POOL_SAMPLE_SECONDS`` by one thread per
    process: counting each checkout and checkin wrote the shared-memory gauge twice per statement, 6 % of an OIDC
    flow's CPU under load (py-spy), for a figure read every 15 s."""
    from idp import metrics

    in_use = metrics.DB_CONNECTIONS_IN_USE.labels(pool=name)
    if engine.dialect.name == "postgresql":  # pool_size + max_overflow (= pool_size), see make_engine
        metrics.DB_POOL_CAPACITY.labels(pool=name).inc(2 * size)
    pool = engine.pool
    if not callable(getattr(pool, "checkedout", None)):
        return
    in_use.set(pool.checkedout())  # type: ignore[attr-defined]
    with _sampler_lock:
        _watched.append((pool, in_use))
        if _sampler["pid"] != os.getpid():
            _sampler["pid"] = os.getpid()
            threading.Thread(target=_sample_pools, name="idp-pool-sampler", daemon=True).start()


def _sample_pools() -> None:
    pid = os.getpid()
    while _sampler["pid"] == pid:
        time.sleep(POOL_SAMPLE_SECONDS)
        with _sampler_lock:
            watched = list(_watched)
        for pool, gauge in watched:
            gauge.set(pool.checkedout())


def _forget_pools_after_fork() -> None:
    """A forked child has no sampler thread and none of its parent's pools (it builds its own); the lock may have
    been held by the parent's sampler at the fork."""
    global _sampler_lock
    _sampler_lock = threading.Lock()
    _watched.clear()
    _sampler["pid"] = 0


os.register_at_fork(after_in_child=_forget_pools_after_fork)


class Database:
    """The engine and its session factories, built once per process by ``create_app``."""

    def __init__(self, settings: Settings) -> None:
        self.engine = make_engine(settings)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        # Short-lived login state (pending requests, SSO sessions and their timestamps, throttle counters,
        # the login's audit line): commits that do not wait for the disk, on their own small pool.
        self.login_state_engine = (make_engine(settings, wait_for_flush=False) if self.dialect == "postgresql"
                                   else self.engine)
        self.login_state_sessionmaker = sessionmaker(self.login_state_engine, expire_on_commit=False,
                                                     autoflush=False)
        # Reads and single-statement writes (one conditional UPDATE, one INSERT) need no transaction: on
        # PostgreSQL a pool of their own whose connections stay in autocommit, writes without waiting for the disk
        # like the login state's (SQLite: the one engine, without our BEGIN IMMEDIATE).
        self.autocommit_engine = (make_engine(settings, wait_for_flush=False, autocommit=True)
                                  if self.dialect == "postgresql" else autocommit_engine(self.engine))
        self.autocommit_sessionmaker = sessionmaker(self.autocommit_engine, expire_on_commit=False, autoflush=False)

        if self.dialect == "postgresql":
            self.disconnects = DisconnectWatch()
            for engine in (self.engine, self.login_state_engine, self.autocommit_engine):
                self.disconnects.attach(engine)
        watch_pool(self.engine, "durable", settings.database.pool_size)
        if self.login_state_engine is not self.engine:
            watch_pool(self.login_state_engine, "login_state", settings.database.pool_size)
            watch_pool(self.autocommit_engine, "autocommit", settings.database.pool_size)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction, committed by the caller, rolled back on error."""
        with self.sessionmaker() as session:
            try:
                yield session
            except BaseException:
                session.rollback()
                raise

    def ping(self) -> None:
        """Run ``SELECT 1``; raises when the database cannot be reached."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        """Close every pooled connection (after a fork, or at shutdown)."""
        for engine in {self.engine, self.login_state_engine, self.autocommit_engine,
                       getattr(self, "cas_engine", self.engine)}:
            engine.dispose()
