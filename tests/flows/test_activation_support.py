"""Helpers shared by the activation, recovery and account tests (no tests here): a small register, the
outbox reader, and browser-like steps. Other test directories import it by path (see ``load_support``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient

from idp.settings import DeliverySettings, Settings
from idp.storage.activation_store import SqlOutbox
from idp.storage.models import RepresentativeRow, SchoolRow, StudentLinkRow, StudentRow
from idp.wiring import Services

PHONE = "+33612345678"
MAIL = "sophie.martin@example.fr"
TYPED_PHONE = "06 12 34 56 78"
CODE_RE = re.compile(r"\b([2-9A-HJKMNP-Z]{6})\b")
GOOD_PASSWORD = "Tartine-Beurre-93!"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def flow_settings(settings: Settings) -> Settings:
    """The test instance's settings with messages delivered on demand (no background thread)."""
    return dataclasses.replace(settings, delivery=DeliverySettings(background=False))


def with_contacts(services: Services, account: Any, phone: str = PHONE, mail: str = MAIL) -> Any:
    """The account with a verified mobile number and address (as « Mon compte » leaves them)."""
    with services.uow() as uow:
        uow.accounts.set_phone(account.id, phone, services.clock.now())
        uow.accounts.set_email(account.id, mail, services.clock.now())
        uow.commit()
    return account


def text_of(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


def csrf(html_text: str) -> str:
    match = CSRF_RE.search(html_text)
    assert match, "no CSRF token in the page"
    return match.group(1)


@dataclass
class Family:
    """Sophie Martin, legal representative of Léa (collège, Gard) and Hugo (lycée, Lyon): two records."""

    parent_records: list[tuple[str, str]]
    children: dict[str, dt.date]


def add_school(services: Services, uai: str, name: str, kind: str = "college", academie: str = "Montpellier") -> None:
    with services.uow() as uow:
        uow.session.add(SchoolRow(uai=uai, name=name, kind=kind, academie=academie, updated_at=services.clock.now()))
        uow.commit()


def add_student(services: Services, uai: str, ine: str, family: str, given: str, born: dt.date,
                class_code: str = "3A") -> int:
    with services.uow() as uow:
        row = StudentRow(ine=ine, uai=uai, external_id=ine, family_name=family, given_names=given, birth_date=born,
                         class_code=class_code, level="3", fingerprint="x", updated_at=services.clock.now())
        uow.session.add(row)
        uow.session.flush()
        uow.commit()
        return row.id


def add_parent(services: Services, uai: str, external_id: str, family: str, given: str, phone: str,
               children: list[int], email: str = "") -> int:
    with services.uow() as uow:
        now = services.clock.now()
        rep = RepresentativeRow(uai=uai, external_id=external_id, family_name=family, given_names=given,
                                mobile_phone=phone, email=email, fingerprint="x", updated_at=now)
        uow.session.add(rep)
        uow.session.flush()
        for child in children:
            uow.session.add(StudentLinkRow(student_id=child, representative_id=rep.id, relationship="mere",
                                           legal_responsibility=True, fingerprint="x", updated_at=now))
        uow.commit()
        return rep.id


def make_family(services: Services, phone: str = PHONE) -> Family:
    """One parent with children in two schools of two académies (one account must reach both)."""
    add_school(services, "0301234A", "Collège Claude Chappe")
    add_school(services, "0690026D", "Lycée du Parc", "lycee", "Lyon")
    lea = add_student(services, "0301234A", "120456789AB", "Martin", "Léa Marie", dt.date(2012, 3, 14), "5B")
    hugo = add_student(services, "0690026D", "120456790CD", "Martin", "Hugo", dt.date(2008, 11, 2), "1G2")
    add_parent(services, "0301234A", "R1", "MARTIN", "Sophie", phone, [lea])
    add_parent(services, "0690026D", "R77", "Martin", "Sophie Anne", phone, [hugo])
    return Family(parent_records=[("0301234A", "R1"), ("0690026D", "R77")],
                  children={"Léa": dt.date(2012, 3, 14), "Hugo": dt.date(2008, 11, 2)})


def outbox(services: Services, to: str = "") -> list[dict[str, Any]]:
    """Deliver what is queued, then read the development outbox."""
    services.delivery.run_pending()
    return SqlOutbox(services.db.sessionmaker).messages(to=to)


def last_code(services: Services, to: str = PHONE) -> str:
    messages = outbox(services, to)
    assert messages, f"no message for {to}"
    match = CODE_RE.search(messages[-1]["body"].split(":", 1)[1])
    assert match, messages[-1]["body"]
    return match.group(1)


class Browser:
    """Drive the pages like a person: GET a page, post its form with its CSRF token."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def post(self, path: str, data: dict[str, str], page: str | None = None) -> Any:
        shown = text_of(self.client.get(page or path))
        if not CSRF_RE.search(shown):  # the step is no longer offered: post anyway, as a replay would
            shown = text_of(self.client.get("/creer-mon-compte"))
        token = csrf(shown)
        return self.client.post(path, data={**data, "csrf_token": token})

    def start_activation(self, family: str = "Martin", given: str = "Sophie", phone: str = TYPED_PHONE,
                         request_id: str = "") -> Any:
        page = "/creer-mon-compte" + (f"?demande={request_id}" if request_id else "")
        return self.post("/creer-mon-compte", {"nom": family, "prenom": given, "telephone": phone,
                                               "demande": request_id}, page=page)

    def code(self, code: str) -> Any:
        return self.post("/creer-mon-compte/code", {"code": code})

    def children(self, answers: dict[int, tuple[str, dt.date | None]]) -> Any:
        data: dict[str, str] = {}
        for index, (choice, born) in answers.items():
            data[f"lien_{index}"] = choice
            if born:
                data.update({f"naissance_{index}_jour": f"{born.day:02d}", f"naissance_{index}_mois": f"{born.month:02d}",
                             f"naissance_{index}_annee": str(born.year)})
        return self.post("/creer-mon-compte/eleves", data)

    def password(self, password: str = GOOD_PASSWORD, confirmation: str | None = None) -> Any:
        return self.post("/creer-mon-compte/mot-de-passe",
                         {"mot_de_passe": password, "confirmation": confirmation or password})

    def child_order(self) -> list[str]:
        page = text_of(self.client.get("/creer-mon-compte/eleves"))
        return re.findall(r'class="idp-child__name[^"]*"><strong>([^<]+)</strong>', page)
