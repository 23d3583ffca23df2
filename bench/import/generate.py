"""Write a generated school register as the four CSV files of docs/register-format.md, streaming.

    python bench/import/generate.py OUT_DIR [--people 1000000] [--schools 500] [--seed 42]

Families are drawn one at a time (1 to 3 children, 1 or 2 parents); a parent gets one representative record
per school their children attend, so parents with children in two schools appear twice, as in real exports.
About 40 % of the people are pupils. Names are French, with accents, hyphens and apostrophes. Nothing is
kept in memory but the school list; the same seed gives the same files.
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

FAMILY_NAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau", "Simon",
    "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier", "Morel",
    "Girard", "André", "Lefebvre", "Mercier", "Dupont", "Lambert", "Bonnet", "François", "Martínez", "Legrand",
    "Garnier", "Faure", "Rousseau", "Blanc", "Guérin", "Müller", "Henry", "Roussel", "Nicolas", "Perrin",
    "Morin", "Mathieu", "Clément", "Gauthier", "Dumont", "Lopez", "Fontaine", "Chevalier", "Robin", "N'Diaye",
    "Le Gall", "Da Silva", "Nguyen", "Benali", "Saint-Martin", "Lebœuf", "Côté", "Ferré", "Brière", "Hoarau",
    "Payet", "Traoré", "Kowalski", "Ben Saïd", "Le Goff", "D'Almeida", "Gaillard-Roche", "Besançon", "Thérond",
)
GIVEN_F = ("Léa", "Chloé", "Manon", "Emma", "Inès", "Jade", "Louise", "Zoé", "Éloïse", "Anaïs", "Maëlys", "Clémence",
           "Marie", "Camille", "Sarah", "Océane", "Awa", "Fatoumata", "Agnès", "Hélène", "Noémie", "Anne-Sophie")
GIVEN_M = ("Lucas", "Hugo", "Louis", "Gabriel", "Raphaël", "Arthur", "Noé", "Jules", "Théo", "Léo", "Maël", "Adam",
           "Mohamed", "Yanis", "Mathéo", "Jean-Baptiste", "François", "Benoît", "Jérôme", "Loïc", "Hervé", "Aurélien")
ACADEMIES = (("Montpellier", "34"), ("Toulouse", "31"), ("Lyon", "69"), ("Paris", "75"), ("Créteil", "94"),
             ("Versailles", "78"), ("Aix-Marseille", "13"), ("Nantes", "44"), ("Lille", "59"), ("Bordeaux", "33"),
             ("La Réunion", "97"), ("Grenoble", "38"))
CITIES = ("Saint-Étienne", "Béziers", "Nîmes", "Sète", "Albi", "Villeurbanne", "Bourg-en-Bresse", "Créteil",
          "Évry-Courcouronnes", "Aix-en-Provence", "Saint-Nazaire", "Roubaix", "Mérignac", "Saint-Denis", "Échirolles")
PATRONS = ("Jean-Moulin", "Victor-Hugo", "Marie-Curie", "Jules-Ferry", "Simone-Veil", "Louise-Michel",
           "Albert-Camus", "George-Sand", "Condorcet", "Jean-Jaurès", "Frédéric-Mistral", "Olympe-de-Gouges")
#: (kind, label, ((level, class prefix, age), …))
KINDS = (("college", "Collège", (("6EME", "6E", 11), ("5EME", "5E", 12), ("4EME", "4E", 13), ("3EME", "3E", 14))),
         ("lycee", "Lycée", (("2NDE", "2DE", 15), ("1ERE", "1G", 16), ("TLE", "TG", 17))),
         ("ecole", "École", (("CP", "CP-", 6), ("CE1", "CE1-", 7), ("CE2", "CE2-", 8), ("CM1", "CM1-", 9),
                             ("CM2", "CM2-", 10))))
UAI_KEYS = "ABCDEFGHJKLMNPRSTUVWXYZ"


@dataclass(frozen=True)
class School:
    uai: str
    kind: int
    postal: str
    academie: str


def _schools(rng: random.Random, count: int) -> list[School]:
    schools: list[School] = []
    used: set[int] = set()
    while len(schools) < count:
        academie, dept = rng.choice(ACADEMIES)
        number = int(dept) * 10_000 + rng.randrange(10_000)
        if number in used:
            continue
        used.add(number)
        uai = f"{number:07d}{UAI_KEYS[number % 23]}"
        kind = 0 if len(schools) % 10 < 6 else 1 if len(schools) % 10 < 9 else 2
        schools.append(School(uai, kind, f"{dept}{rng.randrange(1000):03d}", academie))
    return schools


def _school_rows(rng: random.Random, schools: list[School]) -> list[str]:
    rows = []
    for school in schools:
        kind, label = KINDS[school.kind][:2]
        rows.append(f"{school.uai};{label} {rng.choice(PATRONS)};{kind};{school.academie};{rng.choice(CITIES)}\n")
    return rows


def _phone(rng: random.Random) -> str:
    if rng.random() < 0.03:
        return f"+32 4{rng.randrange(10**7, 10**8)}"
    digits = f"0{rng.choice('67')}{rng.randrange(10**8):08d}"
    return " ".join(digits[i:i + 2] for i in range(0, 10, 2)) if rng.random() < 0.7 else digits


class Generator:
    """Draws families and writes their rows to the three people files."""

    def __init__(self, out: Path, people: int, school_count: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.out, self.people = out, people
        self.schools = _schools(self.rng, school_count)
        self.pupils = self.records = self.links = 0
        self.next_parent = 1

    def run(self) -> None:
        """Write etablissements.csv, eleves.csv, responsables.csv and liens.csv."""
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "etablissements.csv").write_text(
            "uai;nom;type;academie;commune\n" + "".join(_school_rows(self.rng, self.schools)), encoding="utf-8")
        with (self.out / "eleves.csv").open("w", encoding="utf-8") as eleves, \
                (self.out / "responsables.csv").open("w", encoding="utf-8") as responsables, \
                (self.out / "liens.csv").open("w", encoding="utf-8") as liens:
            eleves.write("ine;uai;nom;prenoms;date_naissance;classe;niveau;code_postal;id_siecle\n")
            responsables.write("uai;id_responsable;nom;prenoms;telephone_portable;courriel;code_postal\n")
            liens.write("ine;uai;id_responsable;lien;responsable_legal\n")
            while self.pupils + self.records < self.people:
                self._family(eleves, responsables, liens)

    def _family(self, eleves: TextIO, responsables: TextIO, liens: TextIO) -> None:
        rng = self.rng
        family = rng.choice(FAMILY_NAMES)
        budget = self.people - self.pupils - self.records
        parents = [("mere", rng.choice(GIVEN_F)), ("pere", rng.choice(GIVEN_M))][: 2 if rng.random() < 0.8 else 1]
        children = min(rng.choices((1, 2, 3), (50, 35, 15))[0], max(1, budget - len(parents)))
        first = rng.choice(self.schools)
        placed = [first if i == 0 or rng.random() < 0.6 else rng.choice(self.schools) for i in range(children)]
        kids = []
        for school in placed:
            self.pupils += 1
            kids.append((f"{self.pupils + 7_000_000:010d}{'ABCDEFGHJKLMNPRSTUVWXYZ'[self.pupils % 23]}", school))
            level, prefix, age = rng.choice(KINDS[school.kind][2])
            given = rng.choice(GIVEN_F + GIVEN_M) + (f" {rng.choice(GIVEN_F + GIVEN_M)}" if rng.random() < .3 else "")
            eleves.write(f"{kids[-1][0]};{school.uai};{family};{given};{rng.randrange(1, 29):02d}/"
                         f"{rng.randrange(1, 13):02d}/{2026 - age};{prefix}{rng.randrange(1, 6)};{level};"
                         f"{school.postal};{self.pupils}\n")
        schools = {s.uai: s for s in placed}
        for relation, given in parents:
            parent_id, self.next_parent = self.next_parent, self.next_parent + 1
            phone = _phone(rng) if rng.random() < 0.92 else ""
            mail = f"{given.lower()[:3]}.{parent_id}@example.fr" if rng.random() < 0.6 else ""
            for school in schools.values():
                if self.pupils + self.records >= self.people:
                    break
                self.records += 1
                responsables.write(f"{school.uai};P{parent_id};{family};{given};{phone};{mail};{school.postal}\n")
                for ine, kid_school in kids:
                    if kid_school.uai == school.uai:
                        self.links += 1
                        legal = "1" if rng.random() < 0.97 else "0"
                        liens.write(f"{ine};{school.uai};P{parent_id};{relation};{legal}\n")


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--schools", type=int, default=500)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    generator = Generator(args.out, args.people, args.schools, args.seed)
    generator.run()
    print(f"{generator.pupils + generator.records} people: {generator.pupils} pupils, {generator.records} "
          f"representative records, {generator.links} links, {len(generator.schools)} schools → {args.out}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
