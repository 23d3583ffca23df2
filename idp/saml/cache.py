"""Per-worker caches on the SAML answer path: what was released to an SP in an SSO session, and which
session participants this worker has already recorded.

Both are bounded and expire; neither replaces a check (signature, destination, freshness and the replay
cache are always run and always hit the shared database).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """A small LRU with a time to live, shared by the threads of one worker."""

    def __init__(self, ttl_seconds: float, max_entries: int = 20_000) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value stored under ``key`` if it has not expired."""
        if self._ttl <= 0:
            return None
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            if found[0] <= time.monotonic():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return found[1]

    def put(self, key: K, value: V) -> None:
        """Store ``value`` for ``ttl_seconds`` (the least recently used entry goes when full)."""
        if self._ttl <= 0:
            return
        with self._lock:
            self._items[key] = (time.monotonic() + self._ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (tests, key or policy changes made in this process)."""
        with self._lock:
            self._items.clear()
