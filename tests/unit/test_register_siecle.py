"""SIECLE (BEE) XML exports: the fixtures of tests/data/siecle, encodings, refused and broken files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from idp.core.register.records import Link, Representative, RowError, Student
from idp.core.register.siecle import SiecleExport

DATA = Path(__file__).resolve().parent.parent / "data" / "siecle"
ELEVES = DATA / "ElevesSansAdresses.xml"
RESPONSABLES = DATA / "ResponsablesAvecAdresses.xml"
TODAY = dt.date(2026, 9, 1)


def read_all(eleves: Path = ELEVES, responsables: Path | None = RESPONSABLES) -> tuple[list, list, list]:
    export = SiecleExport(eleves, responsables, TODAY)
    return list(export.students()), list(export.representatives()), list(export.links())


def test_fixture_encodings_are_the_real_ones() -> None:
    assert ELEVES.read_bytes().startswith(b'<?xml version="1.0" encoding="ISO-8859-15"?>')
    assert "LEBŒUF".encode("iso-8859-15") in ELEVES.read_bytes()  # Œ is 0xBC only in ISO-8859-15
    assert RESPONSABLES.read_bytes().startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


def test_pupils_still_at_school_with_their_class() -> None:
    students, _, _ = read_all()
    assert students == [
        Student(11, "0701234567A", "0341234G", "LEBŒUF", "Zoé Hélène", dt.date(2014, 2, 14), "6A", "10010012110",
                "", "1234501"),
        Student(28, "0701234568B", "0341234G", "LEBŒUF", "Noé", dt.date(2011, 11, 3), "4B", "10310019110", "",
                "1234502"),
        Student(42, "070123456AB", "0341234G", "BEN SAÏD", "Yanis Karim", dt.date(2011, 6, 30), "3C",
                "10410019110", "", "1234503"),
    ]  # the fourth pupil left on 04/07/2026 (DATE_SORTIE) and is not imported


def test_people_linked_to_pupils_with_phone_mail_and_postal_code() -> None:
    _, representatives, _ = read_all()
    assert [(r.external_id, r.family_name, r.given_names, r.mobile_phone, r.email, r.postal_code)
            for r in representatives] == [
        ("880001", "LEBŒUF", "Agnès", "+33611223344", "agnes.leboeuf@example.fr", "34000"),
        ("880002", "LEBŒUF", "Hervé", "+33755443322", "", "34070"),
        ("880003", "BEN SAÏD", "Fatima", "+33698765432", "f.bensaid@example.org", "34200"),
        ("880004", "GARCIA", "Hélène", "", "", "34200"),
    ]  # 880005 is only linked to the pupil who left
    assert all(isinstance(r, Representative) and r.uai == "0341234G" for r in representatives)


def test_links_with_relationship_and_legal_responsibility() -> None:
    _, _, links = read_all()
    assert [(lk.ine, lk.representative_id, lk.relationship, lk.legal_responsibility) for lk in links] == [
        ("0701234567A", "880001", "mere", True), ("0701234567A", "880002", "pere", True),
        ("0701234568B", "880001", "mere", True), ("0701234568B", "880002", "pere", True),
        ("070123456AB", "880003", "mere", True), ("070123456AB", "880004", "famille", False),
    ]
    assert all(isinstance(lk, Link) for lk in links)


def test_the_export_names_its_school() -> None:
    export = SiecleExport(ELEVES, None, TODAY)
    assert len(list(export.students())) == 3
    assert export.uai == "0341234G"
    assert list(export.representatives()) == [] and list(export.links()) == []


def _write(tmp_path: Path, name: str, content: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode(encoding))
    return path


ELEVES_HEAD = '<?xml version="1.0" encoding="{enc}"?>\n<BEE_ELEVES VERSION="3.1">\n'
MINIMAL = ("<PARAMETRES><UAJ>0341234G</UAJ></PARAMETRES>\n<DONNEES><ELEVES>\n"
           '<ELEVE ELEVE_ID="1"><ID_NATIONAL>{ine}</ID_NATIONAL><NOM_DE_FAMILLE>DUPONT</NOM_DE_FAMILLE>'
           "<PRENOM>Léa</PRENOM><DATE_NAISS>{born}</DATE_NAISS></ELEVE>\n"
           "</ELEVES></DONNEES></BEE_ELEVES>\n")


def test_iso_8859_1_declaration_is_honoured(tmp_path: Path) -> None:
    path = _write(tmp_path, "e.xml", ELEVES_HEAD.format(enc="ISO-8859-1") + MINIMAL.format(ine="1234567890A",
                                                                                          born="01/02/2013"),
                  "iso-8859-1")
    students = list(SiecleExport(path, None, TODAY).students())
    assert students[0].given_names == "Léa"


def test_bad_pupil_row_is_reported_with_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "ElevesSansAdresses.xml",
                  ELEVES_HEAD.format(enc="UTF-8") + MINIMAL.format(ine="12AB", born="01/02/2013"))
    (error,) = list(SiecleExport(path, None, TODAY).students())
    assert isinstance(error, RowError) and not error.fatal
    assert str(error) == ("ElevesSansAdresses.xml:5: INE invalide « 12AB » (attendu 10 chiffres et une lettre)")


@pytest.mark.parametrize("declaration", [
    '<!DOCTYPE BEE_ELEVES [<!ENTITY x "boom">]>\n',
    '<!DOCTYPE BEE_ELEVES SYSTEM "http://example.invalid/bee.dtd">\n',
    "<!-- " + "x" * 20000 + " -->\n<!DOCTYPE BEE_ELEVES [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n",
])
def test_doctype_and_entities_are_refused(tmp_path: Path, declaration: str) -> None:
    content = '<?xml version="1.0" encoding="UTF-8"?>\n' + declaration + "<BEE_ELEVES>" + MINIMAL.format(
        ine="1234567890A", born="01/02/2013").replace("<BEE_ELEVES>", "")
    path = _write(tmp_path, "ElevesSansAdresses.xml", content)
    (error,) = list(SiecleExport(path, None, TODAY).students())
    assert error.fatal
    assert "déclaration DOCTYPE ou ENTITY refusée" in error.reason
    assert error.file == "ElevesSansAdresses.xml"


def test_malformed_xml_is_fatal_with_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "ElevesSansAdresses.xml", ELEVES_HEAD.format(enc="UTF-8") + "<PARAMETRES>\n<UAJ>x</PARAM")
    (error,) = list(SiecleExport(path, None, TODAY).students())
    assert error.fatal and error.line == 4 and "XML mal formé" in error.reason


def test_files_given_the_wrong_way_round_are_refused() -> None:
    (error,) = list(SiecleExport(RESPONSABLES, None, TODAY).students())
    assert error.fatal and "racine <BEE_RESPONSABLES> au lieu de <BEE_ELEVES>" in error.reason


def test_responsables_of_another_school_are_refused(tmp_path: Path) -> None:
    other = _write(tmp_path, "ResponsablesAvecAdresses.xml",
                   RESPONSABLES.read_text(encoding="utf-8").replace("<UAJ>0341234G</UAJ>", "<UAJ>0750654D</UAJ>"))
    students, representatives, links = read_all(responsables=other)
    assert len(students) == 3
    assert representatives[0].fatal and "UAJ « 0750654D » différent" in representatives[0].reason
    assert links[0].fatal


def test_missing_uaj_is_fatal(tmp_path: Path) -> None:
    path = _write(tmp_path, "ElevesSansAdresses.xml", ELEVES_HEAD.format(enc="UTF-8") + MINIMAL.format(
        ine="1234567890A", born="01/02/2013").replace("<UAJ>0341234G</UAJ>", ""))
    (error,) = list(SiecleExport(path, None, TODAY).students())
    assert error.fatal and "PARAMETRES/UAJ absent" in error.reason
