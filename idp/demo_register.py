"""The demo register: the seeds' schools, a few hundred pupils and their parents, as the four CSV files.

Deterministic (seeded), so the ready accounts `idp demo` prints are the same on every machine. Some
families have children in two schools, as in real life, to show one parent account reaching both.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from dataclasses import dataclass
from pathlib import Path

UAI_KEYS = "ABCDEFGHJKLMNPRSTUVWXYZ"


def uai_with_key(number: str) -> str:
    """Add the check letter to a 7-digit establishment number (number mod 23 in the UAI alphabet)."""
    return number + UAI_KEYS[int(number) % 23]


@dataclass(frozen=True)
class DemoSchool:
    uai: str
    name: str
    kind: str
    academie: str
    city: str
    postal_code: str
    classes: tuple[str, ...]
    level_prefix: str


SCHOOLS = (
    DemoSchool(uai_with_key("0301442"), "Collège Claude Chappe", "college", "Montpellier",
               "Gallargues-le-Montueux", "30660", ("6A", "6B", "5A", "4A", "3A"), "college"),
    DemoSchool(uai_with_key("0340011"), "Cité scolaire Henri IV", "cite_scolaire", "Montpellier", "Béziers",
               "34500", ("6E1", "5E2", "3E1", "2GT1", "1G2", "TG3"), "mixed"),
    DemoSchool(uai_with_key("0341766"), "Collège Théodore Monod", "college", "Montpellier", "Vendargues",
               "34740", ("6C", "5C", "4C", "3C"), "college"),
    DemoSchool(uai_with_key("0341234"), "Collège Frédéric Bazille", "college", "Montpellier",
               "Castelnau-le-Lez", "34170", ("6D", "5D", "4D", "3D"), "college"),
    DemoSchool("0690026D", "Lycée du Parc", "lycee", "Lyon", "Lyon", "69006", ("2NDE1", "2NDE4", "1G3", "TG2"),
               "lycee"),
)

LEVELS = {"6": "6EME", "5": "5EME", "4": "4EME", "3": "3EME", "2": "2NDE", "1": "1ERE", "T": "TLE"}

FAMILY_NAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
    "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier",
    "Morel", "Girard", "André", "Mercier", "Dupont", "Lambert", "Bonnet", "François", "Martinez", "Legrand",
    "Garnier", "Faure", "Rousseau", "Blanc", "Guérin", "Muller", "Henry", "Roussel", "Nicolas", "Perrin",
    "Da Silva", "N'Diaye", "Saint-Exupéry", "de La Fontaine", "Le Gall", "Benali", "Nguyen", "Œuvray",
)
GIVEN_CHILD = ("Léa", "Hugo", "Chloé", "Lucas", "Emma", "Nathan", "Inès", "Louis", "Jade", "Gabriel", "Zoé",
               "Adam", "Manon", "Raphaël", "Camille", "Noah", "Sarah", "Enzo", "Lina", "Mathis", "Élodie", "Yanis")
GIVEN_PARENT_F = ("Marie", "Nathalie", "Isabelle", "Sylvie", "Catherine", "Sandrine", "Céline", "Aurélie",
                  "Fatima", "Hélène", "Sophie", "Virginie", "Anne-Laure", "Karima")
GIVEN_PARENT_M = ("Jean", "Philippe", "Pierre", "Nicolas", "Christophe", "Stéphane", "Frédéric", "Laurent",
                  "Karim", "Olivier", "Sébastien", "Jean-Marc", "Mohamed", "Thierry")

#: The families the demo prints as ready accounts (fixed, so the README can name them).
FEATURED = {
    "two_schools": ("Dupuis", "Sandrine", ("Camille", 0, "5A"), ("Théo", 1, "2GT1")),
    "not_activated": ("Lefort", "Karim", ("Inès", 2, "4C"), None),
    "provisional_pupil": ("Moulin", "Hélène", ("Noé", 4, "2NDE1"), None),
}

#: Parents without an account whose family names occur nowhere else in the register, each with one child: the
#: FranceConnect-style provider of the demo has an identity for each (``sp_adapters/franceconnect``), so that
#: every service can be reached through FranceConnect by a parent of its own (the browser matrix). Written
#: after the random families, with a random generator of their own: the rest of the register is unchanged.
FRANCECONNECT_FAMILIES = (
    ("Vauclair", "Anouk", ("Maëlys", 0, "6A")),
    ("Roquebrune", "Damien", ("Jules", 1, "3E1")),
    ("Peyrolles", "Odile", ("Timéo", 2, "5C")),
    ("Mirabel", "Bastien", ("Lise", 3, "4D")),
)


def _ine(rng: random.Random, used: set[str]) -> str:
    while True:
        ine = f"{rng.randrange(10**9):09d}{rng.randrange(10)}{rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}"
        if ine not in used:
            used.add(ine)
            return ine


def _phone(rng: random.Random) -> str:
    return f"0{rng.choice('67')}{rng.randrange(10**8):08d}"


def _level(class_code: str) -> str:
    return LEVELS.get(class_code[0], "")


def _birth(rng: random.Random, class_code: str) -> dt.date:
    age = {"6": 11, "5": 12, "4": 13, "3": 14, "2": 15, "1": 16, "T": 17}.get(class_code[0], 12)
    return dt.date(2026 - age - 1, 9, 1) + dt.timedelta(days=rng.randrange(365))


class _Writer:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.files = {name: (directory / f"{name}.csv").open("w", encoding="utf-8", newline="")
                      for name in ("etablissements", "eleves", "responsables", "liens")}
        self.out = {name: csv.writer(handle, delimiter=";") for name, handle in self.files.items()}
        self.out["etablissements"].writerow(["uai", "nom", "type", "academie", "commune"])
        self.out["eleves"].writerow(["ine", "uai", "nom", "prenoms", "date_naissance", "classe", "niveau",
                                     "code_postal", "id_siecle"])
        self.out["responsables"].writerow(["uai", "id_responsable", "nom", "prenoms", "telephone_portable",
                                           "courriel", "code_postal"])
        self.out["liens"].writerow(["ine", "uai", "id_responsable", "lien", "responsable_legal"])
        self.rep_ids: dict[tuple[str, str], str] = {}
        self.pupils = 0

    def close(self) -> None:
        for handle in self.files.values():
            handle.close()

    def pupil(self, rng: random.Random, ine: str, school: DemoSchool, family: str, given: str, class_code: str) -> None:
        self.pupils += 1  # SIECLE's ELEVE_ID: the pupil id FrEduVecteur carries (never the INE)
        self.out["eleves"].writerow([ine, school.uai, family, given, _birth(rng, class_code).strftime("%d/%m/%Y"),
                                     class_code, _level(class_code), school.postal_code, str(1000000 + self.pupils)])

    def parent(self, school: DemoSchool, person_key: str, family: str, given: str, phone: str, email: str,
               ine: str, relationship: str) -> None:
        key = (school.uai, person_key)
        if key not in self.rep_ids:
            self.rep_ids[key] = f"R{len(self.rep_ids) + 1:05d}"
            self.out["responsables"].writerow([school.uai, self.rep_ids[key], family, given, phone, email,
                                               school.postal_code])
        self.out["liens"].writerow([ine, school.uai, self.rep_ids[key], relationship, "1"])


def write_demo_register(directory: Path, pupils_per_class: int = 14, seed: int = 2026) -> dict[str, str]:
    """Write the four CSV files into ``directory``; return the featured people's INEs by role."""
    rng = random.Random(seed)
    used: set[str] = set()
    writer = _Writer(directory)
    featured: dict[str, str] = {}
    try:
        for school in SCHOOLS:
            writer.out["etablissements"].writerow([school.uai, school.name, school.kind, school.academie,
                                                   school.city])
        for role, (family, parent_given, *children) in FEATURED.items():
            phone, person = _phone(rng), f"featured-{role}"
            for child in (c for c in children if c):
                given, school_index, class_code = child
                ine = _ine(rng, used)
                featured.setdefault(role, ine)
                school = SCHOOLS[school_index]
                writer.pupil(rng, ine, school, family, given, class_code)
                writer.parent(school, person, family, parent_given, phone, "", ine, "mere")
        _random_families(rng, writer, used, pupils_per_class)
        _franceconnect_families(random.Random(seed + 1), writer, used)
    finally:
        writer.close()
    return featured


def _franceconnect_families(rng: random.Random, writer: _Writer, used: set[str]) -> None:
    for family, parent_given, (given, school_index, class_code) in FRANCECONNECT_FAMILIES:
        ine, school = _ine(rng, used), SCHOOLS[school_index]
        writer.pupil(rng, ine, school, family, given, class_code)
        writer.parent(school, f"franceconnect-{family}", family, parent_given, _phone(rng), "", ine, "mere")


def _random_families(rng: random.Random, writer: _Writer, used: set[str], pupils_per_class: int) -> None:
    for number, school in enumerate(SCHOOLS):
        for class_code in school.classes:
            for _ in range(pupils_per_class):
                family = rng.choice(FAMILY_NAMES)
                ine = _ine(rng, used)
                writer.pupil(rng, ine, school, family, rng.choice(GIVEN_CHILD), class_code)
                key = f"{family}-{rng.randrange(10**6)}"
                mother = rng.choice(GIVEN_PARENT_F)
                phone = _phone(rng) if rng.random() < 0.9 else ""
                email = f"{mother.lower()[:1]}.{number}{rng.randrange(10**5)}@example.org" if rng.random() < 0.6 else ""
                writer.parent(school, key + "-m", family, mother, phone, email, ine, "mere")
                if rng.random() < 0.7:
                    writer.parent(school, key + "-p", family, rng.choice(GIVEN_PARENT_M), _phone(rng), "", ine, "pere")
                if rng.random() < 0.08:
                    # A sibling in another school: same parent, recorded again by that school.
                    other = SCHOOLS[(number + 1) % len(SCHOOLS)]
                    sib = _ine(rng, used)
                    writer.pupil(rng, sib, other, family, rng.choice(GIVEN_CHILD), rng.choice(other.classes))
                    writer.parent(other, key + "-m", family, mother, phone, email, sib, "mere")
