"""Every in-process cache, declared in one place, with its lifetime from ``[caches]`` in ``config.toml``.

A worker keeps a few things it would otherwise read at every request. None of them replaces a check (a
signature, a ticket, a code, a session, the replay cache always hit the shared store), and each is seen
stale by other workers for at most its lifetime after an ``idp …`` command. A register import is never seen
late: ``saml_released`` is keyed by the account as read with the session, ``register_changed_at`` included
(which the import sets for every account whose released values it changed), CAS's attributes copies by that
same value (``idp.storage.cas_tickets``), and OIDC reads the register at each request:

==========================  ================================================  ===============================
cache                       what                                              lifetime (``[caches]``)
==========================  ================================================  ===============================
``oidc_clients``            OIDC client registrations (``idp oidc …``)         ``oidc_clients_seconds``
``saml_service_providers``  SAML SP rows (``idp sp …``; parsed metadata is     ``saml_service_providers_seconds``
                            kept per document hash, ``saml.registry``)
``saml_released``           attributes released to an SP in an SSO session,    ``saml_released_seconds``
                            for an SP policy and an account row
``saml_participants``       session participants this worker already wrote     ``saml_released_seconds``
``oidc_client_keys``        ``private_key_jwt`` clients' public keys: the      ``oidc_client_keys_seconds``
                            registered JWKS parsed, or the ``jwks_uri``
                            fetched (a client's key rotation is seen within
                            it)
``catalogue``               "Mes services" (``service_providers``; a change    ``catalogue_seconds``
                            made in this process is seen at once)
``pages``                   rendered screens with slots (login screens, "Mes   none: keyed by everything they
                            services", the SAML autopost page)                 depend on, bounded
==========================  ================================================  ===============================

The CAS service registry is not cached: each ``/cas/login`` and ticket reads it (one indexed statement), so
``idp cas add/remove`` applies at once. ``ProcessCaches`` is built once per process by ``build_services``
and reached as ``services.caches``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from idp.settings import CacheSettings

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """A bounded LRU with a time to live, shared by the threads of one worker (``ttl_seconds`` 0: no caching)."""

    def __init__(self, ttl_seconds: float, max_entries: int = 20_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, key: K) -> tuple[bool, V | None]:
        """``(True, value)`` if ``key`` is stored and fresh (the value may be None), else ``(False, None)``."""
        if self.ttl <= 0:
            return False, None
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return False, None
            if found[0] <= self._clock():
                del self._items[key]
                return False, None
            self._items.move_to_end(key)
            return True, found[1]

    def get(self, key: K) -> V | None:
        """The value stored under ``key`` if it has not expired."""
        return self.lookup(key)[1]

    def put(self, key: K, value: V) -> None:
        """Store ``value`` for ``ttl_seconds`` (the least recently used entry goes when full)."""
        if self.ttl <= 0:
            return
        with self._lock:
            self._items[key] = (self._clock() + self.ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (a change made in this process, tests)."""
        with self._lock:
            self._items.clear()


class PageCache:
    """Rendered pages keyed by everything they depend on; bounded (past ``max_entries`` it starts again)."""

    def __init__(self, max_entries: int = 512) -> None:
        self._max = max_entries
        self._pages: dict[Hashable, Any] = {}

    def get(self, key: Hashable) -> Any:
        """The page rendered for ``key``, or None."""
        return self._pages.get(key)

    def put(self, key: Hashable, page: Any) -> None:
        """Keep a rendered page."""
        if len(self._pages) >= self._max:
            self._pages.clear()
        self._pages[key] = page

    def render(self, key: Hashable, render: Callable[[], Any]) -> Any:
        """The page for ``key``, rendered once."""
        page = self._pages.get(key)
        if page is None:
            page = render()
            self.put(key, page)
        return page


class ProcessCaches:
    """The caches of one process (see the module docstring for each one's content and lifetime)."""

    def __init__(self, lifetimes: CacheSettings) -> None:
        from idp.storage.catalogue import CatalogueCache

        self.lifetimes = lifetimes
        self.oidc_clients: TtlCache[str, Any] = TtlCache(lifetimes.oidc_clients_seconds, 10_000)
        self.oidc_client_keys: TtlCache[str, Any] = TtlCache(lifetimes.oidc_client_keys_seconds, 1_000)
        self.saml_service_providers: TtlCache[str, Any] = TtlCache(lifetimes.saml_service_providers_seconds, 10_000)
        self.saml_released: TtlCache[tuple[str, str, object, object], Any] = TtlCache(lifetimes.saml_released_seconds)
        self.saml_participants: TtlCache[tuple[str, str, str], bool] = TtlCache(lifetimes.saml_released_seconds)
        self.catalogue = CatalogueCache(lifetimes.catalogue_seconds)
        self.pages = PageCache()

    def clear(self) -> None:
        """Forget everything this process keeps (tests, or after a change made in this process)."""
        for cache in (self.oidc_clients, self.oidc_client_keys, self.saml_service_providers, self.saml_released,
                      self.saml_participants):
            cache.clear()
