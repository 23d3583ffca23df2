"""The service catalogue ("Mes services"), read from the shared ``service_providers`` table, cached per process.

The list changes only when an administrator runs ``idp sp add/set/remove``, ``idp cas add/remove`` or
``idp oidc add/remove``; re-reading it at every page cost a statement. Each process keeps it for
``[caches] catalogue_seconds`` (declared with the other caches in ``idp.caches``). The stores that write the
table call ``changed()``: in the process that ran the command (the CLI, or the tests) the next read sees the
change at once; the server's workers, other processes, see it within that lifetime.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from idp.core.ports import ServiceEntry
from idp.storage.models import Executor

_generation = 0
_lock = threading.Lock()


def changed() -> None:
    """The ``service_providers`` table was written in this process: forget every cached catalogue."""
    global _generation
    with _lock:
        _generation += 1


def changed_in(session: Any) -> None:
    """A store wrote the table in ``session``: forget the cached catalogues now and again once it commits
    (a read between the write and the commit must not keep the old list for ``TTL`` seconds)."""
    changed()
    if isinstance(session, Session):
        event.listen(session, "after_commit", lambda _s: changed(), once=True)


@functools.cache
def _statement() -> Any:
    """Built at first use: the SAML table's model imports this module (``changed_in``) while it is defined."""
    from idp.storage.models import ServiceProviderRow, table_of
    from idp.storage.saml_store import SamlServiceProviderRow

    sp, saml = table_of(ServiceProviderRow), table_of(SamlServiceProviderRow)
    return (select(sp.c.protocol, sp.c.client_id, sp.c.name, sp.c.home_url, sp.c.description,
                   saml.c.allow_idp_initiated)
            .outerjoin(saml, (sp.c.protocol == "saml") & (saml.c.entity_id == sp.c.client_id))
            .where(sp.c.enabled.is_(True)).order_by(sp.c.name))


class CatalogueCache:
    """One database's catalogue, kept ``ttl`` seconds (one per ``Database``, so per process and database)."""

    def __init__(self, ttl: float, clock: Any = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entry: tuple[float, int, tuple[ServiceEntry, ...]] | None = None

    def get(self) -> tuple[ServiceEntry, ...] | None:
        entry = self._entry
        if entry is None or entry[1] != _generation or self._clock() - entry[0] >= self.ttl:
            return None
        return entry[2]

    def put(self, entries: tuple[ServiceEntry, ...], generation: int) -> None:
        self._entry = (self._clock(), generation, entries)


class SqlServiceCatalogue:
    """``ServiceCatalogue`` on a SQLAlchemy ``Session`` or ``Connection``, cached when given a cache."""

    def __init__(self, session: Executor, cache: CatalogueCache | None = None) -> None:
        self._s = session
        self._cache = cache

    def list_enabled(self) -> Sequence[ServiceEntry]:
        if self._cache is not None:
            cached = self._cache.get()
            if cached is not None:
                return list(cached)
        generation = _generation  # read before the table: a change during the read is not cached as new
        rows = self._s.execute(_statement())
        entries = tuple(ServiceEntry(protocol=r.protocol, client_id=r.client_id, name=r.name, url=r.home_url,
                                     description=r.description, idp_initiated=bool(r.allow_idp_initiated))
                        for r in rows)
        if self._cache is not None:
            self._cache.put(entries, generation)
        return list(entries)
