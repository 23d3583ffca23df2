"""Matching an upstream pivot identity to legal representatives of the register, documented here.

The pivot identity (FranceConnect) carries the birth name (``family_name``), the usage name if any
(``preferred_username``), every given name (``given_name``, space separated), the birth date and place.
The register holds, for a representative, one family name (birth or usage name, as the school typed it) and
one or more given names; it holds no birth date for representatives, so the match is on names only and is
never enough to link: an identity that matches is then confirmed like the SMS route (SECURITY F06).

Normalisation is the activation route's (``idp.core.activation.matching.name_key``): NFKC, case folding,
accents and ligatures removed, everything but letters dropped, so ``Élodie`` = ``ELODIE``,
``N'Diaye`` = ``ndiaye``, ``Saint-Exupéry`` = ``SAINT EXUPERY``.

- family: the register's family name equals the birth name or the usage name;
- given names: the register's given names, joined, equal the first one, or the first two, … of the
  pivot's given names joined (``Sophie`` and ``Sophie Anne`` both match ``Sophie Anne Marie``;
  ``Jean-Pierre`` matches ``Jean Pierre``; ``Jean`` does not match ``Jean-Pierre``).

Records of one person: a parent has one record per school. Records that share a mobile number or an
account are one candidate; distinct candidates mean the match is ambiguous, and nothing is linked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from idp.core.activation.matching import name_key, parse_phone
from idp.core.activation.model import RepresentativeRecord

MAX_CLAIM = 200


@dataclass(frozen=True)
class PivotIdentity:
    """What the upstream provider says about the person (only what matching and pages need)."""

    issuer: str
    sub: str
    given_name: str
    family_name: str
    preferred_username: str = ""
    birthdate: str = ""

    @property
    def display_name(self) -> str:
        first = self.given_name.split()[0] if self.given_name.split() else ""
        return f"{first} {self.preferred_username or self.family_name}".strip()


def family_keys(pivot: PivotIdentity) -> list[str]:
    """The comparison forms of the names the register may hold: birth name, usage name."""
    keys = [name_key(pivot.family_name), name_key(pivot.preferred_username)]
    return sorted({k for k in keys if k})


def given_keys(pivot: PivotIdentity) -> list[str]:
    """The first given name, the first two joined, …: the forms a register's given names may take."""
    tokens = [name_key(t) for t in pivot.given_name.split()]
    tokens = [t for t in tokens if t]
    return ["".join(tokens[:n]) for n in range(1, len(tokens) + 1)]


def record_matches(pivot: PivotIdentity, family_name: str, given_names: str) -> bool:
    """True when the register's names designate the pivot identity (rules in the module docstring)."""
    family = name_key(family_name)
    given = name_key(given_names)
    return bool(family and given) and family in family_keys(pivot) and given in given_keys(pivot)


def candidates(pivot: PivotIdentity, records: Sequence[RepresentativeRecord]) -> list[list[RepresentativeRecord]]:
    """The matching records grouped by person: same mobile number or same account means same person."""
    matching = [r for r in records if record_matches(pivot, r.family_name, r.given_names)]
    groups: list[list[RepresentativeRecord]] = []
    for record in sorted(matching, key=lambda r: r.id):
        phone = parse_phone(record.mobile_phone) if record.mobile_phone else None
        home = next((g for g in groups if any(_same_person(record, phone, other) for other in g)), None)
        if home is None:
            groups.append([record])
        else:
            home.append(record)
    return groups


def _same_person(record: RepresentativeRecord, phone: str | None, other: RepresentativeRecord) -> bool:
    if record.account_id is not None and record.account_id == other.account_id:
        return True
    other_phone = parse_phone(other.mobile_phone) if other.mobile_phone else None
    return phone is not None and phone == other_phone
