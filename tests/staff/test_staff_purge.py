"""``idp purge`` and the console's data: old staff sessions, corrections of purged people, old requests."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from idp.core.clock import FrozenClock
from idp.storage.models import RepresentativeRow
from idp.storage.purge import SqlPurge
from idp.storage.staff_console_store import ContactCorrectionRow
from idp.storage.staff_inbox_store import HelpRequestRow
from idp.storage.staff_store import StaffSessionRow
from idp.wiring import Services

from .staff_support import Register, csrf, enrol


def _count(services: Services, row: type) -> int:
    with services.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(row)) or 0)


def test_purge_removes_what_the_console_no_longer_needs(client: FlaskClient, services: Services,
                                                        register: Register) -> None:
    enrol(client, services, "ref@college.fr")
    token = csrf(client.get("/etablissement"))
    tom, paul = register.students["tom"], register.reps["paul"]
    client.post(f"/etablissement/eleve/{tom}/rep/{paul}/correction",
                data={"csrf_token": token, "champ": "email", "valeur": "paul@example.fr"})
    services.extras["staff"].desk.request_help("0340011C", "Durand", "Paul", "Tom, 5B", "paul@example.fr", "",
                                               "", "198.51.100.7")
    clock = services.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(days=3)
    SqlPurge(services.db).run(clock.now(), 92)
    assert _count(services, StaffSessionRow) == 0  # idle for three days
    assert _count(services, ContactCorrectionRow) == 1 and _count(services, HelpRequestRow) == 1
    with services.uow() as uow:  # Paul left the register and his data was purged
        uow.session.execute(update(RepresentativeRow).where(RepresentativeRow.id == paul).values(status="purged"))
        uow.commit()
    clock.advance(days=92)
    report = SqlPurge(services.db).run(clock.now(), 92)
    assert report.staff_state == 2
    assert _count(services, ContactCorrectionRow) == 0 and _count(services, HelpRequestRow) == 0
