"""``idp import csv|siecle`` and ``idp purge`` as an operator runs them: output, exit codes, no stack traces."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from idp.storage.db import Database

DATA = Path(__file__).resolve().parent.parent / "data"
VALID = DATA / "register" / "valid"
SIECLE = DATA / "siecle"


def rows(db: Database, table: str) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())  # noqa: S608


def copy_valid(tmp_path: Path) -> Path:
    target = tmp_path / "registre"
    shutil.copytree(VALID, target)
    return target


def no_traceback(result: Any) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_import_a_directory(runner: Any, clean_db: Database) -> None:
    result = runner("import", "csv", str(VALID))
    assert result.exit_code == 0, result.output
    assert "Import terminé en" in result.stdout
    assert "élèves           ajoutés       3" in result.stdout
    assert "liens            ajoutés       5" in result.stdout
    assert rows(clean_db, "students") == 3
    again = runner("import", "csv", str(VALID))
    assert again.exit_code == 0 and "inchangés       3  partants       0" in again.stdout


def test_import_keys_the_representatives_names_for_federation(runner: Any, clean_db: Database) -> None:
    """After an import every representative has the comparison form of its name (FranceConnect matching
    needs it), so the first federated login does not key the whole register."""
    from idp.core.activation.matching import name_key

    assert runner("import", "csv", str(VALID)).exit_code == 0
    with clean_db.engine.connect() as conn:
        keyed = dict(conn.execute(text("SELECT k.family_key, r.family_name FROM federation_name_keys k "
                                       "JOIN representatives r ON r.id = k.representative_id")).all())
    assert len(keyed) and rows(clean_db, "federation_name_keys") == rows(clean_db, "representatives")
    assert all(key == name_key(name) for key, name in keyed.items())
    assert runner("import", "csv", str(VALID)).exit_code == 0  # nothing changed: nothing re-keyed, no duplicate
    assert rows(clean_db, "federation_name_keys") == rows(clean_db, "representatives")


def test_import_named_files(runner: Any, clean_db: Database) -> None:
    result = runner("import", "csv", "--etablissements", str(VALID / "etablissements.csv"),
                    "--eleves", str(VALID / "eleves.csv"))
    assert result.exit_code == 0, result.output
    assert "responsables" not in result.stdout
    assert rows(clean_db, "students") == 3 and rows(clean_db, "representatives") == 0


def test_an_invalid_row_gives_its_line_exit_1_and_nothing_written(runner: Any, clean_db: Database,
                                                                  tmp_path: Path) -> None:
    directory = copy_valid(tmp_path)
    eleves = directory / "eleves.csv"
    content = eleves.read_text(encoding="utf-8").splitlines()
    content[2] = content[2].replace("1234567891B", "12AB")
    eleves.write_text("\n".join(content) + "\n", encoding="utf-8")
    result = runner("import", "csv", str(directory))
    assert result.exit_code == 1
    assert "eleves.csv:3: INE invalide « 12AB » (attendu 10 chiffres et une lettre)" in result.stderr
    # its link is reported too: the pupil it points to is not imported
    assert "liens.csv:4: élève inconnu : INE « 1234567891B »" in result.stderr
    assert "erreur : 2 ligne(s) invalide(s) : rien n'a été importé" in result.stderr
    no_traceback(result)
    assert all(rows(clean_db, t) == 0 for t in ("schools", "students", "representatives", "student_links"))


def test_skip_invalid_reports_and_imports_the_rest(runner: Any, clean_db: Database, tmp_path: Path) -> None:
    directory = copy_valid(tmp_path)
    with (directory / "responsables.csv").open("a", encoding="utf-8") as handle:
        handle.write("0690026D;R4;Martin;Jean;12345;;69003\n")
    result = runner("import", "csv", str(directory), "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert "responsables.csv:7: ligne ignorée, numéro de téléphone invalide « 12345 »" in result.stderr
    assert "rejetés       1" in result.stdout
    assert rows(clean_db, "representatives") == 5


def test_dry_run_writes_nothing(runner: Any, clean_db: Database) -> None:
    result = runner("import", "csv", str(VALID), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "rien n'a été écrit" in result.stdout and "ajoutés       3" in result.stdout
    assert rows(clean_db, "students") == 0


@pytest.mark.parametrize(("content", "message"), [
    (b"ine;uai;nom;prenom;date_naissance;classe;niveau;code_postal\n",
     "eleves.csv:1: colonne inconnue « prenom » (en-tête attendu : ine;uai;nom;prenoms;date_naissance;classe;"
     "niveau;code_postal;id_siecle)"),
    (b"ine;uai;nom;prenoms;date_naissance;classe;niveau\n", "eleves.csv:1: colonne manquante « code_postal »"),
    ("ine;uai;nom;prenoms;date_naissance;classe;niveau;code_postal\n"
     "1234567890A;0690026D;Lefèvre;Léa;12/03/2013;6E2;6EME;69003\n".encode("latin-1"),
     "eleves.csv:2: encodage invalide : octet 0xE8 en position 25 (le fichier doit être en UTF-8)"),
])
def test_malformed_csv_gives_a_precise_error(runner: Any, clean_db: Database, tmp_path: Path, content: bytes,
                                             message: str) -> None:
    directory = copy_valid(tmp_path)
    (directory / "eleves.csv").write_bytes(content)
    result = runner("import", "csv", str(directory))
    assert result.exit_code == 1
    assert message in result.stderr
    assert "erreur : fichier illisible : rien n'a été importé." in result.stderr
    assert "liens.csv" not in result.stderr  # no cascade of errors from a file that could not be read
    no_traceback(result)
    assert rows(clean_db, "schools") == 0


def test_missing_files_and_bad_options(runner: Any, clean_db: Database, tmp_path: Path) -> None:
    missing = runner("import", "csv", "--eleves", str(tmp_path / "absent.csv"))
    assert missing.exit_code == 1 and f"erreur : fichier introuvable : {tmp_path / 'absent.csv'}" in missing.stderr
    empty = runner("import", "csv", str(tmp_path))
    assert empty.exit_code == 1 and "erreur : aucun fichier à importer" in empty.stderr
    bad_uai = runner("import", "csv", str(VALID), "--uai", "123")
    assert bad_uai.exit_code == 1 and "erreur : --uai : UAI invalide « 123 »" in bad_uai.stderr


def test_import_siecle_exports(runner: Any, clean_db: Database) -> None:
    args = ("import", "siecle", "--eleves", str(SIECLE / "ElevesSansAdresses.xml"),
            "--responsables", str(SIECLE / "ResponsablesAvecAdresses.xml"))
    unknown_school = runner(*args)
    assert unknown_school.exit_code == 1
    assert "ElevesSansAdresses.xml:11: établissement inconnu « 0341234G »" in unknown_school.stderr
    result = runner(*args, "--etablissements", str(SIECLE / "etablissements.csv"))
    assert result.exit_code == 0, result.output
    assert "élèves           ajoutés       3" in result.stdout
    assert "responsables     ajoutés       4" in result.stdout
    assert "liens            ajoutés       6" in result.stdout
    assert runner(*args).exit_code == 0  # the school is now known


def test_siecle_doctype_is_refused(runner: Any, clean_db: Database, tmp_path: Path) -> None:
    evil = tmp_path / "ElevesSansAdresses.xml"
    evil.write_text('<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY a "aaaa">]>\n<BEE_ELEVES>&a;</BEE_ELEVES>\n')
    result = runner("import", "siecle", "--eleves", str(evil))
    assert result.exit_code == 1
    assert "ElevesSansAdresses.xml:2: déclaration DOCTYPE ou ENTITY refusée" in result.stderr
    no_traceback(result)


def test_purge_prints_its_counts(runner: Any, clean_db: Database) -> None:
    result = runner("purge")
    assert result.exit_code == 0, result.output
    assert "Purge terminée :" in result.stdout and "élèves purgés : 0" in result.stdout
    assert "sessions supprimées : 0" in result.stdout


@pytest.mark.parametrize("command", [("import",), ("import", "csv"), ("import", "siecle"), ("purge",)])
def test_help_is_in_french(runner: Any, command: tuple[str, ...]) -> None:
    result = runner(*command, "--help")
    assert result.exit_code == 0
    assert any(word in result.output for word in ("Importer", "Purger"))
