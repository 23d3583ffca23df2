"""Time source: every expiry is computed from an injected clock (tests never sleep)."""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    """Something that tells the current time as an aware UTC datetime."""

    def now(self) -> dt.datetime: ...


class SystemClock:
    """The real clock, in UTC."""

    def now(self) -> dt.datetime:
        """Return the current time in UTC."""
        return dt.datetime.now(dt.UTC)


class FrozenClock:
    """A clock that only moves when told to (tests and benchmarks)."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2026, 9, 1, 8, 0, tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        """Return the frozen time."""
        return self._now

    def advance(self, **delta: float) -> dt.datetime:
        """Move the clock forward by a ``timedelta(**delta)`` and return the new time."""
        self._now += dt.timedelta(**delta)
        return self._now
