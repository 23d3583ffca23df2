"""The ticket store contract (``idp.storage.cas_tickets.CasTicketStore``), the same tests on both stores: the
database (SQLite, or PostgreSQL with IDP_TEST_DATABASE_URL) and Redis (IDP_TEST_REDIS_URL). Issue 5 item 3,
SECURITY C03 (single use, also under 10 parallel validations), C05 (life), C12 (PGTs die with the session).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import threading
from collections.abc import Callable

import pytest
import redis

from idp.cas.tickets import TICKET_TTL, new_ticket, ticket_id
from idp.errors import ServiceUnavailable
from idp.storage.cas_redis import RedisCasTickets
from idp.storage.cas_store import KIND_PGT, KIND_PT, KIND_ST, TicketRecord
from idp.storage.cas_tickets import CasTicketStore, SqlCasTickets
from idp.storage.redis_store import connect
from idp.wiring import Services

NOW = dt.datetime(2026, 11, 23, 8, 30, tzinfo=dt.UTC)
PAYLOAD = {"user": "u-1", "attributes": [["nom", ["Martin"]], ["categories", ["National_1"]]],
           "authenticationDate": "2026-11-23T08:29:00Z"}


@pytest.fixture
def store(ticket_backend: str, services: Services, request: pytest.FixtureRequest) -> CasTicketStore:
    if ticket_backend == "redis":
        return request.getfixturevalue("redis_tickets")()  # type: ignore[no-any-return]
    return SqlCasTickets(services.db)


def record(kind: str = KIND_ST, session: str = "s-1", service: str = "ent", **changes: object) -> TicketRecord:
    life = dt.timedelta(hours=8) if kind == KIND_PGT else TICKET_TTL
    base = TicketRecord(id=ticket_id(new_ticket(kind)), kind=kind, service_id=service,
                        service="https://ent.example.fr/app/", session_id=session, account_id=7, fresh=True,
                        created_at=NOW, expires_at=NOW + life, proxies=("https://ent.example.fr/pgt",),
                        payload=PAYLOAD if kind != KIND_PGT else {})
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_a_ticket_comes_back_once_and_whole(store: CasTicketStore) -> None:
    ticket = record()
    store.add(ticket)
    assert store.consume(ticket.id) == ticket
    assert store.consume(ticket.id) is None


def test_proxy_tickets_are_consumed_like_service_tickets(store: CasTicketStore) -> None:
    ticket = record(KIND_PT, proxies=("https://b.example.fr/pgt", "https://a.example.fr/pgt"))
    store.add(ticket)
    assert store.consume(ticket.id) == ticket
    assert store.consume(ticket.id) is None


def test_a_proxy_granting_ticket_is_read_many_times_and_never_consumed(store: CasTicketStore) -> None:
    pgt = record(KIND_PGT, fresh=False)
    store.add(pgt)
    assert store.consume(pgt.id) is None
    assert store.proxy_granting(pgt.id) == pgt
    assert store.proxy_granting(pgt.id) == pgt


def test_a_service_ticket_is_no_proxy_granting_ticket(store: CasTicketStore) -> None:
    ticket = record()
    store.add(ticket)
    assert store.proxy_granting(ticket.id) is None
    assert store.consume(ticket.id) == ticket


def test_unknown_tickets(store: CasTicketStore) -> None:
    assert store.consume(ticket_id("ST-nothing")) is None
    assert store.proxy_granting(ticket_id("PGT-nothing")) is None


def test_ticket_from_the_attributes_kept_for_the_session(store: CasTicketStore) -> None:
    first = record(payload={})
    assert store.session_attributes("s-1", "ent", "") is None
    assert store.from_session(first, "") is False
    assert store.consume(first.id) is None  # nothing was stored
    store.keep_session_attributes("s-1", "ent", PAYLOAD, NOW, "")
    assert store.session_attributes("s-1", "ent", "") == PAYLOAD
    assert store.session_attributes("s-1", "other", "") is None
    assert store.from_session(first, "") is True
    assert store.consume(first.id) == dataclasses.replace(first, payload=PAYLOAD)


def test_a_copy_from_an_older_register_version_is_not_used_and_is_replaced(store: CasTicketStore) -> None:
    """Issue 17: after a register change of the account, the next ticket is not built from the copy computed
    before it; the copy computed again takes its place."""
    changed = "2026-11-23T09:00:00+00:00"
    store.keep_session_attributes("s-1", "ent", PAYLOAD, NOW, "")
    ticket = record(payload={})
    assert store.session_attributes("s-1", "ent", changed) is None
    assert store.from_session(ticket, changed) is False
    assert store.consume(ticket.id) is None
    again = {**PAYLOAD, "attributes": [["nom", ["Martin"]], ["classe", ["4B"]]]}
    store.keep_session_attributes("s-1", "ent", again, NOW + dt.timedelta(hours=1), changed)
    assert store.session_attributes("s-1", "ent", changed) == again
    assert store.session_attributes("s-1", "ent", "") is None
    assert store.from_session(ticket, changed) is True
    assert store.consume(ticket.id) == dataclasses.replace(ticket, payload=again)


def test_end_session_drops_its_tickets_and_attributes_only(store: CasTicketStore) -> None:
    mine, pgt, other = record(session="s-1"), record(KIND_PGT, session="s-1"), record(session="s-2")
    for ticket in (mine, pgt, other):
        store.add(ticket)
    store.keep_session_attributes("s-1", "ent", PAYLOAD, NOW, "")
    store.keep_session_attributes("s-2", "ent", PAYLOAD, NOW, "")
    store.end_session("s-1")
    assert store.consume(mine.id) is None and store.proxy_granting(pgt.id) is None
    assert store.session_attributes("s-1", "ent", "") is None
    assert store.session_attributes("s-2", "ent", "") == PAYLOAD
    assert store.consume(other.id) == other
    store.end_session("s-1")  # idempotent


def test_forget_service_drops_its_tickets_and_attributes_only(store: CasTicketStore) -> None:
    gone, pgt, kept = record(service="ent"), record(KIND_PGT, service="ent"), record(service="pronote")
    for ticket in (gone, pgt, kept):
        store.add(ticket)
    store.keep_session_attributes("s-1", "ent", PAYLOAD, NOW, "")
    store.keep_session_attributes("s-1", "pronote", PAYLOAD, NOW, "")
    store.forget_service("ent")
    assert store.consume(gone.id) is None and store.proxy_granting(pgt.id) is None
    assert store.session_attributes("s-1", "ent", "") is None
    assert store.session_attributes("s-1", "pronote", "") == PAYLOAD
    assert store.consume(kept.id) == kept


def test_ten_parallel_consumers_one_winner(store: CasTicketStore) -> None:
    """C03: ten validations of one ticket at the same instant: exactly one gets it."""
    ticket = record()
    store.add(ticket)
    barrier = threading.Barrier(10)
    results: list[TicketRecord | None] = []
    lock = threading.Lock()

    def consume() -> None:
        barrier.wait()
        got = store.consume(ticket.id)
        with lock:
            results.append(got)

    threads = [threading.Thread(target=consume) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 10
    assert [r for r in results if r is not None] == [ticket]


# --- Redis specifics -----------------------------------------------------------------------------


@pytest.mark.skipif(not os.environ.get("IDP_TEST_REDIS_URL"), reason="set IDP_TEST_REDIS_URL")
@pytest.mark.parametrize("ticket_backend", ["redis"])
def test_redis_keys_live_as_long_as_the_ticket(redis_tickets: Callable[[], RedisCasTickets]) -> None:
    """Tickets expire by themselves (no purge): 10 s for ST/PT, the session's end for a PGT."""
    store = redis_tickets()
    client: redis.Redis = store._r
    prefix = store._prefix
    st, pgt = record(), record(KIND_PGT)
    store.add(st)
    store.add(pgt)
    store.keep_session_attributes("s-1", "ent", PAYLOAD, NOW, "")
    assert 0 < client.pttl(f"{prefix}t:{st.id}") <= 10_000
    assert 7 * 3600_000 < client.pttl(f"{prefix}g:{pgt.id}") <= 8 * 3600_000
    assert 9 * 3600_000 < client.pttl(f"{prefix}a:s-1:ent") <= 10 * 3600_000
    for index in ("s:s-1", "v:ent"):
        assert client.pttl(prefix + index) >= client.pttl(f"{prefix}a:s-1:ent") - 1000


@pytest.mark.parametrize("ticket_backend", ["database"])  # no Redis needed: this one is down
def test_redis_down_is_service_unavailable(ticket_backend: str) -> None:
    """R01: Redis does not answer: every operation raises ``ServiceUnavailable`` (503 / INTERNAL_ERROR)."""
    store = RedisCasTickets(connect("redis://127.0.0.1:1/0"), attributes_ttl=dt.timedelta(hours=10))
    ticket = record()
    calls: list[Callable[[], object]] = [
        lambda: store.add(ticket), lambda: store.from_session(ticket, ""), lambda: store.consume(ticket.id),
        lambda: store.proxy_granting(ticket.id), lambda: store.session_attributes("s-1", "ent", ""),
        lambda: store.keep_session_attributes("s-1", "ent", PAYLOAD, NOW, ""), lambda: store.end_session("s-1"),
        lambda: store.forget_service("ent"),
    ]
    for call in calls:
        with pytest.raises(ServiceUnavailable):
            call()
