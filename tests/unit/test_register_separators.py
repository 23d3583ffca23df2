"""Names and pupil ids that would break a composite attribute (``FrEduVecteur``) are refused at import, in both
register formats, with a message naming the file and the row (SECURITY C16; issue 21 item 3)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from idp.core.register.csv_format import read_csv
from idp.core.register.records import Kind, RowError, Student
from idp.core.register.siecle import SiecleExport

TODAY = dt.date(2026, 9, 1)
STUDENT_HEADER = "ine;uai;nom;prenoms;date_naissance;classe;niveau;code_postal;id_siecle"
REPRESENTATIVE_HEADER = "uai;id_responsable;nom;prenoms;telephone_portable;courriel;code_postal"
GOOD_STUDENT = "1234567890A;0690026D;Dupont;Léa;12/03/2013;6E2;6EME;69003;1001"
SEPARATOR_REASON = "contient le caractère « | », interdit"


def _csv(tmp_path: Path, name: str, kind: Kind, *lines: str) -> list:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return list(read_csv(path, kind, TODAY))


@pytest.mark.parametrize(("row", "label"), [
    ("1234567890A;0690026D;Dupont|3|X;Léa;12/03/2013;6E2;6EME;69003;1001", "nom"),
    ("1234567890A;0690026D;Dupont;Léa|9999|0750654D;12/03/2013;6E2;6EME;69003;1001", "prénoms"),
    ('1234567890A;0690026D;"Dupont |";Léa;12/03/2013;6E2;6EME;69003;1001', "nom"),
    ("1234567890A;0690026D;Dupont;Léa;12/03/2013;6E2;6EME;69003;10|0750654D", "id_siecle"),
])
def test_a_pupil_row_with_the_separator_is_refused_naming_file_and_row(tmp_path: Path, row: str,
                                                                       label: str) -> None:
    items = _csv(tmp_path, "eleves.csv", Kind.STUDENT, STUDENT_HEADER, GOOD_STUDENT, row)
    assert isinstance(items[0], Student)
    (error,) = [i for i in items if isinstance(i, RowError)]
    assert str(error).startswith(f"eleves.csv:3: {label} {SEPARATOR_REASON}")
    assert error.key == ("1234567890A",)  # remembered: the pupil is not taken for one who left


def test_a_line_break_inside_a_quoted_name_is_refused(tmp_path: Path) -> None:
    items = _csv(tmp_path, "eleves.csv", Kind.STUDENT, STUDENT_HEADER,
                 '1234567890A;0690026D;"Dupont\n4|X|Y|1|0750654D";Léa;12/03/2013;6E2;6EME;69003;1001')
    (error,) = items
    assert isinstance(error, RowError)
    assert str(error).startswith("eleves.csv:2: nom contient un caractère de contrôle")


def test_a_representative_name_with_the_separator_is_refused(tmp_path: Path) -> None:
    (error,) = _csv(tmp_path, "responsables.csv", Kind.REPRESENTATIVE, REPRESENTATIVE_HEADER,
                    "0690026D;R1;Dupont;Marie|1|X;06 12 34 56 78;;69003")
    assert isinstance(error, RowError)
    assert str(error).startswith(f"responsables.csv:2: prénoms {SEPARATOR_REASON}")


ELEVES = ('<?xml version="1.0" encoding="UTF-8"?>\n<BEE_ELEVES VERSION="3.1">\n'
          "<PARAMETRES><UAJ>0341234G</UAJ></PARAMETRES>\n<DONNEES><ELEVES>\n"
          '<ELEVE ELEVE_ID="{eid}"><ID_NATIONAL>1234567890A</ID_NATIONAL><NOM_DE_FAMILLE>{nom}</NOM_DE_FAMILLE>'
          "<PRENOM>{prenom}</PRENOM><DATE_NAISS>01/02/2013</DATE_NAISS></ELEVE>\n"
          "</ELEVES></DONNEES></BEE_ELEVES>\n")


@pytest.mark.parametrize(("eid", "nom", "prenom", "reason"), [
    ("1", "DUPONT|4|X", "Léa", f"NOM_DE_FAMILLE {SEPARATOR_REASON}"),
    ("1", "DUPONT", "Léa|1|0750654D", f"PRENOM {SEPARATOR_REASON}"),
    ("1", "DUPONT&#10;4|X", "Léa", "NOM_DE_FAMILLE contient un caractère de contrôle"),
    ("1", "DUPONT", "Lé&#13;a", "PRENOM contient un caractère de contrôle"),
    ("1|0750654D", "DUPONT", "Léa", f"ELEVE_ID {SEPARATOR_REASON}"),
])
def test_siecle_rows_with_a_separator_or_a_control_character_are_refused(tmp_path: Path, eid: str, nom: str,
                                                                         prenom: str, reason: str) -> None:
    path = tmp_path / "ElevesSansAdresses.xml"
    path.write_text(ELEVES.format(eid=eid, nom=nom, prenom=prenom), encoding="utf-8")
    (error,) = list(SiecleExport(path, None, TODAY).students())
    assert isinstance(error, RowError) and not error.fatal
    assert str(error).startswith(f"ElevesSansAdresses.xml:5: {reason}")
