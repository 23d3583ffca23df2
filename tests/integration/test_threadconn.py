"""Each thread's held PostgreSQL connection (``idp.storage.threadconn``) for the hot autocommit statements."""

from __future__ import annotations

import os
import threading
from typing import Any

import psycopg
import pytest

from idp.errors import ServiceUnavailable
from idp.storage import threadconn
from idp.storage.db import Database
from idp.wiring import Services


def _postgresql(services: Services) -> None:
    if services.db.dialect != "postgresql":
        pytest.skip("held connections are PostgreSQL's")


def _backend_pid(services: Services) -> int:
    with services.uow.autocommit() as uow:
        uow.sessions.get("no-such-session")
        return uow._driver.info.backend_pid  # noqa: SLF001 - which connection the unit of work used


def _terminate(db: Database, pid: int) -> None:
    url = db.engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _in_thread(work: Any) -> Any:
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(work()))
    thread.start()
    thread.join()
    return box[0]


def test_a_thread_keeps_its_connection_and_other_threads_have_their_own(services: Services) -> None:
    _postgresql(services)
    first = _backend_pid(services)
    assert _backend_pid(services) == first == _backend_pid(services)
    assert _in_thread(lambda: _backend_pid(services)) != first
    held = threadconn.for_engine(services.db.login_state_engine).checkout()
    assert held.driver.info.backend_pid == first and held.driver.autocommit
    assert held.driver.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_connections_go_back_to_the_pool_reset_when_their_thread_ends(services: Services) -> None:
    _postgresql(services)
    engine = services.db.login_state_engine
    before = engine.pool.checkedout()
    pid = _in_thread(lambda: _backend_pid(services))
    import gc

    gc.collect()
    assert engine.pool.checkedout() == before
    # The same backend comes out of the pool again, no longer in autocommit, for an ordinary transaction.
    with services.db.login_state_sessionmaker() as session:
        pids = set()
        for _ in range(engine.pool.checkedin()):
            connection = session.connection().connection.driver_connection
            assert connection.autocommit is False
            pids.add(connection.info.backend_pid)
            session.close()
    assert pid in pids


def test_release_all_gives_every_held_connection_back(services: Services) -> None:
    _postgresql(services)
    engine = services.db.login_state_engine
    before = engine.pool.checkedout()
    started, finish = threading.Barrier(3), threading.Event()

    def hold() -> None:
        _backend_pid(services)
        started.wait()
        finish.wait(10)

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for thread in threads:
        thread.start()
    started.wait()
    assert engine.pool.checkedout() == before + 2
    threadconn.release(engine)
    assert engine.pool.checkedout() == 0  # this thread's too
    finish.set()
    for thread in threads:
        thread.join()
    assert _backend_pid(services)  # this thread checks a connection out again after a release


def test_a_dead_held_connection_is_a_503_once_then_every_thread_reconnects(services: Services) -> None:
    _postgresql(services)
    mine = _backend_pid(services)
    ready, go, done = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, int] = {}

    def other() -> None:  # a second worker thread, holding its own connection across the outage
        seen["before"] = _backend_pid(services)
        ready.set()
        go.wait(10)
        seen["after"] = _backend_pid(services)
        done.set()

    thread = threading.Thread(target=other)
    thread.start()
    ready.wait(10)
    _terminate(services.db, mine)
    _terminate(services.db, seen["before"])
    with pytest.raises(ServiceUnavailable), services.uow.autocommit() as uow:
        uow.sessions.get("no-such-session")
    assert _backend_pid(services) != mine  # reconnected at the next unit of work
    go.set()
    done.wait(10)
    thread.join()
    # The other thread's connection was older than the failure: replaced before use, no second 503.
    assert seen["after"] != seen["before"]


def test_a_forked_child_never_uses_its_parents_connection(services: Services) -> None:
    _postgresql(services)
    pid = _backend_pid(services)
    held = threadconn.for_engine(services.db.login_state_engine).checkout()
    held.pid = -1  # what a child process sees: a connection checked out by another process
    assert _backend_pid(services) != pid
    held.release()  # not ours: nothing is sent on the parent's socket, nothing goes back to this pool
    assert held.fairy is not None and not held.driver.closed and held in threadconn._ORPHANS
    threadconn._ORPHANS.remove(held)
    held.pid = os.getpid()  # (the test's own process after all: give it back)
    held.release()


def test_raw_statements_use_the_held_connection_and_survive_an_outage(services: Services) -> None:
    _postgresql(services)
    from sqlalchemy import literal_column, select

    from idp.storage.rawsql import RawStatement

    statement = RawStatement(services.db.engine, select(literal_column("pg_backend_pid()").label("pid")))
    first = statement.first({})
    assert first is not None and statement.first({}) == first
    _terminate(services.db, first["pid"])
    with pytest.raises(ServiceUnavailable):
        statement.first({})
    again = statement.first({})
    assert again is not None and again["pid"] != first["pid"]


@pytest.mark.parametrize("name", ["gevent.monkey", "eventlet.patcher"])
def test_a_greenlet_server_is_refused_at_start_up(services: Services, monkeypatch: pytest.MonkeyPatch,
                                                   name: str) -> None:
    """Under gevent or eventlet, thread-locals are per greenlet (per client): holding would drain the pool."""
    import sys
    import types

    from idp.errors import ConfigurationError

    _postgresql(services)
    patched = types.ModuleType(name)
    patched.is_module_patched = lambda module: module == "threading"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, name, patched)
    with pytest.raises(ConfigurationError, match="gthread"):
        Database(services.settings)
