"""The directory a service provider keeps of its own users, fed from the school register.

An ENT is fed by the academic directory (AAF) and Pronote by the school's SIECLE export; in the demo both are
the demo register of ``idp.demo_register`` (the same deterministic files the identity provider imports),
read here from its CSV files, so names, classes and links agree with the identity provider's.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from idp.demo_register import write_demo_register


@dataclass(frozen=True)
class Pupil:
    ine: str
    uai: str
    family_name: str
    given_names: str
    birth_date: dt.date
    class_code: str
    level: str
    postal_code: str
    siecle_id: str = ""  # the register's pupil id, which FrEduVecteur carries


@dataclass(frozen=True)
class Parent:
    key: str  # uai:id_responsable
    uai: str
    family_name: str
    given_names: str
    postal_code: str
    children: tuple[str, ...]  # INEs


@dataclass(frozen=True)
class Directory:
    schools: dict[str, str]  # uai -> name
    pupils: dict[str, Pupil]
    parents: tuple[Parent, ...]

    by_siecle_id: dict[str, Pupil]  # what a FrEduVecteur's id names (the register's pupil id, never the INE)


def normalise(text: str) -> str:
    """Compare names the way directories do: no accents, case or punctuation differences."""
    decomposed = unicodedata.normalize("NFKD", text.replace("Œ", "OE").replace("œ", "oe"))
    return " ".join("".join(c for c in decomposed if c.isalnum() or c.isspace() or c == "-")
                    .replace("-", " ").upper().split())


def read_register(directory: Path) -> Directory:
    """Read the four CSV files of a register export."""
    def rows(name: str) -> list[dict[str, str]]:
        with (directory / f"{name}.csv").open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle, delimiter=";"))

    schools = {r["uai"]: r["nom"] for r in rows("etablissements")}
    pupils = {r["ine"]: Pupil(r["ine"], r["uai"], r["nom"], r["prenoms"],
                              dt.datetime.strptime(r["date_naissance"], "%d/%m/%Y").date(), r["classe"],
                              r["niveau"], r["code_postal"], r.get("id_siecle") or "") for r in rows("eleves")}
    children: dict[str, list[str]] = {}
    for link in rows("liens"):
        if link["responsable_legal"] == "1":
            children.setdefault(f"{link['uai']}:{link['id_responsable']}", []).append(link["ine"])
    parents = tuple(Parent(f"{r['uai']}:{r['id_responsable']}", r["uai"], r["nom"], r["prenoms"], r["code_postal"],
                           tuple(children.get(f"{r['uai']}:{r['id_responsable']}", ())))
                    for r in rows("responsables"))
    return Directory(schools, pupils, parents, {p.siecle_id: p for p in pupils.values() if p.siecle_id})


@functools.lru_cache(maxsize=1)
def demo_directory() -> Directory:
    """The demo register, generated exactly as ``idp demo`` generates it."""
    with tempfile.TemporaryDirectory(prefix="sp-register-") as tmp:
        write_demo_register(Path(tmp))
        return read_register(Path(tmp))
