"""The CSV register reader: valid files, each validation reason with its file and line, unreadable files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from idp.core.register import validation as v
from idp.core.register.csv_format import read_csv
from idp.core.register.records import Kind, Link, Representative, RowError, School, Student

DATA = Path(__file__).resolve().parent.parent / "data" / "register" / "valid"
TODAY = dt.date(2026, 9, 1)

STUDENT_HEADER = "ine;uai;nom;prenoms;date_naissance;classe;niveau;code_postal;id_siecle"
REPRESENTATIVE_HEADER = "uai;id_responsable;nom;prenoms;telephone_portable;courriel;code_postal"
LINK_HEADER = "ine;uai;id_responsable;lien;responsable_legal"
SCHOOL_HEADER = "uai;nom;type;academie;commune"
GOOD_STUDENT = "1234567890A;0690026D;Dupont;Léa;12/03/2013;6E2;6EME;69003;1001"
GOOD_REPRESENTATIVE = "0690026D;R1;Dupont;Marie;06 12 34 56 78;marie@example.fr;69003"


def parse(tmp_path: Path, name: str, kind: Kind, *lines: str, raw: bytes | None = None) -> list:
    path = tmp_path / name
    path.write_bytes(raw if raw is not None else ("\n".join(lines) + "\n").encode())
    return list(read_csv(path, kind, TODAY))


def only_error(items: list) -> RowError:
    errors = [i for i in items if isinstance(i, RowError)]
    assert len(errors) == 1, items
    return errors[0]


def test_valid_files_give_normalised_records() -> None:
    schools = list(read_csv(DATA / "etablissements.csv", Kind.SCHOOL, TODAY))
    students = list(read_csv(DATA / "eleves.csv", Kind.STUDENT, TODAY))
    representatives = list(read_csv(DATA / "responsables.csv", Kind.REPRESENTATIVE, TODAY))
    links = list(read_csv(DATA / "liens.csv", Kind.LINK, TODAY))
    assert schools[0] == School(2, "0690026D", "Collège Jean-Moulin", "college", "Lyon", "Lyon")
    assert [s.kind for s in schools] == ["college", "lycee"]
    assert students[1] == Student(3, "1234567891B", "0690026D", "N'Diaye-Martin", "Éloïse", dt.date(2012, 11, 30),
                                  "5E1", "5EME", "69007", "1002")
    assert students[2].ine == "123456789AB"
    assert [r.mobile_phone for r in representatives] == [
        "+33612345678", "+33711223344", "+33612345600", "+33612345678", "+41791234567"]
    assert all(isinstance(r, Representative) for r in representatives)
    assert [(link.relationship, link.legal_responsibility) for link in links] == [
        ("mere", True), ("pere", True), ("mere", True), ("mere", True), ("tuteur", False)]
    assert all(isinstance(link, Link) for link in links)


def test_fingerprint_changes_with_any_field_only() -> None:
    student = next(iter(read_csv(DATA / "eleves.csv", Kind.STUDENT, TODAY)))
    assert isinstance(student, Student)
    same = Student(99, student.ine, student.uai, student.family_name, student.given_names, student.birth_date,
                   student.class_code, student.level, student.postal_code, student.external_id)
    moved = Student(2, student.ine, "0750654D", student.family_name, student.given_names, student.birth_date,
                    student.class_code, student.level, student.postal_code, student.external_id)
    assert len(student.fingerprint) == 32
    assert same.fingerprint == student.fingerprint
    assert moved.fingerprint != student.fingerprint


@pytest.mark.parametrize(("row", "reason"), [
    ("12AB;0690026D;Dupont;Léa;12/03/2013;6E2;6EME;69003;", "INE invalide « 12AB » (attendu 10 chiffres et une lettre)"),
    (";0690026D;Dupont;Léa;12/03/2013;6E2;6EME;69003;", "INE manquant"),
    ("1234567890A;690026D;Dupont;Léa;12/03/2013;6E2;6EME;69003;", "UAI invalide « 690026D »"),
    ("1234567890A;0690026D;;Léa;12/03/2013;6E2;6EME;69003;", "nom manquant"),
    ("1234567890A;0690026D;Dupont;Léa;31/02/2013;6E2;6EME;69003;",
     "date de naissance invalide « 31/02/2013 » (attendu JJ/MM/AAAA ou AAAA-MM-JJ)"),
    ("1234567890A;0690026D;Dupont;Léa;2013/03/12;6E2;6EME;69003;", "date de naissance invalide « 2013/03/12 »"),
    ("1234567890A;0690026D;Dupont;Léa;12/03/2031;6E2;6EME;69003;", "date de naissance invraisemblable « 12/03/2031 »"),
    ("1234567890A;0690026D;" + "D" * 101 + ";Léa;12/03/2013;6E2;6EME;69003;", "nom trop long (101 caractères, 100 au plus)"),
    ("1234567890A;0690026D;Dupont;Léa\x07;12/03/2013;6E2;6EME;69003;", "prenoms contient un caractère de contrôle « Léa\\x07 »"),
    ("1234567890A;0690026D;Dupont;Léa\u202e;12/03/2013;6E2;6EME;69003;", "prenoms contient un caractère de contrôle"),
    ("1234567890A;0690026D;1234;Léa;12/03/2013;6E2;6EME;69003;", "nom invalide « 1234 » (aucune lettre)"),
    ("1234567890A;0690026D;Dupont;Léa;12/03/2013;6E2;6EME;69#03;", "code postal invalide « 69#03 »"),
    ("1234567890A;0690026D;Dupont;Léa;12/03/2013;6E2;6EME", "7 champs au lieu de 9"),
    ("1234567890A;0690026D;Dupont;Léa;12/03/2013;6E2;6EME;69003;1;extra", "10 champs au lieu de 9"),
])
def test_each_student_reason_names_file_and_line(tmp_path: Path, row: str, reason: str) -> None:
    items = parse(tmp_path, "eleves.csv", Kind.STUDENT, STUDENT_HEADER, GOOD_STUDENT, row)
    error = only_error(items)
    assert str(error).startswith("eleves.csv:3: ")
    assert reason in error.reason
    assert not error.fatal
    assert isinstance(items[0], Student)


@pytest.mark.parametrize(("row", "reason"), [
    ("0690026D;R2;Dupont;Paul;12345;;69003", "numéro de téléphone invalide « 12345 »"),
    ("0690026D;R2;Dupont;Paul;08 00 00 00 00;;69003", "numéro de téléphone invalide « 08 00 00 00 00 »"),
    ("0690026D;R2;Dupont;Paul;;paul@;69003", "adresse électronique invalide « paul@ »"),
    ("0690026D;;Dupont;Paul;;;69003", "id_responsable manquant"),
    ("0690026D;R2;Dupont;;;;69003", "prénoms manquant"),
])
def test_each_representative_reason(tmp_path: Path, row: str, reason: str) -> None:
    error = only_error(parse(tmp_path, "responsables.csv", Kind.REPRESENTATIVE, REPRESENTATIVE_HEADER,
                             GOOD_REPRESENTATIVE, row))
    assert (error.file, error.line) == ("responsables.csv", 3)
    assert reason in error.reason


@pytest.mark.parametrize(("row", "reason"), [
    ("1234567890A;0690026D;R1;cousin;1", "lien inconnu « cousin »"),
    ("1234567890A;0690026D;R1;mère;peut-être", "responsable_legal invalide « peut-être » (attendu 1 ou 0, oui ou non)"),
    ("1234567890A;0690026D;;mère;1", "id_responsable manquant"),
])
def test_each_link_reason(tmp_path: Path, row: str, reason: str) -> None:
    error = only_error(parse(tmp_path, "liens.csv", Kind.LINK, LINK_HEADER, row))
    assert (error.file, error.line) == ("liens.csv", 2)
    assert reason in error.reason


def test_school_reasons(tmp_path: Path) -> None:
    items = parse(tmp_path, "etablissements.csv", Kind.SCHOOL, SCHOOL_HEADER,
                  "0690026D;Collège Jean-Moulin;université;Lyon;Lyon", "0690027E;;college;Lyon;Lyon")
    errors = [i for i in items if isinstance(i, RowError)]
    assert "type d'établissement inconnu « université »" in errors[0].reason
    assert str(errors[1]) == "etablissements.csv:3: nom manquant"


def test_rejected_rows_keep_their_key(tmp_path: Path) -> None:
    error = only_error(parse(tmp_path, "eleves.csv", Kind.STUDENT, STUDENT_HEADER,
                             "1234567890a;0690026D;Dupont;Léa;99/99/2013;6E2;6EME;69003;"))
    assert error.key == ("1234567890A",)


@pytest.mark.parametrize(("header", "reason"), [
    ("ine;uai;nom;prenom;date_naissance;classe;niveau;code_postal",
     "colonne inconnue « prenom » (en-tête attendu : ine;uai;nom;prenoms;date_naissance;classe;niveau;"
     "code_postal;id_siecle)"),
    ("ine;uai;nom;prenoms;date_naissance;classe;niveau", "colonne manquante « code_postal »"),
    ("ine;uai;nom;nom;prenoms;date_naissance;classe;niveau;code_postal", "colonne « nom » en double"),
])
def test_wrong_header_is_fatal_at_line_1(tmp_path: Path, header: str, reason: str) -> None:
    items = parse(tmp_path, "eleves.csv", Kind.STUDENT, header, GOOD_STUDENT)
    assert len(items) == 1
    assert items[0].fatal
    assert str(items[0]).startswith("eleves.csv:1: ")
    assert reason in items[0].reason


def test_bad_encoding_names_its_line(tmp_path: Path) -> None:
    latin1 = "1234567891B;0690026D;Lefèvre;Hugo;05/07/2009;;;;\n".encode("latin-1")
    raw = (STUDENT_HEADER + "\n" + GOOD_STUDENT + "\n").encode() + latin1
    items = parse(tmp_path, "eleves.csv", Kind.STUDENT, raw=raw)
    assert isinstance(items[0], Student)
    assert items[1].fatal
    assert str(items[1]) == ("eleves.csv:3: encodage invalide : octet 0xE8 en position 25 "
                             "(le fichier doit être en UTF-8)")


def test_empty_and_utf16_files_are_refused(tmp_path: Path) -> None:
    assert parse(tmp_path, "eleves.csv", Kind.STUDENT, raw=b"")[0].reason == "fichier vide ou sans ligne d'en-tête"
    utf16 = parse(tmp_path, "eleves.csv", Kind.STUDENT, raw=(STUDENT_HEADER + "\n").encode("utf-16"))
    assert utf16[0].fatal and "UTF-16" in utf16[0].reason


def test_bom_commas_quotes_spaces_and_header_case(tmp_path: Path) -> None:
    raw = ("\ufeffINE,UAI,Nom,Prénoms,Date_Naissance,Classe,Niveau,Code_Postal\n"
           '1234567890A,0690026D,"Dupont, dite «\u00a0Lili\u00a0»", Léa  Marie ,2013-03-12,6E2,6EME,69003\n'
           '1234567891B,0690026D,"Martin\nDurand",Hugo,2013-03-12,6E2,6EME,69003\n'
           "123456789ab,0690026D,Lefe\u0300vre,Zoé,2013-03-12,6E2,6EME,69003\n").encode()
    items = parse(tmp_path, "eleves.csv", Kind.STUDENT, raw=raw)
    assert [type(i) for i in items] == [Student, RowError, Student]
    first, error, third = items
    assert first.family_name == "Dupont, dite « Lili »" and first.given_names == "Léa Marie"
    assert first.external_id == ""
    assert str(error).startswith("eleves.csv:3: nom contient un caractère de contrôle")
    assert third.line == 5 and third.ine == "123456789AB" and third.family_name == "Lefèvre"


def test_trailing_empty_fields_and_blank_lines_are_tolerated(tmp_path: Path) -> None:
    items = parse(tmp_path, "eleves.csv", Kind.STUDENT, STUDENT_HEADER, GOOD_STUDENT + ";;", "", " ; ",
                  "1234567891B;0690026D;Dupont;Paul;12/03/2013;6E2;6EME;69003;")
    assert [type(i) for i in items] == [Student, Student]
    assert items[1].line == 5


@pytest.mark.parametrize(("raw", "expected"), [
    ("06 12 34 56 78", "+33612345678"), ("06.12.34.56.78", "+33612345678"), ("0612345678", "+33612345678"),
    ("+33 6 12 34 56 78", "+33612345678"), ("+33 (0)6 12 34 56 78", "+33612345678"),
    ("0033612345678", "+33612345678"), ("01 45 67 89 10", "+33145678910"), ("09 70 00 00 00", "+33970000000"),
    ("+41 79 123 45 67", "+41791234567"), ("+590 690 12 34 56", "+590690123456"), ("", ""),
])
def test_phone_numbers_become_e164(raw: str, expected: str) -> None:
    assert v.phone(raw) == expected


@pytest.mark.parametrize("raw", ["12345", "08 00 00 00 00", "+33 6 12", "06 12 34 56 78 90", "+0612345678", "abc"])
def test_implausible_phone_numbers_are_refused(raw: str) -> None:
    with pytest.raises(v.Invalid, match="numéro de téléphone invalide"):
        v.phone(raw)


def test_ine_and_uai_formats() -> None:
    assert v.ine("1234567890a") == "1234567890A"
    assert v.ine("123456789AB") == "123456789AB"
    for bad in ("12345678901", "1234567890", "A234567890B", "12345678ABC"):
        with pytest.raises(v.Invalid):
            v.ine(bad)
    assert v.uai("0690026d") == "0690026D"
    with pytest.raises(v.Invalid, match="UAI invalide"):
        v.uai("069002D")


def test_blocks_split_anywhere_give_the_same_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from idp.core.register import csv_format

    rows = [GOOD_STUDENT, '1234567891B;0690026D;"Martin\nDurand";Zoé Éloïse;12/03/2013;6E2;6EME;69003;',
            "1234567892C;0690026D;Lefèvre;Œdipe;12/03/2013;6E2;6EME;69003;"]
    raw = ("\r\n".join([STUDENT_HEADER, *rows]) + "\r\n").encode() + "1234567893D;0690026D;Lef\xe8vre".encode("latin-1")
    expected = parse(tmp_path, "eleves.csv", Kind.STUDENT, raw=raw)
    for size in (1, 7, 64):
        monkeypatch.setattr(csv_format, "_BLOCK", size)
        assert parse(tmp_path, "eleves.csv", Kind.STUDENT, raw=raw) == expected
    assert [type(i) for i in expected] == [Student, RowError, Student, RowError]
    assert expected[2].line == 5 and expected[2].given_names == "Œdipe"
    assert str(expected[3]).startswith("eleves.csv:6: encodage invalide : octet 0xE8 en position 25")


def test_record_init_takes_exactly_the_fields() -> None:
    import dataclasses
    import inspect

    for cls in (School, Student, Representative, Link):
        params = list(inspect.signature(cls.__init__).parameters)[1:]
        assert params == [f.name for f in dataclasses.fields(cls)]
        record = cls(*[f"{f.name}" for f in dataclasses.fields(cls)])
        assert [getattr(record, f.name) for f in dataclasses.fields(cls)] == params
        with pytest.raises(dataclasses.FrozenInstanceError):
            record.line = 2  # type: ignore[misc]
