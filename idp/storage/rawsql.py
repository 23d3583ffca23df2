"""Hot statements run on the PostgreSQL driver itself, in autocommit: one round trip, no SQLAlchemy execution.

A statement is compiled once by SQLAlchemy (so it stays written with the models' tables and columns) and then
sent by psycopg on the calling thread's held pooled connection, in autocommit (``idp.storage.threadconn``).
Per execution this skips SQLAlchemy's cache-key computation, bind and result processing (about a quarter of a
millisecond of CPU) and the pool's checkout and checkin; what the type decorators did is done here: aware UTC
datetimes in, aware UTC datetimes out (``UtcDateTime`` stores naive UTC). Driver-level connection failures
become ``ServiceUnavailable`` (503).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import psycopg
from sqlalchemy import Engine

from idp.errors import ServiceUnavailable
from idp.storage import threadconn
from idp.storage.uow import OUTAGE_ERRORS, is_outage


def _bind(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _result(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.replace(tzinfo=dt.UTC) if isinstance(v, dt.datetime) else v for k, v in row.items()}


class RawStatement:
    """A SQLAlchemy statement compiled once for this engine's dialect (PostgreSQL, psycopg 3)."""

    #: Statements sent, for the in-process benchmark's round-trip count.
    executed = 0

    def __init__(self, engine: Engine, statement: Any) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        self.sql = str(compiled)
        self.literals = {k: v for k, v in compiled.params.items() if v is not None}
        self.engine = engine
        self.names: tuple[str, ...] = ()

    def first(self, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """Run in autocommit and return the first row (a dict, datetimes aware UTC) or None."""
        values = {**self.literals, **{k: _bind(v) for k, v in params.items()}}
        connections = threadconn.for_engine(self.engine)
        try:
            held = connections.checkout()
        except psycopg.OperationalError as exc:  # the pool hands the driver's connection error through as is
            raise ServiceUnavailable() from exc
        except OUTAGE_ERRORS as exc:
            if is_outage(exc):
                raise ServiceUnavailable() from exc
            raise
        conn = held.driver
        try:
            with conn.cursor() as cursor:
                cursor.execute(self.sql, values)
                RawStatement.executed += 1
                found = cursor.fetchone()  # every statement sent this way returns rows (SELECT / RETURNING)
                # Column names read once: the cursor's description builds one object per column each time.
                if found is not None and len(self.names) != len(found):
                    self.names = tuple(column.name for column in cursor.description or ())
                row = dict(zip(self.names, found, strict=True)) if found is not None else None
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            connections.broken(held, exc)
            raise ServiceUnavailable() from exc
        except psycopg.Error:
            if conn.closed or conn.broken:
                connections.broken(held, None)
            raise
        return _result(row) if row is not None else None
