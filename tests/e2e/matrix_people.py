"""Fresh people for the browser matrix, taken from the demo register of the running stack: every cell gets
its own, since activation, recovery and a first login consume them.

People are chosen among the register's records without an account whose name is theirs alone in the whole
register (so that Pronote and the ENT, which join on names, find exactly them), outside the families other
browser tests use. Accounts are created through the repositories, as ``idp demo`` creates its ready accounts
(``idp.storage.demo``); the SMS codes are read from the development outbox by the tests.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import func, select, update

from idp.core.accounts.identifiers import identifier_base
from idp.core.accounts.model import AccountState, NewAccount, Profile
from idp.demo_register import FEATURED, FRANCECONNECT_FAMILIES
from idp.settings import load_settings
from idp.storage.models import AccountRow, RepresentativeRow, StudentLinkRow, StudentRow
from idp.wiring import Services, build_services

from .servers import DemoStack

PASSWORD = "Bleuet-Montagne-47"  # noqa: S105 - test accounts of a throw-away demo instance
NEW_PASSWORD = "Girouette-Azur-83"  # noqa: S105
#: Families the other browser tests use (the demo's featured people) or that FranceConnect vouches for.
RESERVED = frozenset({family for family, *_ in FEATURED.values()} | {f for f, *_ in FRANCECONNECT_FAMILIES})


@dataclass(frozen=True)
class Person:
    """Someone of the register, as the browser matrix needs them."""

    given: str
    family: str
    identifier: str = ""
    password: str = ""
    phone: str = ""
    children: dict[str, dt.date] = field(default_factory=dict)  # given names -> birth date (parents)
    birth_date: dt.date | None = None  # pupils

    @property
    def name(self) -> str:
        """The name the services show: given names then family name."""
        return f"{self.given} {self.family}"


class Register:
    """The demo register of one running stack, handing out people never handed out before."""

    def __init__(self, demo: DemoStack) -> None:
        self.services: Services = build_services(load_settings(demo.config, environ={}))
        self._parents: Iterator[RepresentativeRow] = iter(self._lone(RepresentativeRow, phone=True))
        self._pupils: Iterator[StudentRow] = iter(self._lone(StudentRow))

    def close(self) -> None:
        self.services.db.dispose()

    def _lone(self, model: type[RepresentativeRow] | type[StudentRow], *, phone: bool = False) -> list:
        """Present records without an account whose (family, given names) occurs once in the register."""
        names = select(model.family_name, model.given_names).group_by(model.family_name, model.given_names) \
            .having(func.count() == 1).subquery()
        query = select(model).join(names, (names.c.family_name == model.family_name)
                                   & (names.c.given_names == model.given_names)) \
            .where(model.account_id.is_(None), model.status == "present", model.family_name.not_in(RESERVED)) \
            .order_by(model.id)
        if phone:
            query = query.where(RepresentativeRow.mobile_phone != "")
        with self.services.uow() as uow:
            rows = list(uow.session.scalars(query))
            uow.session.expunge_all()
        return rows

    def _children(self, representative_id: int) -> dict[str, dt.date]:
        with self.services.uow() as uow:
            rows = uow.session.execute(select(StudentRow.given_names, StudentRow.birth_date).join(
                StudentLinkRow, StudentLinkRow.student_id == StudentRow.id).where(
                StudentLinkRow.representative_id == representative_id)).all()
        return {str(given): born for given, born in rows}

    def _parent(self, row: RepresentativeRow) -> Person:
        return Person(row.given_names, row.family_name, phone=row.mobile_phone, children=self._children(row.id))

    def new_parent(self) -> Person:
        """A parent of the register with a mobile number and no account (activation by SMS)."""
        return self._parent(next(self._parents))

    def parent_with_account(self) -> Person:
        """A parent with an active account, a password and a verified mobile number (for recovery by SMS)."""
        row = next(self._parents)
        person = self._parent(row)
        account = self._create(NewAccount(profile=Profile.PARENT, family_name=person.family,
                                          given_names=person.given), PASSWORD)
        with self.services.uow() as uow:
            uow.accounts.link_register(account, representatives=[(row.uai, row.external_id)])
            uow.session.execute(update(AccountRow).where(AccountRow.id == account).values(
                phone=person.phone, phone_verified_at=self.services.clock.now()))
            uow.commit()
        return Person(person.given, person.family, self._identifier(account), PASSWORD, person.phone,
                      person.children)

    def provisional_pupil(self) -> Person:
        """A pupil of the register with provisional credentials (the school's letter), never logged in."""
        row = next(self._pupils)
        provisional = "Provisoire-" + secrets.token_urlsafe(6)
        account = self._create(NewAccount(profile=Profile.STUDENT, family_name=row.family_name,
                                          given_names=row.given_names, state=AccountState.PROVISIONAL,
                                          provisional_expires_at=self.services.clock.now() + dt.timedelta(days=92)),
                               provisional)
        with self.services.uow() as uow:
            uow.accounts.link_register(account, student_ines=[row.ine])
            uow.commit()
        return Person(row.given_names, row.family_name, self._identifier(account), provisional,
                      birth_date=row.birth_date)

    def franceconnect_parent(self, index: int) -> Person:
        """The parent of ``FRANCECONNECT_FAMILIES[index]``: no account, an identity at the FranceConnect-style
        provider, a mobile number in the register."""
        family, given, _ = FRANCECONNECT_FAMILIES[index]
        with self.services.uow() as uow:
            row = uow.session.scalars(select(RepresentativeRow).where(
                RepresentativeRow.family_name == family, RepresentativeRow.given_names == given)).one()
            uow.session.expunge(row)
        return Person(given, family, phone=row.mobile_phone, children=self._children(row.id))

    # --- accounts, as ``idp.storage.demo`` creates them ------------------------------------------------------

    def _create(self, new: NewAccount, password: str) -> int:
        hashed = self.services.hasher.hash(password)
        new = dataclasses.replace(new, password_hash=hashed)
        with self.services.uow() as uow:
            account = uow.accounts.add(new, identifier_base(new.given_names, new.family_name),
                                       self.services.clock.now())
            uow.commit()
        return account.id

    def _identifier(self, account_id: int) -> str:
        with self.services.uow() as uow:
            return str(uow.session.scalar(select(AccountRow.identifier).where(AccountRow.id == account_id)))
