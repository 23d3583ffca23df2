"""Pronote's own users (fed from the school register, as Pronote is by SIECLE), the join with a CAS
identity, and the generated timetable and marks of the demo (deterministic per pupil)."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

from sp_adapters.common.directory import Directory, normalise
from sp_adapters.common.store import Store

DDL = """
CREATE TABLE IF NOT EXISTS pupils (
    ine TEXT PRIMARY KEY, uai TEXT NOT NULL, family_name TEXT NOT NULL, given_names TEXT NOT NULL,
    birth_date TEXT NOT NULL, class_code TEXT NOT NULL, postal_code TEXT NOT NULL DEFAULT '',
    cas_id TEXT
);
CREATE TABLE IF NOT EXISTS parents (
    key TEXT PRIMARY KEY, uai TEXT NOT NULL, family_name TEXT NOT NULL, given_names TEXT NOT NULL,
    postal_code TEXT NOT NULL DEFAULT '', cas_id TEXT
);
CREATE TABLE IF NOT EXISTS parent_children (parent_key TEXT NOT NULL, ine TEXT NOT NULL, PRIMARY KEY (parent_key, ine));
CREATE TABLE IF NOT EXISTS schools (uai TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notice_read (cas_id TEXT PRIMARY KEY, read_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS pupils_cas ON pupils (cas_id);
CREATE INDEX IF NOT EXISTS parents_cas ON parents (cas_id);
"""


def load(store: Store, directory: Directory) -> None:
    """Fill Pronote's users once (the yearly import from the school register)."""
    if store.one("SELECT 1 FROM schools LIMIT 1") is not None:
        return
    with store.connect() as conn:
        conn.executemany("INSERT OR IGNORE INTO schools VALUES (?, ?)", directory.schools.items())
        conn.executemany("INSERT OR IGNORE INTO pupils (ine, uai, family_name, given_names, birth_date, class_code, "
                         "postal_code) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         [(p.ine, p.uai, p.family_name, p.given_names, p.birth_date.isoformat(), p.class_code,
                           p.postal_code) for p in directory.pupils.values()])
        conn.executemany("INSERT OR IGNORE INTO parents (key, uai, family_name, given_names, postal_code) "
                         "VALUES (?, ?, ?, ?, ?)",
                         [(r.key, r.uai, r.family_name, r.given_names, r.postal_code) for r in directory.parents])
        conn.executemany("INSERT OR IGNORE INTO parent_children VALUES (?, ?)",
                         [(r.key, ine) for r in directory.parents for ine in r.children])


@dataclass(frozen=True)
class Person:
    kind: str  # "eleve" | "parent"
    family_name: str
    given_names: str
    pupils: tuple[dict[str, Any], ...]  # the pupil themself, or a parent's children


def _first(attributes: dict[str, list[str]], name: str) -> str:
    values = attributes.get(name) or [""]
    return values[0]


def _pupils(store: Store, where: str, *params: Any) -> tuple[dict[str, Any], ...]:
    rows = store.all("SELECT p.*, s.name AS school FROM pupils p JOIN schools s ON s.uai = p.uai "
                     f"WHERE {where} ORDER BY p.birth_date", *params)  # noqa: S608 - fixed fragments
    return tuple(dict(r) for r in rows)


def _by_cas_id(store: Store, cas_id: str) -> Person | None:
    own = _pupils(store, "p.cas_id = ?", cas_id)
    if own:
        return Person("eleve", own[0]["family_name"], own[0]["given_names"], own)
    parent = store.one("SELECT * FROM parents WHERE cas_id = ?", cas_id)
    if parent is None:
        return None
    children = _pupils(store, "p.ine IN (SELECT ine FROM parent_children pc JOIN parents r ON r.key = pc.parent_key "
                              "WHERE r.cas_id = ?)", cas_id)
    return Person("parent", parent["family_name"], parent["given_names"], children)


def join(store: Store, cas_id: str, attributes: dict[str, list[str]]) -> Person | None:
    """The Pronote user this CAS identity is: by its stored "identifiant CAS", or else by the attributes
    (``nom``, ``prenom``, ``dateNaissance`` for a pupil, ``uai``, ``categories``), stored once joined.
    None when no single user matches (the "lien Pronote inactif" case)."""
    known = _by_cas_id(store, cas_id)
    if known is not None:
        return known
    family, given = normalise(_first(attributes, "nom")), normalise(_first(attributes, "prenom"))
    uais = set(attributes.get("uai", []))
    categories = set(attributes.get("categories", []))
    if not family or not given:
        return None
    if "National_1" in categories:
        try:
            born = dt.datetime.strptime(_first(attributes, "dateNaissance"), "%d/%m/%Y").date().isoformat()
        except ValueError:
            return None
        found = [r for r in store.all("SELECT ine, uai, family_name, given_names FROM pupils WHERE birth_date = ? "
                                      "AND cas_id IS NULL", born)
                 if normalise(r["family_name"]) == family and normalise(r["given_names"]) == given
                 and (not uais or r["uai"] in uais)]
        if len(found) != 1:
            return None
        store.run("UPDATE pupils SET cas_id = ? WHERE ine = ?", cas_id, found[0]["ine"])
    elif "National_2" in categories:
        rows = [r for r in store.all("SELECT key, uai, family_name, given_names FROM parents WHERE cas_id IS NULL")
                if normalise(r["family_name"]) == family and normalise(r["given_names"]) == given
                and r["uai"] in uais]
        if not rows or len({r["uai"] for r in rows}) != len(rows):  # two namesakes in one school: ambiguous
            return None
        with store.connect() as conn:
            conn.executemany("UPDATE parents SET cas_id = ? WHERE key = ?", [(cas_id, r["key"]) for r in rows])
    else:
        return None
    return _by_cas_id(store, cas_id)


SUBJECTS = {
    "college": ("Français", "Mathématiques", "Histoire-géographie", "Anglais", "SVT", "Physique-chimie",
                "Technologie", "EPS", "Arts plastiques", "Éducation musicale"),
    "lycee": ("Français", "Mathématiques", "Histoire-géographie", "Anglais", "Espagnol", "SES",
              "Physique-chimie", "SVT", "EPS", "Enseignement moral et civique"),
}
DAYS = ("Lundi", "Mardi", "Mercredi", "Jeudi", "Vendredi")
SLOTS = ("8h00", "9h00", "10h15", "11h15", "13h30", "14h30", "15h45")


def _subjects(class_code: str) -> tuple[str, ...]:
    return SUBJECTS["lycee" if class_code[:1] in "21T" and not class_code.startswith(("2E",)) else "college"]


def timetable(class_code: str) -> list[tuple[str, list[str]]]:
    """The class's week (same for every pupil of the class); Wednesday afternoon free."""
    rng = random.Random(f"edt-{class_code}")
    subjects = _subjects(class_code)
    week = []
    for day in DAYS:
        slots = SLOTS[:4] if day == "Mercredi" else SLOTS
        week.append((day, [f"{slot} {rng.choice(subjects)}" for slot in slots]))
    return week


def marks(ine: str, class_code: str) -> list[dict[str, Any]]:
    """This term's marks of a pupil (out of 20, with the class average)."""
    rng = random.Random(f"notes-{ine}")
    start = dt.date(2026, 9, 14)
    out = []
    for number, subject in enumerate(rng.sample(_subjects(class_code), 6)):
        mark = round(min(20, max(3, rng.gauss(13, 3.5))) * 2) / 2
        out.append({"date": (start + dt.timedelta(days=7 * number + rng.randrange(5))).strftime("%d/%m/%Y"),
                    "subject": subject, "mark": f"{mark:g}".replace(".", ","),
                    "average": f"{round(rng.uniform(10, 14), 1):g}".replace(".", ",")})
    return out
