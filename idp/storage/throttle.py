"""Throttle counters in SQL: one atomic upsert per failure, shared by every worker."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from idp.core.ports import ThrottleCounter
from idp.storage.models import ThrottleRow


def _to_counter(row: ThrottleRow) -> ThrottleCounter:
    return ThrottleCounter(key=row.key, failures=row.failures, window_started_at=row.window_started_at,
                           locked_until=row.locked_until)


class SqlThrottleStore:
    """``ThrottleStore`` on SQLAlchemy (PostgreSQL or SQLite upsert)."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert

    def get_many(self, keys: Iterable[str]) -> dict[str, ThrottleCounter]:
        rows = self._s.scalars(select(ThrottleRow).where(ThrottleRow.key.in_(list(keys))))
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
        self._s.execute(update(ThrottleRow).where(ThrottleRow.key == key).values(locked_until=until))

    def reset(self, key: str) -> None:
        self._s.execute(delete(ThrottleRow).where(ThrottleRow.key == key))
