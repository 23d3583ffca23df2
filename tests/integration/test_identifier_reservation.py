"""The identifier an activation shows before the password is reserved for its transaction: no other activation,
staff or command-line creation is given it while the transaction lives, and the account is created under it."""

from __future__ import annotations

import datetime as dt
import itertools
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "flows"))
from test_activation_support import add_school, add_student  # noqa: E402

from idp.core.accounts.model import NewAccount, Profile  # noqa: E402
from idp.core.clock import FrozenClock  # noqa: E402
from idp.errors import IdentifierTaken  # noqa: E402
from idp.storage.activation_store import ActivationTxRow  # noqa: E402
from idp.wiring import Services  # noqa: E402

TTL = dt.timedelta(hours=1)
_ids = itertools.count()


def new_transaction(services: Services, state: str = "code_verified") -> str:
    """An activation transaction that lives one hour from the services' clock."""
    tx_id = f"tx{next(_ids)}"
    now = services.clock.now()
    with services.uow() as uow:
        uow.session.add(ActivationTxRow(id=tx_id, kind="parent_sms", state=state, browser_hash="b", ip_key="i",
                                        created_at=now, updated_at=now, expires_at=now + TTL))
        uow.commit()
    return tx_id


def reserve(services: Services, tx_id: str, given: str = "Marie", family: str = "Dupont") -> str:
    with services.uow() as uow:
        identifier = services.accounts.reserve_identifier(uow, tx_id, given, family)
        uow.commit()
    return identifier


def create(services: Services, reserved_by: str | None = None, given: str = "Marie", family: str = "Dupont") -> str:
    return services.accounts.create(NewAccount(Profile.PARENT, family, given), reserved_by=reserved_by).identifier


def set_state(services: Services, tx_id: str, state: str) -> None:
    with services.uow() as uow:
        uow.session.get(ActivationTxRow, tx_id).state = state
        uow.commit()


def held_by(services: Services, tx_id: str) -> str | None:
    with services.uow() as uow:
        return uow.session.scalar(select(ActivationTxRow.reserved_identifier).where(ActivationTxRow.id == tx_id))


def test_two_transactions_with_the_same_names_reserve_different_identifiers(services: Services) -> None:
    first, second = new_transaction(services), new_transaction(services)
    assert (reserve(services, first), reserve(services, second)) == ("m.dupont1", "m.dupont2")
    assert held_by(services, first) == "m.dupont1" and held_by(services, second) == "m.dupont2"
    # Each account is then created under its own reservation, whichever finishes first.
    assert create(services, reserved_by=second) == "m.dupont2"
    assert create(services, reserved_by=first) == "m.dupont1"


def test_a_direct_creation_skips_a_live_reservation(services: Services) -> None:
    tx = new_transaction(services)
    reserved = reserve(services, tx)
    assert create(services) == "m.dupont2"  # staff or `idp accounts create` meanwhile
    assert create(services, reserved_by=tx) == reserved == "m.dupont1"
    assert create(services) == "m.dupont3"
    assert create(services, given="Marc") == "m.dupont4"  # same base, another given name


def test_letters_for_the_register_s_pupils_skip_a_live_reservation(services: Services) -> None:
    """Provisional accounts made from the register (``idp account issue-provisional``, the staff console's
    letters) are numbered past the identifier a parent with the same initial and name was shown."""
    add_school(services, "0690026D", "Lycée du Parc", "lycee", "Lyon")
    add_student(services, "0690026D", "130000001AA", "Lefèvre", "Noé", dt.date(2009, 5, 6), "2C")
    tx = new_transaction(services)
    assert reserve(services, tx, "Nadia", "Lefèvre") == "n.lefevre1"
    (letter,) = services.provisional.issue("0690026D", class_code="2C").issued
    assert letter.identifier == "n.lefevre2"
    assert create(services, reserved_by=tx, given="Nadia", family="Lefèvre") == "n.lefevre1"


def test_an_expired_reservation_is_reusable_and_lost_by_its_transaction(services: Services,
                                                                          clock: FrozenClock) -> None:
    expired = new_transaction(services)
    assert reserve(services, expired) == "m.dupont1"
    clock.advance(hours=1)
    late = new_transaction(services)
    assert reserve(services, late) == "m.dupont1"  # released from the expired transaction, then reserved again
    assert held_by(services, expired) is None
    with pytest.raises(IdentifierTaken):
        create(services, reserved_by=expired)
    assert create(services, reserved_by=late) == "m.dupont1"


def test_an_expired_reservation_taken_by_a_direct_creation_is_lost(services: Services, clock: FrozenClock) -> None:
    tx = new_transaction(services)
    reserve(services, tx)
    clock.advance(hours=1, seconds=1)
    assert create(services) == "m.dupont1"
    with pytest.raises(IdentifierTaken):  # the activation starts again rather than get another identifier
        create(services, reserved_by=tx)


def test_an_ended_transaction_holds_nothing(services: Services) -> None:
    cancelled, done = new_transaction(services), new_transaction(services)
    reserve(services, cancelled)
    set_state(services, cancelled, "cancelled")
    assert create(services) == "m.dupont1"
    assert reserve(services, done) == "m.dupont2"
    assert create(services, reserved_by=done) == "m.dupont2"
    set_state(services, done, "done")  # its account holds the identifier now
    assert create(services) == "m.dupont3"


def test_a_transaction_without_reservation_creates_nothing(services: Services) -> None:
    with pytest.raises(IdentifierTaken):
        create(services, reserved_by=new_transaction(services))


def test_concurrent_activations_and_creations_keep_every_identifier_shown(services: Services) -> None:
    """Threads reserve for parents with the same names while others create accounts directly (the threaded race
    is real on PostgreSQL; SQLite runs writing transactions one at a time); then every activation's account
    is created, concurrently, under the identifier it reserved."""
    transactions = [new_transaction(services) for _ in range(12)]

    def work(job: str | None) -> str:
        return reserve(services, job, "Léa", "Martin") if job else create(services, given="Léa", family="Martin")

    # A direct creation (None) after every third reservation, all in one pool.
    jobs = list(itertools.chain.from_iterable((tx, None) if i % 3 == 0 else (tx,) for i, tx in enumerate(transactions)))
    with ThreadPoolExecutor(max_workers=8) as pool:
        given = list(pool.map(work, jobs))
    reserved = {job: identifier for job, identifier in zip(jobs, given, strict=True) if job}
    assert len(set(given)) == len(given) and all(g.startswith("l.martin") for g in given)
    with ThreadPoolExecutor(max_workers=8) as pool:
        made = dict(zip(transactions, pool.map(lambda tx: create(services, tx, "Léa", "Martin"), transactions),
                        strict=True))
    assert made == reserved
