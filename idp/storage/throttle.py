"""Throttle counters in SQL: one atomic upsert per failure, shared by every worker."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, case, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from idp.core.ports import ThrottleCounter
from idp.storage.models import ThrottleRow

_T = ThrottleRow.__table__
_GET_MANY = select(_T).where(_T.c.key.in_(bindparam("keys", expanding=True)))
_SET_LOCK = update(_T).where(_T.c.key == bindparam("k")).values(locked_until=bindparam("until"))
_RESET = delete(_T).where(_T.c.key == bindparam("k"))


def _to_counter(row: Row[Any]) -> ThrottleCounter:
    return ThrottleCounter(key=row.key, failures=row.failures, window_started_at=row.window_started_at,
                           locked_until=row.locked_until)


class SqlThrottleStore:
    """``ThrottleStore`` on SQLAlchemy (PostgreSQL or SQLite upsert)."""

    def __init__(self, session: Session, dialect: str) -> None:
        self._s = session
        self._insert = pg_insert if dialect == "postgresql" else sqlite_insert

    def get_many(self, keys: Iterable[str]) -> dict[str, ThrottleCounter]:
        rows = self._s.execute(_GET_MANY, {"keys": list(keys)})
        return {row.key: _to_counter(row) for row in rows}

    def record_failure(self, key: str, now: dt.datetime, window: dt.timedelta) -> ThrottleCounter:
        """Add one failure, starting a new window when the previous one is over."""
        table = ThrottleRow.__table__
        stale = table.c.window_started_at < (now - window)
        insert = self._insert(table).values(  # type: ignore[arg-type]
            key=key, failures=1, window_started_at=now, updated_at=now)
        stmt = insert.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "failures": case((stale, 1), else_=table.c.failures + 1),
                "window_started_at": case((stale, insert.excluded.window_started_at),
                                          else_=table.c.window_started_at),
                "updated_at": insert.excluded.updated_at,
            },
        ).returning(table.c.key, table.c.failures, table.c.window_started_at, table.c.locked_until)
        row = self._s.execute(stmt).one()
        return ThrottleCounter(key=row.key, failures=row.failures, window_started_at=row.window_started_at,
                               locked_until=row.locked_until)

    def set_lock(self, key: str, until: dt.datetime) -> None:
        self._s.execute(_SET_LOCK, {"k": key, "until": until})

    def reset(self, key: str) -> None:
        self._s.execute(_RESET, {"k": key})
