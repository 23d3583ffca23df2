"""Register import and purge against the real database (SQLite, or PostgreSQL with IDP_TEST_DATABASE_URL)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from register_files import DATA, PUPIL_INE, lines, pupil_changes_school, register_dir, run_import
from sqlalchemy import select, text

from idp.core.accounts.model import Profile
from idp.core.register.csv_format import FILE_NAMES, read_csv
from idp.core.register.records import ImportReport, Kind
from idp.core.register.siecle import SiecleExport
from idp.storage.models import AccountRow, RepresentativeRow, StudentRow
from idp.storage.purge import SqlPurge
from idp.storage.register import ImportRequest, SqlRegisterImport
from idp.wiring import Services

TABLES = ("schools", "students", "representatives", "student_links")


# --- helpers ----------------------------------------------------------------------------------------


def q(services: Services, sql: str, **params: Any) -> list[Any]:
    with services.db.engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())


def count(services: Services, table: str) -> int:
    return q(services, f"SELECT COUNT(*) FROM {table}")[0][0]  # noqa: S608


def snapshot(services: Services) -> dict[str, list[Any]]:
    return {t: q(services, f"SELECT * FROM {t} ORDER BY 1") for t in TABLES}  # noqa: S608


def student(services: Services, ine: str) -> StudentRow:
    with services.db.session() as s:
        return s.scalars(select(StudentRow).where(StudentRow.ine == ine)).one()


def representative(services: Services, uai: str, external_id: str) -> RepresentativeRow:
    with services.db.session() as s:
        return s.scalars(select(RepresentativeRow).where(RepresentativeRow.uai == uai,
                                                         RepresentativeRow.external_id == external_id)).one()


def account(services: Services, account_id: int) -> AccountRow:
    with services.db.session() as s:
        row = s.get(AccountRow, account_id)
        assert row is not None
        return row


def counts(report: ImportReport, kind: Kind) -> tuple[int, int, int, int, int]:
    c = report.counts[kind]
    return c.added, c.updated, c.unchanged, c.leaving, c.returned


def link_account(services: Services, account_id: int, *, ine: str = "", uai: str = "", external_id: str = "") -> None:
    with services.db.engine.begin() as conn:
        if ine:
            conn.execute(text("UPDATE students SET account_id = :a WHERE ine = :i"), {"a": account_id, "i": ine})
        else:
            conn.execute(text("UPDATE representatives SET account_id = :a WHERE uai = :u AND external_id = :e"),
                         {"a": account_id, "u": uai, "e": external_id})


def open_session(services: Services, account_id: int) -> str:
    from idp.storage.models import SsoSessionRow

    now = services.clock.now()
    session_id = uuid.uuid4().hex
    with services.db.session() as s:
        s.add(SsoSessionRow(id=session_id, public_id=session_id[:32], account_id=account_id, auth_method="password",
                            authn_instant=now, created_at=now, last_seen_at=now,
                            expires_at=now + dt.timedelta(hours=10), ip="", user_agent=""))
        s.commit()
    return session_id


def session_ended(services: Services, session_id: str) -> bool:
    return q(services, "SELECT ended_at FROM sso_sessions WHERE id = :i", i=session_id)[0][0] is not None


# --- a valid import -----------------------------------------------------------------------------------


def test_valid_import_writes_every_row(services: Services, tmp_path: Path) -> None:
    report = run_import(services, register_dir(tmp_path))
    assert report.applied and report.error_total == 0
    assert counts(report, Kind.SCHOOL)[:3] == (2, 0, 0)
    assert counts(report, Kind.STUDENT) == (3, 0, 0, 0, 0)
    assert counts(report, Kind.REPRESENTATIVE) == (5, 0, 0, 0, 0)
    assert counts(report, Kind.LINK) == (5, 0, 0, 0, 0)
    row = student(services, "1234567891B")
    assert (row.family_name, row.given_names, row.birth_date, row.uai, row.status) == (
        "N'Diaye-Martin", "Éloïse", dt.date(2012, 11, 30), "0690026D", "present")
    assert len(row.fingerprint) == 32
    assert representative(services, "0750654D", "R10").mobile_phone == "+41791234567"
    links = q(services, "SELECT s.ine, r.external_id, k.relationship, k.legal_responsibility FROM student_links k "
                        "JOIN students s ON s.id = k.student_id JOIN representatives r ON r.id = k.representative_id "
                        "ORDER BY s.ine, r.external_id")
    assert [(a, b, c, bool(d)) for a, b, c, d in links][-2] == ("123456789AB", "R10", "tuteur", False)
    events = q(services, "SELECT event, details FROM audit_events")
    assert events[0][0] == "register.imported" and '"added": 3' in events[0][1]


# --- invalid input imports nothing --------------------------------------------------------------------


def test_an_invalid_row_imports_nothing(services: Services, tmp_path: Path) -> None:
    bad = register_dir(tmp_path, eleves=[lines("eleves")[0], "12AB;0690026D;Martin;Jules;01/01/2013;;;;",
                                         *lines("eleves")[1:]])
    report = run_import(services, bad)
    assert not report.applied
    assert [str(e) for e in report.errors] == [
        "eleves.csv:3: INE invalide « 12AB » (attendu 10 chiffres et une lettre)"]
    assert all(count(services, t) == 0 for t in TABLES)
    assert count(services, "audit_events") == 0


def test_errors_across_rows_and_files_name_file_and_line(services: Services, tmp_path: Path) -> None:
    eleves = lines("eleves") + ["1234567890A;0690026D;Dupont;Léo;12/03/2013;6E2;6EME;69003;",
                                "1234567899Z;0999999Z;Durand;Ana;12/03/2013;6E2;6EME;69003;"]
    responsables = lines("responsables") + ["0690026D;R1;Dupont;Marie;;;69003"]
    liens = lines("liens") + ["9999999999Z;0690026D;R1;mère;1", "1234567890A;0690026D;R77;père;1",
                              "1234567890A;0690026D;R1;mère;1"]
    report = run_import(services, register_dir(tmp_path, eleves=eleves, responsables=responsables, liens=liens))
    assert not report.applied
    assert sorted(str(e) for e in report.errors) == sorted([
        "eleves.csv:5: INE « 1234567890A » en double (déjà ligne 2)",
        "eleves.csv:6: établissement inconnu « 0999999Z » (ni dans le fichier des établissements ni dans la base)",
        "responsables.csv:7: responsable « R1 » en double pour cet établissement (déjà ligne 2)",
        "liens.csv:7: élève inconnu : INE « 9999999999Z » ni dans le fichier des élèves ni dans la base",
        "liens.csv:8: responsable inconnu « R77 » de l'établissement 0690026D (ni dans le fichier des "
        "responsables ni dans la base)",
        "liens.csv:9: lien en double pour l'élève « 1234567890A » (déjà ligne 2)",
    ])
    assert report.error_total == 6
    assert all(count(services, t) == 0 for t in TABLES)


def link_errors(tmp_path: Path, name: str) -> Path:
    liens = lines("liens") + ["9999999999Z;0690026D;R1;mère;1", "9999999998Z;0690026D;R1;mère;1",
                              "1234567890A;0690026D;R77;père;1", "1234567890A;0690026D;R1;mère;1"]
    return register_dir(tmp_path, name, liens=liens)


def test_link_errors_found_once_pupils_and_representatives_are_known(services: Services, tmp_path: Path) -> None:
    report = run_import(services, link_errors(tmp_path, "bad"))
    assert not report.applied
    assert sorted(str(e) for e in report.errors) == sorted([
        "liens.csv:7: élève inconnu : INE « 9999999999Z » ni dans le fichier des élèves ni dans la base",
        "liens.csv:8: élève inconnu : INE « 9999999998Z » ni dans le fichier des élèves ni dans la base",
        "liens.csv:9: responsable inconnu « R77 » de l'établissement 0690026D (ni dans le fichier des "
        "responsables ni dans la base)",
        "liens.csv:10: lien en double pour l'élève « 1234567890A » (déjà ligne 2)",
    ])
    assert all(count(services, t) == 0 for t in TABLES)


def test_skipped_link_errors_leave_the_other_links(services: Services, tmp_path: Path) -> None:
    run_import(services, register_dir(tmp_path))
    liens = lines("liens")
    liens[1] = liens[1].replace(";oui", ";peut-être")  # Paul's link is rejected: skipped, not taken as gone
    liens[2] = liens[2].replace(";R3;", ";R77;")  # Awa's link now points to nobody: hers is gone
    report = run_import(services, register_dir(tmp_path, "v2", liens=liens), skip_invalid=True)
    assert report.applied and report.error_total == 2
    assert counts(report, Kind.LINK) == (0, 0, 3, 1, 0)
    report = run_import(services, link_errors(tmp_path, "v3"), skip_invalid=True)
    assert report.applied and report.error_total == 4
    assert counts(report, Kind.LINK) == (0, 0, 4, 0, 1)  # Awa's link is back


def test_a_fatal_file_error_imports_nothing_even_with_skip_invalid(services: Services, tmp_path: Path) -> None:
    directory = register_dir(tmp_path)
    (directory / "liens.csv").write_text("ine;uai;id;lien;responsable_legal\n", encoding="utf-8")
    report = run_import(services, directory, skip_invalid=True)
    assert not report.applied and report.has_fatal
    assert str(report.errors[0]).startswith("liens.csv:1: colonne inconnue « id »")
    assert all(count(services, t) == 0 for t in TABLES)


def test_shown_errors_are_capped_but_all_counted(services: Services, tmp_path: Path) -> None:
    eleves = [f"{n:010d}A;0690026D;Dupont;Léa;31/02/2013;;;;" for n in range(150)]
    report = run_import(services, register_dir(tmp_path, eleves=eleves, liens=[]))
    assert len(report.errors) == 100 and report.error_total == 150
    assert str(report.errors[99]).startswith("eleves.csv:101: date de naissance invalide")


def test_skip_invalid_imports_the_other_rows(services: Services, tmp_path: Path) -> None:
    eleves = lines("eleves") + ["12AB;0690026D;Martin;Jules;01/01/2013;;;;",
                                "1234567890A;0690026D;Dupont;Léo;12/03/2013;6E2;6EME;69003;"]
    liens = lines("liens") + ["12AB;0690026D;R1;mère;1"]
    report = run_import(services, register_dir(tmp_path, eleves=eleves, liens=liens), skip_invalid=True)
    assert report.applied and report.error_total == 3
    assert counts(report, Kind.STUDENT)[0] == 3 and report.counts[Kind.STUDENT].invalid == 2
    assert counts(report, Kind.LINK)[0] == 5 and report.counts[Kind.LINK].invalid == 1
    assert student(services, "1234567890A").given_names == "Léa Marie"  # the first of two duplicates is kept


def test_a_rejected_row_does_not_make_its_person_leave(services: Services, tmp_path: Path) -> None:
    run_import(services, register_dir(tmp_path))
    eleves = lines("eleves")
    eleves[1] = eleves[1].replace("2012-11-30", "2012-13-30")
    report = run_import(services, register_dir(tmp_path, "v2", eleves=eleves), skip_invalid=True)
    assert report.applied and report.error_total == 1
    assert counts(report, Kind.STUDENT) == (0, 0, 2, 0, 0)
    assert student(services, "1234567891B").status == "present"


def test_dry_run_counts_but_writes_nothing(services: Services, tmp_path: Path) -> None:
    report = run_import(services, register_dir(tmp_path), dry_run=True)
    assert not report.applied and report.dry_run
    assert counts(report, Kind.STUDENT)[0] == 3
    assert all(count(services, t) == 0 for t in TABLES)


# --- re-imports ---------------------------------------------------------------------------------------


def test_reimporting_the_same_files_changes_nothing(services: Services, clock: Any, tmp_path: Path) -> None:
    directory = register_dir(tmp_path)
    run_import(services, directory)
    before = snapshot(services)
    clock.advance(days=1)
    report = run_import(services, directory)
    assert report.applied and report.changed == 0
    assert counts(report, Kind.STUDENT) == (0, 0, 3, 0, 0)
    assert counts(report, Kind.REPRESENTATIVE) == (0, 0, 5, 0, 0)
    assert counts(report, Kind.LINK) == (0, 0, 5, 0, 0)
    assert counts(report, Kind.SCHOOL)[:3] == (0, 0, 2)
    assert snapshot(services) == before  # not one updated_at moved


def newer_export(tmp_path: Path) -> Path:
    """Jules (new) joins 0690026D with Awa as mother; Léa leaves with both her parents' records there;
    Éloïse's given names change. Marie keeps her son Hugo at 0750654D."""
    eleves = lines("eleves")
    eleves = [eleves[1].replace("Éloïse", "Éloïse Awa"), eleves[2],
              "1234567892C;0690026D;N'Diaye;Jules;01/09/2016;CE1-A;CE1;69007;1003"]
    responsables = [r for r in lines("responsables") if ";R1;" not in r and ";R2;" not in r]
    liens = [lk for lk in lines("liens") if not lk.startswith("1234567890A")] + ["1234567892C;0690026D;R3;mère;1"]
    return register_dir(tmp_path, "v2", eleves=eleves, responsables=responsables, liens=liens)


def test_a_newer_export_updates_adds_and_marks_leavers(services: Services, clock: Any, account_factory: Any,
                                                       tmp_path: Path) -> None:
    run_import(services, register_dir(tmp_path))
    lea = account_factory("Léa", "Dupont", profile=Profile.STUDENT)
    marie = account_factory("Marie", "Dupont")
    paul = account_factory("Paul", "Dupont")
    link_account(services, lea.id, ine="1234567890A")
    link_account(services, marie.id, uai="0690026D", external_id="R1")
    link_account(services, marie.id, uai="0750654D", external_id="R9")
    link_account(services, paul.id, uai="0690026D", external_id="R2")
    sessions = {a.id: open_session(services, a.id) for a in (lea, marie, paul)}
    clock.advance(days=30)
    now = clock.now()

    report = run_import(services, newer_export(tmp_path))

    assert report.applied
    assert counts(report, Kind.STUDENT) == (1, 1, 1, 1, 0)
    assert counts(report, Kind.REPRESENTATIVE) == (0, 0, 3, 2, 0)
    assert counts(report, Kind.LINK) == (1, 0, 3, 2, 0)
    assert student(services, "1234567891B").given_names == "Éloïse Awa"
    assert student(services, "1234567892C").status == "present"
    gone = student(services, "1234567890A")
    assert gone.status == "leaving" and gone.left_at == now
    assert representative(services, "0690026D", "R2").status == "leaving"
    assert account(services, lea.id).state == "closed" and session_ended(services, sessions[lea.id])
    assert account(services, paul.id).state == "closed" and session_ended(services, sessions[paul.id])
    assert account(services, paul.id).closed_at == now
    # Marie still has Hugo at 0750654D: her account and session stay.
    assert account(services, marie.id).state == "active" and not session_ended(services, sessions[marie.id])
    assert q(services, "SELECT COUNT(*) FROM student_links WHERE status = 'leaving'")[0][0] == 2


def test_a_record_that_comes_back_is_present_again(services: Services, clock: Any, tmp_path: Path) -> None:
    first = register_dir(tmp_path)
    run_import(services, first)
    run_import(services, newer_export(tmp_path))
    clock.advance(days=3)
    report = run_import(services, first)
    assert counts(report, Kind.STUDENT) == (0, 1, 1, 1, 1)  # Éloïse back to one name, Léa back, Jules leaves
    assert counts(report, Kind.REPRESENTATIVE)[4] == 2
    back = student(services, "1234567890A")
    assert back.status == "present" and back.left_at is None
    assert student(services, "1234567892C").status == "leaving"


def test_a_pupil_moving_to_a_school_of_the_import_just_moves(services: Services, tmp_path: Path) -> None:
    run_import(services, register_dir(tmp_path))
    eleves = lines("eleves")
    eleves[1] = eleves[1].replace("0690026D", "0750654D")
    report = run_import(services, register_dir(tmp_path, "v2", eleves=eleves), kinds=(Kind.STUDENT,))
    assert counts(report, Kind.STUDENT) == (0, 1, 2, 0, 0)
    moved = student(services, "1234567891B")
    assert (moved.uai, moved.status) == ("0750654D", "present")


def test_the_uai_option_covers_a_school_without_rows(services: Services, tmp_path: Path) -> None:
    run_import(services, register_dir(tmp_path))
    only_a = register_dir(tmp_path, "v2", eleves=lines("eleves")[:2])
    report = run_import(services, only_a, kinds=(Kind.STUDENT,))
    assert counts(report, Kind.STUDENT)[3] == 0  # 0750654D is not part of this import
    report = run_import(services, only_a, kinds=(Kind.STUDENT,), uais=("0750654D",))
    assert counts(report, Kind.STUDENT)[3] == 1
    assert student(services, "123456789AB").status == "leaving"
    assert representative(services, "0750654D", "R9").status == "present"  # no representatives file given


def test_an_unknown_uai_option_is_an_error(services: Services, tmp_path: Path) -> None:
    report = run_import(services, register_dir(tmp_path), uais=("0999999Z",))
    assert not report.applied
    assert [str(e) for e in report.errors] == ["--uai:0: établissement inconnu « 0999999Z »"]


def test_schools_already_in_the_database_need_no_file(services: Services, tmp_path: Path) -> None:
    run_import(services, register_dir(tmp_path))
    report = run_import(services, register_dir(tmp_path, "v2"), kinds=(Kind.STUDENT, Kind.REPRESENTATIVE, Kind.LINK))
    assert report.applied and report.changed == 0


def test_siecle_exports_import_and_reimport(services: Services, tmp_path: Path) -> None:
    def siecle() -> ImportReport:
        export = SiecleExport(DATA / "siecle" / "ElevesSansAdresses.xml",
                              DATA / "siecle" / "ResponsablesAvecAdresses.xml", services.clock.now().date())
        sources = {Kind.SCHOOL: read_csv(DATA / "siecle" / "etablissements.csv", Kind.SCHOOL,
                                         services.clock.now().date()),
                   Kind.STUDENT: export.students(), Kind.REPRESENTATIVE: export.representatives(),
                   Kind.LINK: export.links()}
        names = {Kind.SCHOOL: "etablissements.csv", Kind.STUDENT: "ElevesSansAdresses.xml",
                 Kind.REPRESENTATIVE: "ResponsablesAvecAdresses.xml", Kind.LINK: "ResponsablesAvecAdresses.xml"}
        return SqlRegisterImport(services.db).run(ImportRequest(sources, names), services.clock.now())

    first = siecle()
    assert first.applied
    assert [counts(first, k)[0] for k in Kind] == [1, 3, 4, 6]
    assert student(services, "070123456AB").class_code == "3C"
    assert siecle().changed == 0


# --- purge ----------------------------------------------------------------------------------------------


def test_purge_after_92_days_blanks_personal_data_once(services: Services, clock: Any, account_factory: Any,
                                                       tmp_path: Path) -> None:
    run_import(services, register_dir(tmp_path))
    paul = account_factory("Paul", "Dupont", email="paul@example.fr", phone="+33611111111")
    marie = account_factory("Marie", "Dupont")
    link_account(services, paul.id, uai="0690026D", external_id="R2")
    link_account(services, marie.id, uai="0690026D", external_id="R1")
    link_account(services, marie.id, uai="0750654D", external_id="R9")
    run_import(services, newer_export(tmp_path))
    purge = SqlPurge(services.db)

    clock.advance(days=91)
    early = purge.run(clock.now(), services.settings.register.purge_after_days)
    assert (early.students, early.representatives, early.accounts) == (0, 0, 0)
    assert student(services, "1234567890A").family_name == "Dupont"

    clock.advance(days=2)
    report = purge.run(clock.now(), services.settings.register.purge_after_days)
    assert (report.students, report.representatives, report.accounts) == (1, 2, 1)
    assert report.links == 2
    gone = student(services, "1234567890A")
    assert (gone.family_name, gone.given_names, gone.birth_date, gone.class_code, gone.status) == (
        "", "", dt.date(1900, 1, 1), "", "purged")
    r2 = representative(services, "0690026D", "R2")
    assert (r2.family_name, r2.mobile_phone, r2.email, r2.status) == ("", "", "", "purged")
    blank = account(services, paul.id)
    assert (blank.family_name, blank.given_names, blank.email, blank.phone, blank.password_hash) == (
        "", "", "", "", None)
    assert account(services, marie.id).family_name == "Dupont"  # still has a present record
    assert q(services, "SELECT COUNT(*) FROM student_links WHERE student_id = :i", i=gone.id)[0][0] == 0
    events = [e for (e,) in q(services, "SELECT event FROM audit_events")]
    assert events.count("register.purged") == 2

    again = purge.run(clock.now(), services.settings.register.purge_after_days)
    assert vars(again) == dict.fromkeys(vars(again), 0)


def test_purged_pupil_who_comes_back_is_filled_in_again(services: Services, clock: Any, tmp_path: Path) -> None:
    first = register_dir(tmp_path)
    run_import(services, first)
    run_import(services, newer_export(tmp_path))
    clock.advance(days=100)
    SqlPurge(services.db).run(clock.now(), 92)
    report = run_import(services, first)
    assert report.counts[Kind.STUDENT].returned == 1
    assert student(services, "1234567890A").family_name == "Dupont"


def test_purge_deletes_expired_short_lived_state(services: Services, clock: Any, account_factory: Any) -> None:
    now = clock.now()
    someone = account_factory()
    old_session, live_session = open_session(services, someone.id), open_session(services, someone.id)
    with services.db.engine.begin() as conn:
        naive = now.replace(tzinfo=None)
        conn.execute(text("UPDATE sso_sessions SET ended_at = :t, expires_at = :t WHERE id = :i"),
                     {"t": naive - dt.timedelta(days=31), "i": old_session})
        conn.execute(text("INSERT INTO throttle_counters (key, failures, window_started_at, updated_at) VALUES "
                          "('old', 3, :o, :o), ('new', 1, :n, :n)"),
                     {"o": naive - dt.timedelta(days=2), "n": naive})
        for name, expires in (("expired", naive - dt.timedelta(minutes=1)), ("pending", naive + dt.timedelta(hours=1))):
            conn.execute(text("INSERT INTO authn_requests (id, protocol, client_id, client_name, payload, force_authn, "
                              "passive, profile_hint, browser_hash, created_at, expires_at) VALUES (:i, 'saml', '', '', "
                              "'{}', false, false, '', 'h', :c, :e)"),
                         {"i": name, "c": naive - dt.timedelta(hours=1), "e": expires})
    report = SqlPurge(services.db).run(now, 92)
    assert (report.sso_sessions, report.throttle_counters, report.authn_requests) == (1, 1, 1)
    assert [r[0] for r in q(services, "SELECT id FROM sso_sessions")] == [live_session]
    assert [r[0] for r in q(services, "SELECT key FROM throttle_counters")] == ["new"]
    assert [r[0] for r in q(services, "SELECT id FROM authn_requests")] == ["pending"]


@pytest.mark.parametrize("batch_size", [1, 2])
def test_small_batches_give_the_same_result(services: Services, tmp_path: Path, batch_size: int) -> None:
    today = services.clock.now().date()
    directory = register_dir(tmp_path)
    sources = {k: read_csv(directory / FILE_NAMES[k], k, today) for k in Kind}
    report = SqlRegisterImport(services.db, batch_size).run(
        ImportRequest(sources, {k: FILE_NAMES[k] for k in Kind}), services.clock.now())
    assert report.applied and [counts(report, k)[0] for k in Kind] == [2, 3, 5, 5]


def test_a_first_load_keeps_every_foreign_key(services: Services, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL an empty table's keys and indexes are put back after a bulk load: all are there."""
    import idp.storage.register as register

    monkeypatch.setattr(register, "BULK_LOAD_ROWS", 1)
    query = ("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
             "UNION ALL SELECT indrelid::regclass::text, indexrelid::regclass::text, pg_get_indexdef(indexrelid) "
             "FROM pg_index WHERE indrelid IN ('students'::regclass, 'representatives'::regclass, "
             "'student_links'::regclass) ORDER BY 1, 2, 3")
    before = q(services, query) if services.db.dialect == "postgresql" else []
    directory = register_dir(tmp_path)
    report = run_import(services, directory)
    assert report.applied and [counts(report, k)[0] for k in Kind] == [2, 3, 5, 5]
    if services.db.dialect == "postgresql":
        assert q(services, query) == before
    assert run_import(services, directory).changed == 0


# --- the register change seen by the protocols (issue 17) --------------------------------------------------


def test_an_import_dates_the_register_change_of_the_accounts_whose_values_changed(
        services: Services, tmp_path: Path, account_factory: Any) -> None:
    """The pupil who changed school and her parents (their child's record) get ``register_changed_at``; another
    pupil of the same school does not, nor does anyone when an import changes nothing."""
    assert run_import(services, register_dir(tmp_path)).applied
    moved, other = account_factory(profile=Profile.STUDENT), account_factory(profile=Profile.STUDENT)
    mother = account_factory()
    link_account(services, moved.id, ine=PUPIL_INE)
    link_account(services, other.id, ine="1234567891B")
    link_account(services, mother.id, uai="0690026D", external_id="R1")
    services.clock.advance(minutes=1)
    assert run_import(services, register_dir(tmp_path, "same")).applied
    assert [account(services, a.id).register_changed_at for a in (moved, other, mother)] == [None, None, None]

    pupil_changes_school(services, tmp_path)
    now = services.clock.now()
    assert [account(services, a.id).register_changed_at for a in (moved, other, mother)] == [now, None, now]
