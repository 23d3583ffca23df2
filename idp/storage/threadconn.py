"""Each thread's own pooled PostgreSQL connection in autocommit, held from one hot statement to the next.

The hot paths (``fastsql``'s autocommit units of work, ``rawsql``'s statements) send one or two statements
each. Checking a connection out of SQLAlchemy's pool, switching psycopg to autocommit and back, and checking
it in again cost about 0.05–0.1 ms of CPU per unit of work, as much as the statement itself. A worker thread
(gunicorn's gthread threads live as long as the worker) therefore keeps the connection it checked out, left
in autocommit, for its next unit of work.

The connection still belongs to the pool: it counts against ``pool_size``, and it goes back (autocommit
switched off, as the pool's other users expect) when its thread ends, when ``release_all`` runs
(``Database.dispose``), or when the process that holds it is no longer the one that checked it out (a
fork: the child never touches the parent's socket). A connection the driver found broken is invalidated and
so is every connection held before it (``broken`` starts a new generation), as SQLAlchemy invalidates its
pool on a disconnect: after a database restart each thread reconnects at its next statement instead of
failing once per thread.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import Any

import psycopg
from sqlalchemy import Engine

log = logging.getLogger("idp.storage")

IDLE = psycopg.pq.TransactionStatus.IDLE

#: This process's id, kept current across forks (``os.getpid()`` is a system call on every checkout otherwise).
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


#: Connections inherited through a fork: kept alive, untouched, so no finaliser closes the parent's socket.
_ORPHANS: list[Held] = []


class Held:
    """One checked-out pooled connection (``fairy``) and its psycopg connection (``driver``)."""

    __slots__ = ("__weakref__", "driver", "fairy", "generation", "pid")

    def __init__(self, fairy: Any, driver: psycopg.Connection[Any], generation: int) -> None:
        self.fairy: Any = fairy
        self.driver = driver
        self.generation = generation
        self.pid = _pid

    def release(self) -> None:
        """Give the connection back to the pool (idempotent); never in a forked child (not its socket)."""
        if self.pid != _pid:
            _ORPHANS.append(self)  # never collected here: nothing of it may run on the parent's socket
            return
        fairy, self.fairy = self.fairy, None
        if fairy is None:
            return
        try:
            if not self.driver.closed:
                if self.driver.info.transaction_status != IDLE:
                    self.driver.rollback()
                self.driver.autocommit = False
            fairy.close()
        except Exception as exc:  # noqa: BLE001 - a connection that cannot be reset is dropped, not reused
            log.debug("a held connection could not be reset: %s", exc)
            try:
                fairy.invalidate(exc)
            except Exception:  # noqa: BLE001
                log.debug("invalidating a held connection failed", exc_info=True)

    def __del__(self) -> None:  # the thread that held it has ended
        if self.pid == _pid:
            self.release()


class ThreadConnections:
    """The held connections of one engine: ``checkout`` gives the calling thread its own."""

    def __init__(self, pool: Any) -> None:
        self._pool = weakref.ref(pool)  # the registry is keyed by the pool: no strong reference back to it
        self._local = threading.local()
        self._generation = 0
        self._all: weakref.WeakSet[Held] = weakref.WeakSet()
        self._lock = threading.Lock()

    def checkout(self) -> Held:
        """This thread's connection, in autocommit and outside any transaction (checked out on first use).

        Raises what the pool or psycopg raise when no connection can be had."""
        held: Held | None = getattr(self._local, "held", None)
        if held is not None:
            if (held.fairy is not None and held.generation == self._generation and held.pid == _pid
                    and not held.driver.closed):
                return held
            self._local.held = None
            self._invalidate(held, None)  # older than a failure, dead, or another process's: never reused
        pool = self._pool()
        if pool is None:
            raise RuntimeError("the connection pool was disposed")
        fairy = pool.connect()
        driver: psycopg.Connection[Any] = fairy.driver_connection
        held = Held(fairy, driver, self._generation)
        try:
            if driver.info.transaction_status != IDLE:
                driver.rollback()  # never expected (the pool resets connections on return)
            driver.autocommit = True
        except psycopg.Error as exc:
            self._invalidate(held, exc)
            raise
        self._local.held = held
        with self._lock:
            self._all.add(held)
        return held

    def broken(self, held: Held, exc: BaseException | None) -> None:
        """The driver found this connection dead: drop it, and treat every other held one as stale."""
        with self._lock:
            self._generation += 1
        if getattr(self._local, "held", None) is held:
            self._local.held = None
        self._invalidate(held, exc)

    def release_all(self) -> None:
        """Give every held connection back (``Database.dispose``: at shutdown, after tests)."""
        with self._lock:
            everyone = list(self._all)
            self._all = weakref.WeakSet()
            self._generation += 1
        for held in everyone:
            held.release()

    @staticmethod
    def _invalidate(held: Held, exc: BaseException | None) -> None:
        if held.pid != _pid:
            _ORPHANS.append(held)
            return
        fairy, held.fairy = held.fairy, None
        if fairy is None:
            return
        try:
            fairy.invalidate(exc)
        except Exception:  # noqa: BLE001 - the connection is gone either way
            log.debug("invalidating a held connection failed", exc_info=True)


def check_threads_are_threads() -> None:
    """Refuse to start under a greenlet server (gevent, eventlet): there "thread-local" means one per
    greenlet, one per client connection, and every idle keep-alive client would hold a database connection
    until the pool ran dry. gunicorn's sync and gthread workers (threads that live as long as the worker) and
    the development server (a thread per request, its connection given back when it ends) are fine."""
    import sys

    from idp.errors import ConfigurationError

    for name in ("gevent.monkey", "eventlet.patcher"):
        module = sys.modules.get(name)
        check = getattr(module, "is_module_patched", None)
        if check is not None and check("threading"):
            raise ConfigurationError(
                f"{name.split('.')[0]} a remplacé les threads par des greenlets : ce serveur n'est pas pris en "
                "charge (une connexion PostgreSQL par client). Utilisez les workers gunicorn « gthread » ou « sync ».")


_REGISTRY: weakref.WeakKeyDictionary[Any, ThreadConnections] = weakref.WeakKeyDictionary()
_REGISTRY_LOCK = threading.Lock()


def for_engine(engine: Engine) -> ThreadConnections:
    """The held connections of ``engine``'s pool (one set per pool, shared by its ``execution_options`` copies)."""
    pool = engine.pool
    found = _REGISTRY.get(pool)
    if found is None:
        with _REGISTRY_LOCK:
            found = _REGISTRY.get(pool)
            if found is None:
                found = _REGISTRY[pool] = ThreadConnections(pool)
    return found


def release(engine: Engine) -> None:
    """Give back every connection held on ``engine``'s pool (before ``engine.dispose()``)."""
    found = _REGISTRY.get(engine.pool)
    if found is not None:
        found.release_all()
