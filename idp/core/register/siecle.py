"""SIECLE (BEE) XML exports of one school: ``ElevesSansAdresses.xml`` and ``ResponsablesAvecAdresses.xml``.

Elements read (docs/register-format.md says which are confirmed from public importers and which are
assumptions):

- élèves: ``BEE_ELEVES/PARAMETRES/UAJ``; ``DONNEES/ELEVES/ELEVE[@ELEVE_ID]`` with ``ID_NATIONAL`` (INE),
  ``NOM_DE_FAMILLE`` (or ``NOM`` in older exports), ``PRENOM``, ``PRENOM2``, ``PRENOM3``, ``DATE_NAISS``
  (JJ/MM/AAAA), ``CODE_MEF`` (level), ``DATE_SORTIE`` (a pupil who has left is not imported);
  ``DONNEES/STRUCTURES/STRUCTURES_ELEVE[@ELEVE_ID]/STRUCTURE`` with ``CODE_STRUCTURE`` where
  ``TYPE_STRUCTURE`` is ``D`` (the class).
- responsables: ``BEE_RESPONSABLES/PARAMETRES/UAJ``; ``DONNEES/PERSONNES/PERSONNE[@PERSONNE_ID]`` with
  ``NOM_DE_FAMILLE`` (or ``NOM``), ``PRENOM``, ``TEL_PORTABLE``, ``MEL``, ``ADRESSE_ID``;
  ``DONNEES/RESPONSABLES/RESPONSABLE_ELEVE`` with ``ELEVE_ID``, ``PERSONNE_ID``, ``RESP_LEGAL``,
  ``CODE_PARENTE``; ``DONNEES/ADRESSES/ADRESSE[@ADRESSE_ID]/CODE_POSTAL``.

An export covers one school, so the small maps kept here (pupil id → INE, class per pupil, postal code per
address) are bounded by the size of a school, whatever the number of files imported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

from idp.core.register import validation as v
from idp.core.register.records import Link, Parsed, Representative, RowError, Student
from idp.core.register.xml_stream import Element, XmlRefused, elements

ELEVES_ROOT = "BEE_ELEVES"
RESPONSABLES_ROOT = "BEE_RESPONSABLES"
#: SIECLE ``CODE_PARENTE`` (nomenclature LIEN_PARENTE) → ``student_links.relationship``.
PARENTE = {"10": "mere", "20": "pere", "50": "tuteur", "51": "ase", "30": "famille", "37": "famille",
           "38": "famille", "39": "famille"}
_LEGAL = {"1": True, "2": True, "0": False, "": False}


class SiecleExport:
    """The élèves (and optionally responsables) export of one school, read as register records."""

    def __init__(self, eleves: Path, responsables: Path | None, today: dt.date) -> None:
        self.eleves, self.responsables, self.today = eleves, responsables, today
        self.uai = ""
        self._ine_by_id: dict[str, str] = {}
        self._postal_by_address: dict[str, str] = {}
        self._linked_persons: set[str] = set()
        self._persons: set[str] = set()
        self._prepared = False

    def students(self) -> Iterator[Parsed]:
        """The pupils still at school, or errors (a file-level problem is fatal)."""
        try:
            divisions = self._read_parameters_and_divisions()
            for element in elements(self.eleves, frozenset({"ELEVE"}), ELEVES_ROOT):
                student = self._student(element, divisions)
                if student is not None:
                    yield student
        except (XmlRefused, v.Invalid) as exc:
            yield _fatal(self.eleves, exc)

    def representatives(self) -> Iterator[Parsed]:
        """The people linked to a pupil of the export, or errors."""
        if self.responsables is None:
            return
        try:
            self._prepare_responsables(self.responsables)
            for element in elements(self.responsables, frozenset({"PERSONNE"}), RESPONSABLES_ROOT):
                person_id = element.get("PERSONNE_ID")
                if person_id in self._linked_persons:
                    yield self._representative(self.responsables, element, person_id)
        except (XmlRefused, v.Invalid) as exc:
            yield _fatal(self.responsables, exc)

    def links(self) -> Iterator[Parsed]:
        """Pupil ↔ representative links of pupils still at school, or errors."""
        if self.responsables is None:
            return
        try:
            self._prepare_responsables(self.responsables)
            for element in elements(self.responsables, frozenset({"RESPONSABLE_ELEVE"}), RESPONSABLES_ROOT):
                link = self._link(self.responsables, element)
                if link is not None:
                    yield link
        except (XmlRefused, v.Invalid) as exc:
            yield _fatal(self.responsables, exc)

    # --- élèves -----------------------------------------------------------------------------------

    def _read_parameters_and_divisions(self) -> dict[str, str]:
        divisions: dict[str, str] = {}
        uaj = ""
        for element in elements(self.eleves, frozenset({"PARAMETRES", "STRUCTURES_ELEVE"}), ELEVES_ROOT):
            if element.tag == "PARAMETRES":
                uaj = element.get("UAJ")
                continue
            for _tag, structure in element.groups:
                if structure.get("TYPE_STRUCTURE", "").strip().upper() == "D":
                    divisions[element.get("ELEVE_ID")] = structure.get("CODE_STRUCTURE", "")
        if not uaj:
            raise XmlRefused(1, "élément PARAMETRES/UAJ absent : établissement inconnu")
        self.uai = v.uai(uaj)
        return divisions

    def _student(self, e: Element, divisions: dict[str, str]) -> Parsed | None:
        if self._has_left(e.get("DATE_SORTIE")):
            return None
        eleve_id = e.get("ELEVE_ID")
        raw_ine = e.get("ID_NATIONAL")
        given = " ".join(p for p in (e.get("PRENOM"), e.get("PRENOM2"), e.get("PRENOM3")) if p)
        try:
            student = Student(
                line=e.line, ine=v.ine(raw_ine), uai=self.uai,
                family_name=v.name(e.get("NOM_DE_FAMILLE") or e.get("NOM"), "NOM_DE_FAMILLE"),
                given_names=v.name(given, "PRENOM"), birth_date=v.birth_date(e.get("DATE_NAISS"), self.today),
                class_code=v.code(divisions.get(eleve_id, ""), "CODE_STRUCTURE"),
                level=v.code(e.get("CODE_MEF"), "CODE_MEF"),
                external_id=v.pupil_id(eleve_id, "ELEVE_ID", required=True))
        except v.Invalid as exc:
            key = (raw_ine.strip().upper(),) if raw_ine.strip() else ()
            return RowError(self.eleves.name, e.line, str(exc), key=key)
        self._ine_by_id[eleve_id] = student.ine
        return student

    def _has_left(self, date_sortie: str) -> bool:
        if not date_sortie:
            return False
        try:
            return v.date(date_sortie, "DATE_SORTIE") <= self.today
        except v.Invalid:
            return False

    # --- responsables -----------------------------------------------------------------------------

    def _prepare_responsables(self, path: Path) -> None:
        if self._prepared:
            return
        if not self.uai:
            self._read_parameters_and_divisions()
        if not self._ine_by_id:
            for element in elements(self.eleves, frozenset({"ELEVE"}), ELEVES_ROOT):
                if not self._has_left(element.get("DATE_SORTIE")):
                    self._ine_by_id[element.get("ELEVE_ID")] = element.get("ID_NATIONAL").strip().upper()
        wanted = frozenset({"PARAMETRES", "PERSONNE", "RESPONSABLE_ELEVE", "ADRESSE"})
        for element in elements(path, wanted, RESPONSABLES_ROOT):
            self._remember(path, element)
        self._prepared = True

    def _remember(self, path: Path, element: Element) -> None:
        if element.tag == "PARAMETRES" and element.get("UAJ").strip().upper() != self.uai:
            raise XmlRefused(element.line, f"UAJ « {element.get('UAJ')} » différent de celui du fichier "
                                           f"{self.eleves.name} ({self.uai})")
        if element.tag == "ADRESSE":
            self._postal_by_address[element.get("ADRESSE_ID")] = element.get("CODE_POSTAL")
        elif element.tag == "PERSONNE":
            self._persons.add(element.get("PERSONNE_ID"))
        elif element.tag == "RESPONSABLE_ELEVE" and element.get("ELEVE_ID") in self._ine_by_id:
            self._linked_persons.add(element.get("PERSONNE_ID"))

    def _representative(self, path: Path, e: Element, person_id: str) -> Parsed:
        try:
            return Representative(
                line=e.line, uai=self.uai, external_id=v.code(person_id, "PERSONNE_ID", required=True),
                family_name=v.name(e.get("NOM_DE_FAMILLE") or e.get("NOM"), "NOM_DE_FAMILLE"),
                given_names=v.name(e.get("PRENOM"), "PRENOM"), mobile_phone=v.phone(e.get("TEL_PORTABLE")),
                email=v.email(e.get("MEL")),
                postal_code=v.postal_code(self._postal_by_address.get(e.get("ADRESSE_ID"), "")))
        except v.Invalid as exc:
            return RowError(path.name, e.line, str(exc), key=(self.uai, person_id) if person_id else ())

    def _link(self, path: Path, e: Element) -> Parsed | None:
        ine = self._ine_by_id.get(e.get("ELEVE_ID"))
        if ine is None:
            return None  # a pupil who left, or whose own row is already reported
        person_id = e.get("PERSONNE_ID")
        if person_id not in self._persons:
            return RowError(path.name, e.line, f"PERSONNE_ID « {person_id} » sans élément PERSONNE")
        resp_legal = e.get("RESP_LEGAL").strip()
        if resp_legal not in _LEGAL:
            return RowError(path.name, e.line, f"RESP_LEGAL invalide « {resp_legal} » (attendu 0, 1 ou 2)",
                            key=(ine, self.uai, person_id))
        return Link(line=e.line, ine=ine, uai=self.uai, representative_id=person_id,
                    relationship=PARENTE.get(e.get("CODE_PARENTE").strip(), "autre"),
                    legal_responsibility=_LEGAL[resp_legal])


def _fatal(path: Path, exc: XmlRefused | v.Invalid) -> RowError:
    if isinstance(exc, XmlRefused):
        return RowError(path.name, exc.line, exc.reason, fatal=True)
    return RowError(path.name, 1, f"PARAMETRES/UAJ : {exc}", fatal=True)
