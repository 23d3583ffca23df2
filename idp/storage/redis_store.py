"""Short-lived state in Redis when ``[redis] url`` is set: login throttling counters.

Security limits fail closed (SECURITY R02): when Redis does not answer, the attempt is refused with a 503
(``ServiceUnavailable``), never let through unthrottled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import redis

from idp.core.ports import ThrottleCounter
from idp.errors import ServiceUnavailable

PREFIX = "idp:throttle:"

# One failure, atomically: start a new window when the previous one is over, keep the key alive.
_RECORD = """
local f = redis.call('HGET', KEYS[1], 'f')
local ws = redis.call('HGET', KEYS[1], 'ws')
local now = tonumber(ARGV[1])
if (not f) or (tonumber(ws) < now - tonumber(ARGV[2])) then f = 1; ws = ARGV[1] else f = tonumber(f) + 1 end
redis.call('HSET', KEYS[1], 'f', f, 'ws', ws)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {f, ws, redis.call('HGET', KEYS[1], 'lu') or ''}
"""


def _time(value: Any) -> dt.datetime | None:
    if value in (None, b"", ""):
        return None
    return dt.datetime.fromtimestamp(float(value), dt.UTC)


def connect(url: str) -> redis.Redis:
    """A Redis client with short timeouts (a slow Redis must not hang workers)."""
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


class RedisThrottleStore:
    """``ThrottleStore`` on Redis hashes with a TTL; every Redis failure becomes a 503."""

    def __init__(self, client: redis.Redis) -> None:
        self._r = client
        self._record = client.register_script(_RECORD)

    def get_many(self, keys: Iterable[str]) -> dict[str, ThrottleCounter]:
        keys = list(keys)
        try:
            pipe = self._r.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(PREFIX + key)
            rows = pipe.execute()
        except redis.RedisError as exc:
            raise ServiceUnavailable() from exc
        out = {}
        for key, row in zip(keys, rows, strict=True):
            if row:
                started = _time(row[b"ws"])
                assert started is not None
                out[key] = ThrottleCounter(key=key, failures=int(row[b"f"]), window_started_at=started,
                                           locked_until=_time(row.get(b"lu")))
        return out

    def record_failure(self, key: str, now: dt.datetime, window: dt.timedelta) -> ThrottleCounter:
        ttl = int(max(window, dt.timedelta(days=1)).total_seconds())
        try:
            failures, started, locked = self._record(keys=[PREFIX + key],
                                                     args=[now.timestamp(), window.total_seconds(), ttl])
        except redis.RedisError as exc:
            raise ServiceUnavailable() from exc
        start = _time(started)
        assert start is not None
        return ThrottleCounter(key=key, failures=int(failures), window_started_at=start, locked_until=_time(locked))

    def set_lock(self, key: str, until: dt.datetime) -> None:
        try:
            self._r.hset(PREFIX + key, "lu", until.timestamp())
        except redis.RedisError as exc:
            raise ServiceUnavailable() from exc

    def reset(self, key: str) -> None:
        try:
            self._r.delete(PREFIX + key)
        except redis.RedisError as exc:
            raise ServiceUnavailable() from exc
