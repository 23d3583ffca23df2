"""Scopes to claims from the same identity as SAML (DESIGN §4): fr_edu, fr_edu_ine (allowed clients only),
fr_edu_children (pairwise ids per sector), pairwise ``sub`` (O25)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from idp.core.accounts.model import Account, Profile
from idp.storage.models import RepresentativeRow, SchoolRow, StudentLinkRow, StudentRow

from .conftest import Browser, Clients

INE = "123456789AB"


@dataclass
class Family:
    parent: Account
    pupil: Account


@pytest.fixture
def family(services: Any, account_factory: Any) -> Family:
    pupil = account_factory("Léa", "Martin", profile=Profile.STUDENT)
    parent = account_factory("Marie", "Martin")
    now = services.clock.now()
    with services.uow() as uow:
        s = uow.session
        s.add(SchoolRow(uai="0690026D", name="Collège Jean Moulin", kind="college", academie="Lyon", updated_at=now))
        s.flush()
        student = StudentRow(ine=INE, uai="0690026D", external_id="E1", family_name="Martin", given_names="Léa",
                             birth_date=dt.date(2012, 3, 4), class_code="5A", level="5EME", postal_code="69003",
                             fingerprint="x", updated_at=now)
        rep = RepresentativeRow(uai="0690026D", external_id="R1", family_name="Martin", given_names="Marie",
                                postal_code="69003", fingerprint="x", updated_at=now)
        s.add_all([student, rep])
        s.flush()
        s.add(StudentLinkRow(student_id=student.id, representative_id=rep.id, relationship="mere", fingerprint="x",
                             updated_at=now))
        s.flush()
        uow.accounts.link_register(pupil.id, student_ines=[INE])
        uow.accounts.link_register(parent.id, representatives=[("0690026D", "R1")])
        uow.commit()
    return Family(parent=parent, pupil=pupil)


def info(browser: Browser, rp: Any, identifier: str, scope: str) -> dict[str, Any]:
    tokens = browser.tokens(rp, identifier, scope=scope)
    response = browser.userinfo(tokens["access_token"])
    assert response.status_code == 200
    return response.get_json()


def test_fr_edu_claims_for_a_pupil_without_clear_ine(browser: Browser, clients: Clients, family: Family) -> None:
    rp = clients(scopes=("openid", "profile", "fr_edu"))
    claims = info(browser, rp, family.pupil.identifier, "openid profile fr_edu fr_edu_ine")
    assert claims["family_name"] == "Martin" and claims["given_name"] == "Léa"
    assert claims["FrEduCtPersonAffiliation"] == ["eleve2d"]
    assert claims["FrEduCtEleveUAI"] == ["0690026D"] and claims["FrEduCtEleveNiveau"] == ["5EME"]
    assert claims["FrEduCtDateNaissance"] == "2012-03-04"
    assert "FrEduCtEleveINE" not in claims and len(claims["FrEduCtEleveINEHash"]) == 64
    assert claims["FrEduUrlRetour"] == "https://idp.test/logout"


def test_fr_edu_ine_only_for_allowed_clients(browser: Browser, clients: Clients, family: Family) -> None:
    rp = clients("Téléservice INE", scopes=("openid", "fr_edu", "fr_edu_ine"))
    claims = info(browser, rp, family.pupil.identifier, "openid fr_edu fr_edu_ine")
    assert claims["FrEduCtEleveINE"] == INE


def test_fr_edu_children_with_pairwise_ids_per_sector(browser: Browser, clients: Clients, family: Family,
                                                      client: Any) -> None:
    ent = clients("ENT", redirect_uris=("https://ent.test/cb",), scopes=("openid", "fr_edu", "fr_edu_children"))
    vie = clients("Vie scolaire", redirect_uris=("https://vie.test/cb",),
                  scopes=("openid", "fr_edu", "fr_edu_children"))
    a = info(browser, ent, family.parent.identifier, "openid fr_edu fr_edu_children")
    b = info(browser, vie, family.parent.identifier, "openid fr_edu fr_edu_children")
    child = a["children"][0]
    assert child["family_name"] == "Martin" and child["given_name"] == "Léa"
    assert child["FrEduCtEleveUAI"] == "0690026D" and child["FrEduCtEleveNiveau"] == "5EME"
    assert child["id"] == a["FrEduCtRefId"][0] and INE not in str(a)
    assert child["id"] != b["children"][0]["id"]
    assert a["sub"] != b["sub"]
    assert a["FrEduCtPersonAffiliation"] == ["resp2d"]


def test_children_not_released_without_the_scope(browser: Browser, clients: Clients, family: Family) -> None:
    rp = clients(scopes=("openid", "fr_edu"))
    claims = info(browser, rp, family.parent.identifier, "openid fr_edu fr_edu_children")
    assert "children" not in claims
