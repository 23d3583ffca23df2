"""Accounts in SQL, with identifier numbering that stays unique under concurrent creation."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Sequence
from string import digits
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Select, bindparam, func, or_, select, union_all, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.core.accounts.identifiers import format_identifier, next_free_number
from idp.core.accounts.model import Account, AccountState, NewAccount, Profile
from idp.errors import IdentifierTaken

# The module, not its names: activation_store is still loading when models.py brings this module in.
from idp.storage import activation_store as tx_store
from idp.storage import locks
from idp.storage.models import (
    AccountRow,
    Executor,
    RepresentativeRow,
    SchoolRow,
    StudentLinkRow,
    StudentRow,
    table_of,
)
from idp.storage.pgexec import PgStatement

_ST, _SC = table_of(StudentRow), table_of(SchoolRow)
_SL, _RP = table_of(StudentLinkRow), table_of(RepresentativeRow)
def linked_records_of(account_id: Any) -> Select[Any]:
    """A pupil's own record, or a parent's present children with legal responsibility, with their school, for the
    account ``account_id`` (a bound parameter, or a column of an enclosing statement)."""
    children = (
        select(_SL.c.student_id).select_from(_SL.join(_RP, _RP.c.id == _SL.c.representative_id))
        .where(_RP.c.account_id == account_id, _RP.c.status == "present", _SL.c.status == "present",
               _SL.c.legal_responsibility.is_(True))
    )
    return (
        select(_ST.c.id, _ST.c.ine, _ST.c.external_id, _ST.c.family_name, _ST.c.given_names, _ST.c.birth_date,
               _ST.c.uai, _SC.c.name.label("school"), _SC.c.kind.label("school_kind"), _ST.c.class_code, _ST.c.level,
               _ST.c.postal_code, _ST.c.status)
        .select_from(_ST.join(_SC, _SC.c.uai == _ST.c.uai))
        .where(_ST.c.status == "present", or_(_ST.c.account_id == account_id, _ST.c.id.in_(children)))
    )


_LINKED_RECORDS = linked_records_of(bindparam("account_id"))


def distinct_records(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """``linked_records``' rows, each record once (by id, without it), in name order."""
    seen = {row["id"]: {k: v for k, v in row.items() if k != "id"} for row in rows}
    return sorted(seen.values(), key=lambda r: (r["family_name"], r["given_names"]))


_AC = table_of(AccountRow)
# Core, compiled once (an ORM-annotated ``select(RepresentativeRow.postal_code)`` built per call went through a
# whole ORM Session at each SAML, OIDC or CAS answer releasing a parent's postal code).
_POSTAL_CODE = select(_RP.c.postal_code).where(_RP.c.account_id == bindparam("account_id"),
                                               _RP.c.postal_code != "").limit(1)
_BY_IDENTIFIER = select(_AC).where(_AC.c.identifier == bindparam("identifier"))
_PG_BY_IDENTIFIER = PgStatement(_BY_IDENTIFIER)  # every password login: psycopg directly on PostgreSQL
_BY_ID = select(_AC).where(_AC.c.id == bindparam("account_id"))
# The language rides on the last-login UPDATE: NULL keeps the stored one, so an unchanged language costs nothing.
_RECORD_LOGIN = update(_AC).where(_AC.c.id == bindparam("account_id")).values(
    last_login_at=bindparam("at"),
    language=func.coalesce(bindparam("language", type_=_AC.c.language.type), _AC.c.language))
_SET_LANGUAGE = update(_AC).where(_AC.c.id == bindparam("account_id")).values(language=bindparam("language"))


def to_account(row: AccountRow | Row[Any] | SimpleNamespace) -> Account:
    """Turn a row into the core's value."""
    return Account(
        id=row.id, public_id=row.public_id, identifier=row.identifier, profile=Profile(row.profile),
        state=AccountState(row.state), family_name=row.family_name, given_names=row.given_names,
        password_hash=row.password_hash, must_change_password=row.must_change_password,
        provisional_expires_at=row.provisional_expires_at, email=row.email,
        email_verified=row.email_verified_at is not None, phone=row.phone,
        phone_verified=row.phone_verified_at is not None, created_at=row.created_at,
        last_login_at=row.last_login_at, register_changed_at=row.register_changed_at, language=row.language,
    )


def _lock_name(identifier_base: str) -> str:
    """What creations and reservations of one base's identifiers lock: they pick numbers one at a time."""
    return f"identifier:{identifier_base}"


class SqlAccountRepository:
    """``AccountRepository`` on SQLAlchemy."""

    def __init__(self, session: Executor, dialect: str = "") -> None:
        self._s = session
        self._postgres = dialect == "postgresql"

    def get(self, account_id: int) -> Account | None:
        row = self._s.execute(_BY_ID, {"account_id": account_id}).first()
        return to_account(row) if row else None

    def by_identifier(self, identifier: str) -> Account | None:
        if self._postgres:
            found = _PG_BY_IDENTIFIER.first(self._s, {"identifier": identifier})
            return to_account(SimpleNamespace(**found)) if found else None
        row = self._s.execute(_BY_IDENTIFIER, {"identifier": identifier}).first()
        return to_account(row) if row else None

    def _free_identifier(self, session: Session, identifier_base: str, at: dt.datetime) -> str:
        """Lock the base, then ``base`` + one more than the highest number an account holds or a live activation
        transaction has reserved. The lock stays until commit, so the same number cannot be handed out twice."""
        locks.hold(session, _lock_name(identifier_base))
        like, tx = identifier_base + "%", tx_store.ActivationTxRow
        taken = session.scalars(union_all(
            select(_AC.c.identifier).where(_AC.c.identifier.like(like)),
            select(tx.reserved_identifier).where(tx.reserved_identifier.like(like), tx_store.reservation_holds(at))))
        return format_identifier(identifier_base, next_free_number(identifier_base, taken))

    def reserve_identifier(self, identifier_base: str, transaction_id: str, at: dt.datetime) -> str:
        """Reserve the next free identifier of this base for the activation transaction ``transaction_id``: while
        that transaction lives, no other creation or reservation is given it. An ended reservation of the same
        identifier is released first (the unique index allows one holder)."""
        session = self._session()
        identifier = self._free_identifier(session, identifier_base, at)
        tx = tx_store.ActivationTxRow
        session.execute(update(tx).where(tx.reserved_identifier == identifier, ~tx_store.reservation_holds(at))
                        .values(reserved_identifier=None))
        session.execute(update(tx).where(tx.id == transaction_id).values(reserved_identifier=identifier))
        return identifier

    def add(self, new: NewAccount, identifier_base: str, at: dt.datetime, *,
            reserved_by: str | None = None) -> Account:
        """Insert an account under the next free identifier of its base, or, with ``reserved_by``, under exactly
        the identifier that activation transaction reserved (``IdentifierTaken`` once it is no longer its own)."""
        session = self._session()
        if reserved_by is None:
            identifier = self._free_identifier(session, identifier_base, at)
        else:
            identifier = self._reserved(session, reserved_by)
        row = AccountRow(
            public_id=secrets.token_hex(16), identifier=identifier,
            profile=new.profile.value, state=new.state.value, family_name=new.family_name,
            given_names=new.given_names, password_hash=new.password_hash,
            password_changed_at=at if new.password_hash else None,
            must_change_password=new.must_change_password, provisional_expires_at=new.provisional_expires_at,
            email=new.email, phone=new.phone, created_at=at,
        )
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            if reserved_by is None:
                raise
            raise IdentifierTaken() from None  # reservation expired, then the identifier went to a new account
        return to_account(row)

    def _reserved(self, session: Session, transaction_id: str) -> str:
        """The identifier the transaction holds, its base locked (as by every creation and reservation of it)."""
        tx = tx_store.ActivationTxRow
        held = select(tx.reserved_identifier).where(tx.id == transaction_id)
        identifier: str | None = session.scalar(held)
        if not identifier:
            raise IdentifierTaken()
        locks.hold(session, _lock_name(identifier.rstrip(digits)))
        if session.scalar(held) != identifier:  # released and reserved again before the lock
            raise IdentifierTaken()
        return identifier

    def _session(self) -> Session:
        if not isinstance(self._s, Session):
            raise TypeError("accounts are created in a unit of work's transaction, not in autocommit")
        return self._s

    def set_password_hash(self, account_id: int, password_hash: str, at: dt.datetime, *, changed: bool) -> None:
        values: dict[str, object] = {"password_hash": password_hash}
        if changed:
            values.update(password_changed_at=at, must_change_password=False)
        self._s.execute(update(_AC).where(_AC.c.id == account_id).values(**values))

    def set_state(self, account_id: int, state: AccountState, at: dt.datetime) -> None:
        values: dict[str, object] = {"state": state.value}
        if state is AccountState.CLOSED:
            values["closed_at"] = at
        self._s.execute(update(AccountRow).where(AccountRow.id == account_id).values(**values))

    def record_login(self, account_id: int, at: dt.datetime, language: str | None = None) -> None:
        self._s.execute(_RECORD_LOGIN, {"account_id": account_id, "at": at, "language": language})

    def set_language(self, account_id: int, language: str) -> None:
        self._s.execute(_SET_LANGUAGE, {"account_id": account_id, "language": language})

    def search(self, text: str, limit: int) -> Sequence[Account]:
        query = select(_AC).order_by(_AC.c.identifier).limit(limit)
        if text:
            like = f"%{text.lower()}%"
            query = query.where(or_(AccountRow.identifier.like(like), func.lower(AccountRow.family_name).like(like)))
        return [to_account(r) for r in self._s.execute(query)]

    def related_names(self, account_id: int) -> Sequence[str]:
        """Names of the register records linked to the account and of a parent's children."""
        reps = select(RepresentativeRow.family_name, RepresentativeRow.given_names).where(
            RepresentativeRow.account_id == account_id)
        kids = (select(StudentRow.family_name, StudentRow.given_names)
                .join(StudentLinkRow, StudentLinkRow.student_id == StudentRow.id)
                .join(RepresentativeRow, RepresentativeRow.id == StudentLinkRow.representative_id)
                .where(RepresentativeRow.account_id == account_id))
        own = select(StudentRow.family_name, StudentRow.given_names).where(StudentRow.account_id == account_id)
        names: list[str] = []
        for query in (reps, kids, own):
            for family, given in self._s.execute(query):
                names.extend([family, *given.split()])
        return sorted({n for n in names if n})

    def linked_records(self, account_id: int) -> Sequence[dict[str, Any]]:
        """The register records of the account: a pupil's own, or a parent's children (one Core query)."""
        return distinct_records(self._s.execute(_LINKED_RECORDS, {"account_id": account_id}).mappings())

    def postal_code(self, account_id: int) -> str:
        """A parent's postal code from their register record(s), or ``""``."""
        code = self._s.scalars(_POSTAL_CODE, {"account_id": account_id}).first()
        return code or ""

    def claim_register(self, account_id: int, *, student_ines: Sequence[str] = (),
                       representatives: Sequence[tuple[str, str]] = ()) -> int:
        """Like ``link_register`` but only records no account holds yet (``WHERE account_id IS NULL``): the
        caller compares the count with what it asked for, so two concurrent activations make one account."""
        linked = 0
        if student_ines:
            result = self._s.execute(update(StudentRow).where(
                StudentRow.ine.in_(list(student_ines)), StudentRow.account_id.is_(None)).values(account_id=account_id))
            linked += int(result.rowcount)  # type: ignore[attr-defined]
        for uai, external_id in representatives:
            result = self._s.execute(update(RepresentativeRow).where(
                RepresentativeRow.uai == uai, RepresentativeRow.external_id == external_id,
                RepresentativeRow.account_id.is_(None)).values(account_id=account_id))
            linked += int(result.rowcount)  # type: ignore[attr-defined]
        return linked

    def set_email(self, account_id: int, email: str, verified_at: dt.datetime | None) -> None:
        """Set the e-mail address; verified only when ``verified_at`` is given."""
        self._s.execute(update(AccountRow).where(AccountRow.id == account_id)
                        .values(email=email, email_verified_at=verified_at))

    def set_phone(self, account_id: int, phone: str, verified_at: dt.datetime | None) -> None:
        """Set the mobile number (E.164); verified only when ``verified_at`` is given."""
        self._s.execute(update(AccountRow).where(AccountRow.id == account_id)
                        .values(phone=phone, phone_verified_at=verified_at))

    def set_provisional(self, account_id: int, password_hash: str, expires_at: dt.datetime) -> bool:
        """Give a still-provisional account new provisional credentials (a reissued letter)."""
        result = self._s.execute(update(AccountRow).where(
            AccountRow.id == account_id, AccountRow.state == AccountState.PROVISIONAL.value).values(
            password_hash=password_hash, provisional_expires_at=expires_at))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def activate_provisional(self, account_id: int, password_hash: str, at: dt.datetime) -> bool:
        """Provisional → active with the chosen password; only one caller wins (conditional update)."""
        result = self._s.execute(update(AccountRow).where(
            AccountRow.id == account_id, AccountRow.state == AccountState.PROVISIONAL.value).values(
            state=AccountState.ACTIVE.value, password_hash=password_hash, password_changed_at=at,
            must_change_password=False, provisional_expires_at=None))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def with_verified_contact(self, *, phone: str = "", email: str = "") -> Sequence[Account]:
        """Active accounts whose verified phone number or e-mail address is this one."""
        query = select(_AC).where(_AC.c.state == AccountState.ACTIVE.value)
        if phone:
            query = query.where(AccountRow.phone == phone, AccountRow.phone_verified_at.is_not(None))
        elif email:
            query = query.where(func.lower(AccountRow.email) == email.lower(), AccountRow.email_verified_at.is_not(None))
        else:
            return []
        return [to_account(r) for r in self._s.execute(query.order_by(_AC.c.identifier).limit(10))]

    def link_register(self, account_id: int, *, student_ines: Sequence[str] = (),
                      representatives: Sequence[tuple[str, str]] = ()) -> int:
        """Attach register records to the account: a pupil's own record, a parent's records (uai, id)."""
        linked = 0
        if student_ines:
            result = self._s.execute(update(StudentRow).where(StudentRow.ine.in_(list(student_ines)))
                                     .values(account_id=account_id))
            linked += int(result.rowcount)  # type: ignore[attr-defined]
        for uai, external_id in representatives:
            result = self._s.execute(update(RepresentativeRow).where(
                RepresentativeRow.uai == uai, RepresentativeRow.external_id == external_id).values(account_id=account_id))
            linked += int(result.rowcount)  # type: ignore[attr-defined]
        return linked
