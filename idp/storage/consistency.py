"""The database's invariants, checked after any fault (``idp check``; the fault tests run it after each one).

Each check is one query returning the ids that break it: links to register records that do not exist,
register records pointing at accounts that do not exist, accounts (not closed) attached to no register record
(the register is the source of truth: an account exists only for a person in it), identifiers that differ
only by case, and accounts attached to a record of the other profile.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from idp.storage.models import AccountRow, RepresentativeRow, StudentLinkRow, StudentRow

SAMPLE = 10


@dataclass(frozen=True)
class Problem:
    """One broken invariant: what it is, how many rows break it and a few of their ids."""

    check: str
    description: str
    count: int
    sample: tuple[int, ...]


def _checks() -> list[tuple[str, str, Select[tuple[int]]]]:
    student = select(StudentRow.id).where(StudentRow.id == StudentLinkRow.student_id)
    representative = select(RepresentativeRow.id).where(RepresentativeRow.id == StudentLinkRow.representative_id)
    account_of = select(AccountRow.id)
    return [
        ("orphan_links", "liens élève–représentant vers une fiche du registre absente",
         select(StudentLinkRow.id).where(or_(~exists(student), ~exists(representative)))),
        ("dangling_student_accounts", "fiches d'élève rattachées à un compte absent",
         select(StudentRow.id).where(StudentRow.account_id.is_not(None),
                                     ~exists(account_of.where(AccountRow.id == StudentRow.account_id)))),
        ("dangling_representative_accounts", "fiches de représentant rattachées à un compte absent",
         select(RepresentativeRow.id).where(
             RepresentativeRow.account_id.is_not(None),
             ~exists(account_of.where(AccountRow.id == RepresentativeRow.account_id)))),
        ("accounts_without_record", "comptes (non clos) rattachés à aucune fiche du registre",
         select(AccountRow.id).where(
             AccountRow.state != "closed",
             ~exists(select(StudentRow.id).where(StudentRow.account_id == AccountRow.id)),
             ~exists(select(RepresentativeRow.id).where(RepresentativeRow.account_id == AccountRow.id)))),
        ("duplicate_identifiers", "identifiants en double (à la casse près)",
         select(func.min(AccountRow.id)).group_by(func.lower(AccountRow.identifier))
         .having(func.count() > 1)),
        ("profile_mismatch", "comptes rattachés à une fiche de l'autre profil",
         select(AccountRow.id).where(or_(
             and_(AccountRow.profile != "student",
                  exists(select(StudentRow.id).where(StudentRow.account_id == AccountRow.id))),
             and_(AccountRow.profile != "parent",
                  exists(select(RepresentativeRow.id).where(RepresentativeRow.account_id == AccountRow.id)))))),
    ]


def check_consistency(session: Session) -> list[Problem]:
    """Run every check; an empty list means the database keeps all its invariants."""
    problems = []
    for name, description, query in _checks():
        ids = [int(i) for i in session.scalars(query.limit(1000)).all()]
        if ids:
            problems.append(Problem(name, description, len(ids), tuple(sorted(ids)[:SAMPLE])))
    return problems
