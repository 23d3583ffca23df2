"""Ready-to-use demo accounts on top of the imported demo register (``idp demo`` only)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from idp.core.accounts.model import AccountState, NewAccount, Profile
from idp.storage.models import AccountRow, RepresentativeRow, StudentRow
from idp.wiring import Services

PARENT_PASSWORD = "Cartable-Vert-74"  # noqa: S105 - published demo credentials, demo data only
PUPIL_PASSWORD = "Trousse-Bleue-58"  # noqa: S105
PROVISIONAL_PASSWORD = "Provisoire-Kx7p2"  # noqa: S105


@dataclass(frozen=True)
class DemoAccount:
    role: str
    identifier: str
    password: str
    note: str


def _student(services: Services, ine: str) -> StudentRow:
    with services.uow() as uow:
        row = uow.session.scalars(select(StudentRow).where(StudentRow.ine == ine)).one()
        uow.session.expunge(row)
    return row


def _pupil_account(services: Services, ine: str) -> str | None:
    with services.uow() as uow:
        return uow.session.scalars(select(AccountRow.identifier).join(StudentRow, StudentRow.account_id == AccountRow.id)
                                   .where(StudentRow.ine == ine)).first()


def _parent_account(services: Services, family_name: str, given: str) -> str | None:
    with services.uow() as uow:
        return uow.session.scalars(
            select(AccountRow.identifier).join(RepresentativeRow, RepresentativeRow.account_id == AccountRow.id)
            .where(RepresentativeRow.family_name == family_name, RepresentativeRow.given_names == given)).first()


def _parent_records(services: Services, family_name: str, given: str) -> list[tuple[str, str]]:
    with services.uow() as uow:
        rows = uow.session.execute(select(RepresentativeRow.uai, RepresentativeRow.external_id).where(
            RepresentativeRow.family_name == family_name, RepresentativeRow.given_names == given))
        return [(r.uai, r.external_id) for r in rows]


def create_demo_accounts(services: Services, featured: dict[str, str]) -> list[DemoAccount]:
    """Create (once) the parent with children in two schools, a pupil, and a pupil's provisional account."""
    accounts = services.accounts
    out: list[DemoAccount] = []
    camille = _student(services, featured["two_schools"])
    parent_id = _parent_account(services, "Dupuis", "Sandrine")
    if parent_id is None:
        parent = accounts.create(NewAccount(profile=Profile.PARENT, family_name="Dupuis", given_names="Sandrine"),
                                 PARENT_PASSWORD, actor="demo")
        with services.uow() as uow:
            uow.accounts.link_register(parent.id, representatives=_parent_records(services, "Dupuis", "Sandrine"))
            uow.commit()
        parent_id = parent.identifier
    out.append(DemoAccount("Représentant légal activé (deux enfants, deux établissements)", parent_id,
                           PARENT_PASSWORD, "Camille au Collège Claude Chappe, Théo à la Cité scolaire Henri IV"))
    pupil_id = _pupil_account(services, camille.ine)
    if pupil_id is None:
        pupil = accounts.create(NewAccount(profile=Profile.STUDENT, family_name=camille.family_name,
                                           given_names=camille.given_names), PUPIL_PASSWORD, actor="demo")
        with services.uow() as uow:
            uow.accounts.link_register(pupil.id, student_ines=[camille.ine])
            uow.commit()
        pupil_id = pupil.identifier
    out.append(DemoAccount("Élève activé", pupil_id, PUPIL_PASSWORD, f"{camille.given_names} {camille.family_name}"))
    noe = _student(services, featured["provisional_pupil"])
    prov_id = _pupil_account(services, noe.ine)
    if prov_id is None:
        expires = services.clock.now() + dt.timedelta(days=92)
        prov = accounts.create(NewAccount(profile=Profile.STUDENT, family_name=noe.family_name,
                                          given_names=noe.given_names, state=AccountState.PROVISIONAL,
                                          provisional_expires_at=expires), PROVISIONAL_PASSWORD, actor="demo")
        with services.uow() as uow:
            uow.accounts.link_register(prov.id, student_ines=[noe.ine])
            uow.commit()
        prov_id = prov.identifier
    out.append(DemoAccount("Élève avec identifiants provisoires (courrier)", prov_id, PROVISIONAL_PASSWORD,
                           f"{noe.given_names} {noe.family_name}, Lycée du Parc"))
    return out


def not_activated_parent(services: Services) -> tuple[str, str, str]:
    """Name, given name and recorded mobile of the featured parent who has no account yet."""
    with services.uow() as uow:
        row = uow.session.execute(select(RepresentativeRow.family_name, RepresentativeRow.given_names,
                                         RepresentativeRow.mobile_phone).where(
            RepresentativeRow.family_name == "Lefort", RepresentativeRow.given_names == "Karim")).first()
    if row is None:
        return ("Lefort", "Karim", "")
    return (row.family_name, row.given_names, row.mobile_phone)
