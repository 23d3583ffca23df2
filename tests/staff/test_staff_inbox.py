"""The inbox: families' requests for help (/aide/demande, no login), wrong-link reports, birth dates refused;
each new → handled, from the inbox or from the family's page; only the school's own items."""

from __future__ import annotations

import datetime as dt
import html
import re

from flask.testing import FlaskClient
from sqlalchemy import select
from test_activation_support import Browser, add_parent, last_code

from idp.storage.activation_store import WrongLinkReportRow
from idp.storage.staff_inbox_store import HelpRequestRow
from idp.wiring import Services

from .staff_support import SCHOOL_A, SCHOOL_B, Register, csrf, enrol

REF_RE = re.compile(r"AIDE-[A-Z2-9]{8}")


def _ask(client: FlaskClient, uai: str = SCHOOL_A, **extra: str) -> object:
    page = client.get("/aide/demande?contexte=activation-sans-telephone")
    data = {"csrf_token": csrf(page), "nom": "Durand", "prenom": "Paul", "uai": uai,
            "enfants": "Tom Durand, 5B", "contact": "06 11 22 33 44", "message": "Pas de SMS reçu", **extra}
    return client.post("/aide/demande?contexte=activation-sans-telephone", data=data)


def test_request_for_help_gets_a_reference_and_lands_in_that_school_only(client: FlaskClient, services: Services,
                                                                          register: Register) -> None:
    page = client.get("/aide/demande")
    assert page.status_code == 200 and "Collège Claude Chappe" in page.get_data(as_text=True)
    sent = _ask(client)
    text = html.unescape(sent.get_data(as_text=True))
    assert sent.status_code == 200 and "Collège Claude Chappe a reçu votre demande" in text
    reference = REF_RE.search(text).group(0)  # type: ignore[union-attr]
    with services.uow() as uow:
        row = uow.session.scalar(select(HelpRequestRow))
        assert row is not None and row.reference == reference and row.context == "activation-sans-telephone"
    enrol(client, services, "ref@college.fr", SCHOOL_A)
    inbox = html.unescape(client.get("/etablissement/boite").get_data(as_text=True))
    assert reference in inbox and "Tom Durand, 5B" in inbox and "activation-sans-telephone" in inbox
    other = FlaskClient(client.application, use_cookies=True)
    enrol(other, services, "ref@lycee.fr", SCHOOL_B)
    assert reference not in other.get("/etablissement/boite").get_data(as_text=True)


def test_request_for_help_checks_its_fields_csrf_and_rate(client: FlaskClient, services: Services,
                                                          register: Register) -> None:
    assert client.post("/aide/demande", data={"nom": "Durand"}).status_code == 400  # no CSRF token
    missing = _ask(client, uai="9999999Z", enfants="", contact="")
    text = html.unescape(missing.get_data(as_text=True))
    assert missing.status_code == 400 and "Choisissez l'établissement" in text and "vos enfants" in text
    for _ in range(5):
        assert _ask(client).status_code == 200
    limited = _ask(client)
    assert limited.status_code == 429 and "Retry-After" in limited.headers


def test_wrong_link_report_is_handled_from_the_family_page(client: FlaskClient, services: Services,
                                                           register: Register) -> None:
    with services.uow() as uow:
        uow.session.add(WrongLinkReportRow(uai=SCHOOL_A, representative_id=register.reps["sophie"],
                                           student_id=register.students["lea"], transaction_id="t", status="open",
                                           created_at=services.clock.now()))
        uow.commit()
    enrol(client, services, "ref@college.fr", SCHOOL_A)
    inbox = html.unescape(client.get("/etablissement/boite").get_data(as_text=True))
    assert "Sophie MARTIN déclare ne pas être représentant légal de Léa Martin" in inbox
    family = client.get(f"/etablissement/eleve/{register.students['lea']}")
    form = re.search(r'action="(/etablissement/boite/wrong_link/\d+/traite)"', family.get_data(as_text=True))
    assert form is not None
    done = client.post(form.group(1), data={"csrf_token": csrf(family), "eleve": str(register.students["lea"])})
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/eleve/{register.students['lea']}")
    assert "Rien à traiter" in client.get("/etablissement/boite").get_data(as_text=True)
    handled = html.unescape(client.get("/etablissement/boite?etat=handled").get_data(as_text=True))
    assert "Traité le" in handled and "par ref" in handled
    page = html.unescape(client.get(f"/etablissement/eleve/{register.students['lea']}").get_data(as_text=True))
    assert "Signalement marqué comme traité" in page


def test_birth_dates_refused_three_times_reach_the_school(client: FlaskClient, services: Services,
                                                          register: Register) -> None:
    add_parent(services, SCHOOL_A, "R3", "Petit", "Nadia", "+33611111111", [register.students["zoe"]])
    family = Browser(client)
    family.start_activation("Petit", "Nadia", "06 11 11 11 11")
    family.code(last_code(services, "+33611111111"))
    for _ in range(3):
        family.children({0: ("oui", dt.date(2000, 1, 1))})
    enrol(client, services, "ref@college.fr", SCHOOL_A)
    inbox = html.unescape(client.get("/etablissement/boite").get_data(as_text=True))
    assert "Dates de naissance refusées 3 fois" in inbox
    page = html.unescape(client.get(f"/etablissement/eleve/{register.students['zoe']}").get_data(as_text=True))
    assert "Dates de naissance refusées 3 fois : démarche annulée" in page


def test_inbox_is_paginated(client: FlaskClient, services: Services, register: Register) -> None:
    with services.uow() as uow:
        for n in range(30):
            uow.session.add(HelpRequestRow(reference=f"AIDE-PAGE{n:04d}", uai=SCHOOL_A, family_name="Durand",
                                           given_names="Paul", contact="06 11 22 33 44", ip_key=f"k{n}",
                                           created_at=services.clock.now() - dt.timedelta(minutes=n)))
        uow.commit()
    enrol(client, services, "ref@college.fr", SCHOOL_A)
    first = html.unescape(client.get("/etablissement/boite").get_data(as_text=True))
    assert "30 élément(s) – page 1 sur 2" in first and first.count(">Marquer comme traité<") == 25
    assert 'aria-current="page">1<' in first and "/etablissement/boite?etat=new&page=2" in first
    second = html.unescape(client.get("/etablissement/boite?page=2").get_data(as_text=True))
    assert "page 2 sur 2" in second and second.count(">Marquer comme traité<") == 5
    # Past the end or not a number: the last page, the first page.
    assert "page 2 sur 2" in html.unescape(client.get("/etablissement/boite?page=99").get_data(as_text=True))
    assert "page 1 sur 2" in html.unescape(client.get("/etablissement/boite?page=%C2%B2").get_data(as_text=True))
