"""The consistency check run after every fault (``idp check``): each invariant it watches, broken on purpose."""

from __future__ import annotations

import datetime as dt

from conftest import AccountFactory
from sqlalchemy import text, update

from idp.core.accounts.model import Profile
from idp.storage.consistency import check_consistency
from idp.storage.db import autocommit_engine
from idp.storage.models import AccountRow, RepresentativeRow, SchoolRow, StudentRow
from idp.wiring import Services

NOW = dt.datetime(2026, 9, 1, 8, tzinfo=dt.UTC)


def _register(services: Services) -> tuple[int, int]:
    with services.db.sessionmaker() as s:
        s.add(SchoolRow(uai="0690026D", name="Collège", kind="college", academie="Lyon", updated_at=NOW))
        s.flush()
        student = StudentRow(ine="123456789AB", uai="0690026D", family_name="Dupont", given_names="Léa",
                             birth_date=dt.date(2012, 5, 1), fingerprint="x", updated_at=NOW)
        rep = RepresentativeRow(uai="0690026D", external_id="r1", family_name="Dupont", given_names="Marie",
                                fingerprint="x", updated_at=NOW)
        s.add_all([student, rep])
        s.commit()
        return student.id, rep.id


def checks(services: Services) -> set[str]:
    with services.db.sessionmaker() as s:
        return {p.check for p in check_consistency(s)}


def test_a_consistent_database_passes(services: Services, account_factory: AccountFactory) -> None:
    _, rep = _register(services)
    account = account_factory()
    with services.db.sessionmaker() as s:
        s.execute(update(RepresentativeRow).where(RepresentativeRow.id == rep).values(account_id=account.id))
        s.commit()
    assert checks(services) == set()


def test_each_broken_invariant_is_named(services: Services, account_factory: AccountFactory) -> None:
    student, rep = _register(services)
    lonely = account_factory("Paul", "Martin")  # attached to no register record
    parent = account_factory()
    with services.db.sessionmaker() as s:
        s.execute(update(StudentRow).where(StudentRow.id == student).values(account_id=parent.id))  # wrong profile
        s.execute(update(RepresentativeRow).where(RepresentativeRow.id == rep).values(account_id=parent.id))
        s.execute(update(AccountRow).where(AccountRow.id == lonely.id)
                  .values(identifier=parent.identifier.upper()))  # same identifier but for the case
        s.commit()
    found = checks(services)
    assert {"accounts_without_record", "duplicate_identifiers", "profile_mismatch"} <= found
    assert parent.profile is Profile.PARENT


def test_orphans_are_found_when_constraints_were_not_there(services: Services) -> None:
    _register(services)
    # Outside a transaction (SQLite reads the pragma only there), on one connection.
    with autocommit_engine(services.db.engine).connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(text("PRAGMA foreign_keys=OFF"))
        else:
            conn.execute(text("SET session_replication_role = replica"))  # what a restore without FKs leaves
        conn.execute(text("INSERT INTO student_links (student_id, representative_id, relationship, "
                          "legal_responsibility, status, fingerprint, updated_at) VALUES (999999, 999998, '', "
                          "true, 'present', 'x', :now)"), {"now": NOW})
        conn.execute(text("UPDATE representatives SET account_id = 999997"))
        conn.execute(text("PRAGMA foreign_keys=ON" if conn.dialect.name == "sqlite"
                          else "RESET session_replication_role"))  # the pooled connection goes back as it came
    assert {"orphan_links", "dangling_representative_accounts"} <= checks(services)
