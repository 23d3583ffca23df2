"""One identity for every protocol: register records → Identity → released attributes (DESIGN §4)."""

from __future__ import annotations

import datetime as dt

import pytest

from idp.core.accounts.model import Profile
from idp.core.identity import (
    Attr,
    ReleasePolicy,
    affiliations,
    load_identity,
    pairwise_id,
    release_attributes,
)
from idp.storage.models import RepresentativeRow, SchoolRow, StudentLinkRow, StudentRow
from idp.wiring import Services

NOW = dt.datetime(2026, 9, 1, 8, 0, tzinfo=dt.UTC)


def register(services: Services) -> dict[str, int]:
    """Two schools (an école and a collège), a mother with a child in each, plus a non-legal link."""
    ids: dict[str, int] = {}
    with services.uow() as uow:
        s = uow.session
        s.add_all([SchoolRow(uai="0301442K", name="École Jules Ferry", kind="ecole", academie="Montpellier",
                             updated_at=NOW),
                   SchoolRow(uai="0690026D", name="Lycée du Parc", kind="lycee", academie="Lyon", updated_at=NOW)])
        s.flush()
        pupils = {
            "lea": StudentRow(ine="111111111AA", uai="0301442K", external_id="E1", family_name="Dupuis",
                              given_names="Léa Marie", birth_date=dt.date(2017, 3, 4), class_code="CE1",
                              level="CE1", postal_code="30660", fingerprint="x", updated_at=NOW),
            "theo": StudentRow(ine="222222222BB", uai="0690026D", external_id="E2", family_name="Dupuis",
                               given_names="Théo", birth_date=dt.date(2010, 5, 6), class_code="2NDE1", level="2NDE",
                               postal_code="69006", fingerprint="x", updated_at=NOW),
            "gone": StudentRow(ine="333333333CC", uai="0690026D", family_name="Dupuis", given_names="Ancien",
                               birth_date=dt.date(2008, 1, 1), status="leaving", fingerprint="x", updated_at=NOW),
            "other": StudentRow(ine="444444444DD", uai="0690026D", family_name="Martin", given_names="Noé",
                                birth_date=dt.date(2010, 1, 1), fingerprint="x", updated_at=NOW),
        }
        s.add_all(pupils.values())
        s.flush()
        reps = [RepresentativeRow(uai="0301442K", external_id="R1", family_name="Dupuis", given_names="Sandrine",
                                  postal_code="30660", fingerprint="x", updated_at=NOW),
                RepresentativeRow(uai="0690026D", external_id="R9", family_name="Dupuis", given_names="Sandrine",
                                  postal_code="30660", fingerprint="x", updated_at=NOW)]
        s.add_all(reps)
        s.flush()
        links = [(pupils["lea"], reps[0], True), (pupils["theo"], reps[1], True), (pupils["gone"], reps[1], True),
                 (pupils["other"], reps[1], False)]
        s.add_all([StudentLinkRow(student_id=p.id, representative_id=r.id, legal_responsibility=legal,
                                  fingerprint="x", updated_at=NOW) for p, r, legal in links])
        ids.update({name: p.id for name, p in pupils.items()})
        uow.commit()
    return ids


@pytest.fixture
def mother(services: Services, account_factory):
    register(services)
    account = account_factory("Sandrine", "Dupuis")
    with services.uow() as uow:
        uow.accounts.link_register(account.id, representatives=[("0301442K", "R1"), ("0690026D", "R9")])
        uow.commit()
    return account


def test_a_parent_reaches_present_children_with_legal_responsibility_in_every_school(services: Services,
                                                                                     mother) -> None:
    with services.uow() as uow:
        identity = load_identity(uow, mother)
    assert [p.given_names for p in identity.pupils] == ["Léa Marie", "Théo"]
    assert identity.profile is Profile.PARENT and identity.postal_code == "30660"
    assert affiliations(identity) == ["resp1d", "resp2d"]
    assert identity.email == ""  # unverified contacts are never part of the identity


def test_release_follows_the_policy_and_hashes_the_ine(services: Services, mother, settings) -> None:
    with services.uow() as uow:
        identity = load_identity(uow, mother)
    policy = ReleasePolicy(sp_id="https://ent.example/sp")
    released = release_attributes(identity, policy, settings.pairwise_salt, "https://idp.test/logout", NOW)
    assert released[Attr.SN] == ["Dupuis"]
    assert released[Attr.ELEVE_UAI] == ["0301442K", "0690026D"]
    assert released[Attr.VECTEUR] == ["1|DUPUIS|Sandrine|E1|0301442K", "2|DUPUIS|Sandrine|E2|0690026D"]
    assert len(released[Attr.REF_ID]) == 2 and "111111111AA" not in str(released)
    assert Attr.MAIL not in released and Attr.PHONE not in released and Attr.DATE_NAISSANCE not in released
    minimal = release_attributes(identity, ReleasePolicy(sp_id="cantine", attributes=frozenset({Attr.FR_EDU_CT_ID})),
                                 settings.pairwise_salt, "", NOW)
    assert set(minimal) == {Attr.FR_EDU_CT_ID}


def test_a_pupil_gets_own_birth_date_and_ine_only_where_allowed(services: Services, account_factory,
                                                                settings) -> None:
    register(services)
    pupil = account_factory("Théo", "Dupuis", profile=Profile.STUDENT)
    with services.uow() as uow:
        uow.accounts.link_register(pupil.id, student_ines=["222222222BB"])
        uow.commit()
        identity = load_identity(uow, pupil)
    wanted = frozenset({Attr.ELEVE_INE, Attr.DATE_NAISSANCE, Attr.AFFILIATION})
    hashed = release_attributes(identity, ReleasePolicy("sp-a", wanted), settings.pairwise_salt, "", NOW)
    clear = release_attributes(identity, ReleasePolicy("sp-a", wanted, clear_ine=True), settings.pairwise_salt, "", NOW)
    assert hashed[Attr.AFFILIATION] == ["eleve2d"] and hashed[Attr.DATE_NAISSANCE] == ["2010-05-06"]
    assert Attr.ELEVE_INE not in hashed and len(hashed[Attr.ELEVE_INE_HASH][0]) == 64
    assert clear[Attr.ELEVE_INE] == ["222222222BB"]
    other_sp = release_attributes(identity, ReleasePolicy("sp-b", wanted), settings.pairwise_salt, "", NOW)
    assert other_sp[Attr.ELEVE_INE_HASH] != hashed[Attr.ELEVE_INE_HASH]


def test_pairwise_ids_are_opaque_stable_and_per_sector() -> None:
    a1, a2 = pairwise_id("salt", "sp-a", "acct"), pairwise_id("salt", "sp-a", "acct")
    b = pairwise_id("salt", "sp-b", "acct")
    assert a1 == a2 and a1 != b and "acct" not in a1 and len(a1) == 32
