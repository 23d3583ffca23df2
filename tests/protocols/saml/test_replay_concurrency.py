"""R04/S14: the replay cache has exactly one winner under concurrent use of one request ID."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from idp.errors import ServiceUnavailable
from idp.saml.checks import replay_key
from idp.storage.saml_store import SqlSamlStore


def test_one_winner_among_parallel_redemptions(services: Any, clock: Any) -> None:
    key = replay_key("https://sp1.test/metadata", "_same-id")
    now = clock.now()

    def redeem(_: int) -> bool:
        try:
            with services.uow() as uow:
                won = SqlSamlStore(uow.session).consume_once(key, now + dt.timedelta(minutes=6), now)
                uow.commit()
                return won
        except ServiceUnavailable:
            return False

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(redeem, range(30)))
    assert results.count(True) == 1


def test_expired_entries_can_be_reused_and_purged(services: Any, clock: Any) -> None:
    key = replay_key("https://sp1.test/metadata", "_old")
    now = clock.now()
    with services.uow() as uow:
        store = SqlSamlStore(uow.session)
        assert store.consume_once(key, now + dt.timedelta(minutes=6), now)
        assert not store.consume_once(key, now + dt.timedelta(minutes=6), now)
        later = now + dt.timedelta(minutes=7)
        assert store.consume_once(key, later + dt.timedelta(minutes=6), later)
        assert store.purge(later + dt.timedelta(minutes=13)) == 1
        uow.commit()
