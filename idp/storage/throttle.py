"""Throttle counters in SQL: one atomic upsert per failure, shared by every worker."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import any_, bindparam, case, delete, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from idp.core.ports import ThrottleCounter
from idp.storage.models import Executor, ThrottleRow, table_of
from idp.storage.pgexec import PgStatement

_T = table_of(ThrottleRow)
# Every password login reads its three counters. PostgreSQL: ``key = ANY(%(keys)s)``, one array parameter (the SQL
# text does not depend on the number of keys), run on psycopg directly (``idp.storage.pgexec``); SQLite has no
# arrays: an expanding IN through SQLAlchemy.
_PG_GET_MANY = PgStatement(select(_T).where(_T.c.key == any_(bindparam("keys", type_=ARRAY(_T.c.key.type)))))
_GET_MANY = select(_T).where(_T.c.key.in_(bindparam("keys", expanding=True)))
_SET_LOCK = update(_T).where(_T.c.key == bindparam("k")).values(locked_until=bindparam("until"))
_RESET = delete(_T).where(_T.c.key == bindparam("k"))


def _record_failure(insert_for: Any) -> Any:
    """Add one failure, or start a new window when ``window_started_at`` is before ``stale_before``."""
    stale = _T.c.window_started_at < bindparam("stale_before", type_=_T.c.window_started_at.type)
    now = bindparam("now", type_=_T.c.updated_at.type)
    insert = insert_for(_T).values(key=bindparam("k"), failures=1, window_started_at=now, updated_at=now)
    return insert.on_conflict_do_update(
        index_elements=[_T.c.key],
        set_={
            "failures": case((stale, 1), else_=_T.c.failures + 1),
            "window_started_at": case((stale, insert.excluded.window_started_at), else_=_T.c.window_started_at),
            "updated_at": insert.excluded.updated_at,
        },
    ).returning(_T.c.key, _T.c.failures, _T.c.window_started_at, _T.c.locked_until)


# Built once per dialect (the upsert syntax is the same, the constructs are not).
_RECORD_FAILURE = {"postgresql": _record_failure(pg_insert), "sqlite": _record_failure(sqlite_insert)}


def _to_counter(row: Mapping[str, Any]) -> ThrottleCounter:
    return ThrottleCounter(key=row["key"], failures=row["failures"], window_started_at=row["window_started_at"],
                           locked_until=row["locked_until"])


class SqlThrottleStore:
    """``ThrottleStore`` on SQLAlchemy (PostgreSQL or SQLite upsert)."""

    def __init__(self, session: Executor, dialect: str) -> None:
        self._s = session
        self._postgres = dialect == "postgresql"
        self._record = _RECORD_FAILURE["postgresql" if self._postgres else "sqlite"]

    def get_many(self, keys: Iterable[str]) -> dict[str, ThrottleCounter]:
        if self._postgres:
            rows: Iterable[Mapping[str, Any]] = _PG_GET_MANY.all(self._s, {"keys": list(keys)})
        else:
            rows = (row._mapping for row in self._s.execute(_GET_MANY, {"keys": list(keys)}))
        return {row["key"]: _to_counter(row) for row in rows}

    def record_failure(self, key: str, now: dt.datetime, window: dt.timedelta) -> ThrottleCounter:
        """Add one failure, starting a new window when the previous one is over."""
        row = self._s.execute(self._record, {"k": key, "now": now, "stale_before": now - window}).one()
        return ThrottleCounter(key=row.key, failures=row.failures, window_started_at=row.window_started_at,
                               locked_until=row.locked_until)

    def set_lock(self, key: str, until: dt.datetime) -> None:
        self._s.execute(_SET_LOCK, {"k": key, "until": until})

    def reset(self, key: str) -> None:
        self._s.execute(_RESET, {"k": key})
