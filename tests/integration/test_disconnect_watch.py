"""After the database dropped connections (a restart), the first failure teaches the process: the other pools'
stale connections are checked and replaced at checkout instead of failing the next requests (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from idp.settings import Settings
from idp.storage.db import Database


def _backend_pid(engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


@pytest.fixture
def own_db(db: Database, base_settings: Settings) -> Iterator[Database]:
    """Pools of their own (one connection each here), so the shared ones never see the terminated backends."""
    if db.dialect != "postgresql":
        pytest.skip("PostgreSQL's pools")
    fresh = Database(base_settings)
    yield fresh
    fresh.dispose()


def test_stale_connections_of_the_other_pool_are_replaced_after_a_disconnect(own_db: Database) -> None:
    db = own_db
    durable, login_state = _backend_pid(db.engine), _backend_pid(db.login_state_engine)
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as admin:  # outside the pools: ends the two pooled connections
        admin.execute("SELECT pg_terminate_backend(%s), pg_terminate_backend(%s)", (durable, login_state))
    with pytest.raises(OperationalError), db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))  # the first statement meets a dead connection: now the process knows
    assert db.disconnects.until > 0
    with db.login_state_engine.connect() as conn:  # its dead connection is replaced at checkout, not failed
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
    assert _backend_pid(db.login_state_engine) != login_state
