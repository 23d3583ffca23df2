"""The school register as the import sees it: one frozen value per row, or an error with its file and line.

Readers (CSV, SIECLE XML) yield these one at a time; storage stages them and decides in SQL what changes.
Every record carries the line it came from so that errors found later (duplicates, unknown schools) still
point at the file.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from dataclasses import dataclass, field


class Kind(enum.StrEnum):
    """The four kinds of register rows, in the order they are imported."""

    SCHOOL = "school"
    STUDENT = "student"
    REPRESENTATIVE = "representative"
    LINK = "link"

    @property
    def label(self) -> str:
        """The French plural the summary prints."""
        return _LABELS[self]


_LABELS = {Kind.SCHOOL: "établissements", Kind.STUDENT: "élèves", Kind.REPRESENTATIVE: "responsables",
           Kind.LINK: "liens"}

#: Values of ``schools.kind``.
SCHOOL_KINDS = ("ecole", "college", "lycee", "lp", "cite_scolaire")
#: Values of ``student_links.relationship``.
RELATIONSHIPS = ("mere", "pere", "tuteur", "ase", "famille", "autre")


def digest(joined: str) -> str:
    """The 32-character fingerprint of values already joined with tabs (see ``fingerprint``)."""
    return hashlib.blake2b(joined.encode(), digest_size=16).hexdigest()


def fingerprint(*values: str) -> str:
    """A 32-character digest of normalised field values: equal data, equal fingerprint.

    Values are joined with tabs, which no field may contain (readers refuse control characters).
    """
    return digest("\t".join(values))


# The records below are frozen dataclasses whose ``__init__`` sets the instance dictionary in one call
# instead of one ``object.__setattr__`` per field: an import builds millions of them, and the generated
# frozen ``__init__`` cost as much as validating the row. tests/unit/test_register_csv.py checks that each
# ``__init__`` takes exactly the dataclass fields.
_set = object.__setattr__


@dataclass(frozen=True, init=False)
class School:
    """An établissement (``schools``)."""

    line: int
    uai: str
    name: str
    kind: str
    academie: str
    city: str

    def __init__(self, line: int, uai: str, name: str, kind: str, academie: str, city: str) -> None:
        _set(self, "__dict__", {"line": line, "uai": uai, "name": name, "kind": kind, "academie": academie,
                                "city": city})

    def values(self) -> tuple[str, ...]:
        """Field values in storage order."""
        return (self.uai, self.name, self.kind, self.academie, self.city)


@dataclass(frozen=True, init=False)
class Student:
    """A pupil, identified by INE (``students``)."""

    line: int
    ine: str
    uai: str
    family_name: str
    given_names: str
    birth_date: dt.date
    class_code: str = ""
    level: str = ""
    postal_code: str = ""
    external_id: str = ""

    def __init__(self, line: int, ine: str, uai: str, family_name: str, given_names: str, birth_date: dt.date,
                 class_code: str = "", level: str = "", postal_code: str = "", external_id: str = "") -> None:
        _set(self, "__dict__", {"line": line, "ine": ine, "uai": uai, "family_name": family_name,
                                "given_names": given_names, "birth_date": birth_date, "class_code": class_code,
                                "level": level, "postal_code": postal_code, "external_id": external_id})

    def values(self) -> tuple[str, ...]:
        """Field values in storage order (the date as AAAA-MM-JJ)."""
        return (self.ine, self.uai, self.external_id, self.family_name, self.given_names,
                self.birth_date.isoformat(), self.class_code, self.level, self.postal_code)

    @property
    def fingerprint(self) -> str:
        """Digest of every imported field."""
        return fingerprint(*self.values())


@dataclass(frozen=True, init=False)
class Representative:
    """A legal representative as one school knows them, identified by (UAI, external id)."""

    line: int
    uai: str
    external_id: str
    family_name: str
    given_names: str
    mobile_phone: str = ""
    email: str = ""
    postal_code: str = ""

    def __init__(self, line: int, uai: str, external_id: str, family_name: str, given_names: str,
                 mobile_phone: str = "", email: str = "", postal_code: str = "") -> None:
        _set(self, "__dict__", {"line": line, "uai": uai, "external_id": external_id, "family_name": family_name,
                                "given_names": given_names, "mobile_phone": mobile_phone, "email": email,
                                "postal_code": postal_code})

    def values(self) -> tuple[str, ...]:
        """Field values in storage order."""
        return (self.uai, self.external_id, self.family_name, self.given_names, self.mobile_phone, self.email,
                self.postal_code)

    @property
    def fingerprint(self) -> str:
        """Digest of every imported field."""
        return fingerprint(*self.values())


@dataclass(frozen=True, init=False)
class Link:
    """A representative's link to a pupil: (INE) → (UAI, representative external id)."""

    line: int
    ine: str
    uai: str
    representative_id: str
    relationship: str
    legal_responsibility: bool

    def __init__(self, line: int, ine: str, uai: str, representative_id: str, relationship: str,
                 legal_responsibility: bool) -> None:
        _set(self, "__dict__", {"line": line, "ine": ine, "uai": uai, "representative_id": representative_id,
                                "relationship": relationship, "legal_responsibility": legal_responsibility})

    def values(self) -> tuple[str, ...]:
        """Field values in storage order (legal responsibility as 1 or 0)."""
        return (self.ine, self.uai, self.representative_id, self.relationship,
                "1" if self.legal_responsibility else "0")

    @property
    def fingerprint(self) -> str:
        """Digest of every imported field."""
        return fingerprint(*self.values())


@dataclass(frozen=True, slots=True)
class RowError:
    """A row (or a whole file, when ``fatal``) that cannot be imported, with a French reason."""

    file: str
    line: int
    reason: str
    fatal: bool = False
    #: The key of the rejected row when it could be read (INE, or UAI and external id): a person whose row
    #: is skipped with --skip-invalid is not taken for one who left.
    key: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


Record = School | Student | Representative | Link
Parsed = Record | RowError


@dataclass
class KindCounts:
    """What an import did (or would do) to one kind of row."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    leaving: int = 0
    returned: int = 0
    invalid: int = 0

    @property
    def changed(self) -> int:
        """Rows written: added, updated, returned or marked leaving."""
        return self.added + self.updated + self.leaving + self.returned


@dataclass
class ImportReport:
    """The outcome of one import: counts per kind, the first errors and how many there were in all."""

    counts: dict[Kind, KindCounts] = field(default_factory=lambda: {k: KindCounts() for k in Kind})
    errors: list[RowError] = field(default_factory=list)
    error_total: int = 0
    applied: bool = False
    dry_run: bool = False
    seconds: float = 0.0
    uais: tuple[str, ...] = ()

    @property
    def changed(self) -> int:
        """Rows written across all kinds."""
        return sum(c.changed for c in self.counts.values())

    @property
    def has_fatal(self) -> bool:
        """Whether a whole file could not be read (never imported, even with --skip-invalid)."""
        return any(e.fatal for e in self.errors)

    def add_error(self, error: RowError, keep: int) -> None:
        """Count an error, keeping at most ``keep`` of them (fatal ones are always kept)."""
        self.error_total += 1
        if len(self.errors) < keep or error.fatal:
            self.errors.append(error)
