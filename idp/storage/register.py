# ruff: noqa: S608 - statements are assembled from this module's constant table and column names only;
# every value is a bound parameter.
"""The register import in SQL: stream rows into temporary staging tables, check them, apply set-wise.

For each kind in turn (schools, pupils, representatives, links): the reader's records are staged (a parser
thread spools them as ``COPY`` text while the database works on the previous kind, then ``COPY … FROM
STDIN`` on PostgreSQL; ``executemany`` in batches on SQLite), row errors go to the report, the checks that
need every row (duplicates, unknown schools, links to unknown people) run in SQL keeping each error's file
and line, then the differences are applied: rows whose fingerprint is unchanged are never written. Last,
records of the imported schools missing from the import become "leaving", and accounts left without a
present record are closed and their sessions ended. Everything happens in one transaction: an error, a dry
run or an outage leaves the register as it was. Memory stays flat: rows are streamed, never collected (the
PostgreSQL spool is a temporary file).

Where the time goes on PostgreSQL: a foreign key is checked with one query per inserted row, which for a
first load costs more than everything else together; an empty table therefore has its foreign keys checked
once, in bulk, when they are added back at the end of the load (``_Job._bulk_insert``).
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import Connection, bindparam, text
from sqlalchemy.exc import DBAPIError

from idp.core.audit import REGISTER_IMPORTED
from idp.core.ports import AuditEvent
from idp.core.register.records import (
    ImportReport,
    Kind,
    Link,
    Parsed,
    Representative,
    RowError,
    School,
    Student,
    digest,
)
from idp.errors import ServiceUnavailable
from idp.storage.audit import SqlAuditLog
from idp.storage.db import Database
from idp.storage.models import UtcDateTime
from idp.storage.uow import OUTAGE_ERRORS, is_outage

log = logging.getLogger("idp.register")

#: Errors kept for display; the report still counts all of them.
SHOWN_ERRORS = 100
_LOCK_KEY = 4_829_301  # pg_advisory_xact_lock: one register import at a time
_SPOOL_BATCH = 4096
#: Rows added to an empty table from which its foreign keys are checked in bulk (see ``_bulk_insert``).
BULK_LOAD_ROWS = 10_000

STAGE = {Kind.SCHOOL: "stage_schools", Kind.STUDENT: "stage_students",
         Kind.REPRESENTATIVE: "stage_representatives", Kind.LINK: "stage_links"}
_STAGE_COLUMNS = {
    Kind.SCHOOL: "line INTEGER, uai TEXT, name TEXT, kind TEXT, academie TEXT, city TEXT, ok {bool}",
    Kind.STUDENT: "line INTEGER, ine TEXT, uai TEXT, external_id TEXT, family_name TEXT, given_names TEXT, "
                  "birth_date {date}, class_code TEXT, level TEXT, postal_code TEXT, fingerprint TEXT, ok {bool}",
    Kind.REPRESENTATIVE: "line INTEGER, uai TEXT, external_id TEXT, family_name TEXT, given_names TEXT, "
                         "mobile_phone TEXT, email TEXT, postal_code TEXT, fingerprint TEXT, ok {bool}",
    Kind.LINK: "line INTEGER, ine TEXT, uai TEXT, representative_id TEXT, relationship TEXT, legal {bool}, "
               "fingerprint TEXT, ok {bool}",
}
_WIDTH = {Kind.SCHOOL: 7, Kind.STUDENT: 12, Kind.REPRESENTATIVE: 10, Kind.LINK: 8}
#: Staging columns holding the key a rejected row is remembered by (see ``RowError.key``).
_SEEN_KEY = {Kind.STUDENT: "ine, '', ''", Kind.REPRESENTATIVE: "uai, external_id, ''",
             Kind.LINK: "ine, uai, representative_id"}
_SQLITE_INDEXES = {Kind.SCHOOL: ("(uai)",), Kind.STUDENT: ("(ine)",), Kind.REPRESENTATIVE: ("(uai, external_id)",),
                   Kind.LINK: ("(ine)", "(uai, representative_id)")}


def _values(record: School | Student | Representative | Link) -> tuple[Any, ...]:
    """A record as a staging row: line, values, fingerprint (not for schools), ``ok``."""
    if type(record) is School:
        return (record.line, *record.values(), True)
    values = record.values()
    return (record.line, *values, digest("\t".join(values)), True)


def _copy_text(record: School | Student | Representative | Link) -> str:
    """A record as one line of PostgreSQL COPY text (readers refuse tabs and newlines, backslashes are escaped).

    The fingerprint is the digest of the tab-joined values, the very text staged (before escaping).
    """
    body = "\t".join(record.values())
    tail = "t" if type(record) is School else f"{digest(body)}\tt"
    if "\\" in body:
        body = body.replace("\\", "\\\\")
    return f"{record.line}\t{body}\t{tail}"


def _reject_values(kind: Kind, error: RowError) -> tuple[Any, ...]:
    """The staging row remembering a rejected row's key (``ok`` false, the rest NULL)."""
    width = _WIDTH[kind]
    return ((error.line, *error.key) + (None,) * width)[:width - 1] + (False,)


def _reject_text(kind: Kind, error: RowError) -> str:
    """``_reject_values`` as COPY text."""
    return "\t".join("\\N" if v is None else "f" if v is False else str(v).replace("\\", "\\\\")
                     for v in _reject_values(kind, error))


@dataclass
class ImportRequest:
    """What to import: one stream of parsed rows per kind (kinds without a source are left alone)."""

    sources: dict[Kind, Iterable[Parsed]]
    file_names: dict[Kind, str]
    uais: tuple[str, ...] = ()
    skip_invalid: bool = False
    dry_run: bool = False


@dataclass
class _Tally:
    """Row errors of one kind, counted (and the first ones kept) while its rows are staged."""

    errors: list[RowError] = field(default_factory=list)
    total: int = 0
    rejects_kept: int = 0

    def error(self, kind: Kind, item: RowError, keep_rejects: bool) -> bool:
        """Count a row error; tell whether its key must be staged (to be remembered as seen)."""
        self.total += 1
        if len(self.errors) < SHOWN_ERRORS or item.fatal:
            self.errors.append(item)
        if keep_rejects and item.key and kind in _SEEN_KEY:
            self.rejects_kept += 1
            return True
        return False


def _staged(kind: Kind, source: Iterable[Parsed], tally: _Tally, keep_rejects: bool) -> Iterator[tuple[Any, ...]]:
    for item in source:
        if type(item) is not RowError:
            yield _values(item)  # type: ignore[arg-type]
        elif tally.error(kind, item, keep_rejects):
            yield _reject_values(kind, item)


def _spooled(kind: Kind, source: Iterable[Parsed], tally: _Tally, keep_rejects: bool) -> Iterator[str]:
    for item in source:
        if type(item) is not RowError:
            yield _copy_text(item)  # type: ignore[arg-type]
        elif tally.error(kind, item, keep_rejects):
            yield _reject_text(kind, item)


class _Spooler(threading.Thread):
    """Parses the sources, in order, into COPY-text temporary files while the database works."""

    def __init__(self, sources: list[tuple[Kind, Iterable[Parsed]]], keep_rejects: bool) -> None:
        super().__init__(name="register-parser", daemon=True)
        self.sources, self.keep_rejects = sources, keep_rejects
        self.ready = {kind: threading.Event() for kind, _ in sources}
        self.spools: dict[Kind, tuple[IO[bytes], _Tally]] = {}
        self.failure: BaseException | None = None
        self.stopped = False

    def run(self) -> None:
        """Spool every source; a failure is kept for ``take`` to raise in the importing thread."""
        try:
            for kind, source in self.sources:
                if self.stopped:
                    return
                self.spools[kind] = self._spool(kind, source)
                self.ready[kind].set()
        except BaseException as exc:  # noqa: BLE001 - handed to the importing thread, which raises it
            self.failure = exc
        finally:
            for event in self.ready.values():
                event.set()

    def _spool(self, kind: Kind, source: Iterable[Parsed]) -> tuple[IO[bytes], _Tally]:
        spool, tally = tempfile.TemporaryFile(), _Tally()  # noqa: SIM115 - closed by the importing thread
        batch: list[str] = []
        for line in _spooled(kind, source, tally, self.keep_rejects):
            batch.append(line)
            if len(batch) >= _SPOOL_BATCH:
                batch.append("")
                spool.write("\n".join(batch).encode())
                batch.clear()
                if self.stopped:
                    break
        if batch:
            batch.append("")
            spool.write("\n".join(batch).encode())
        spool.seek(0)
        return spool, tally

    def take(self, kind: Kind) -> tuple[IO[bytes], _Tally]:
        """Wait until ``kind`` is spooled and hand over its file."""
        self.ready[kind].wait()
        if self.failure is not None:
            raise self.failure
        return self.spools.pop(kind)

    def stop(self) -> None:
        """Ask the parser to stop and close what it spooled."""
        self.stopped = True
        self.join()
        for spool, _tally in self.spools.values():
            spool.close()


class SqlRegisterImport:
    """Imports register rows into ``schools``, ``students``, ``representatives`` and ``student_links``."""

    def __init__(self, db: Database, batch_size: int = 5000) -> None:
        self.db = db
        self.batch_size = batch_size

    def run(self, request: ImportRequest, now: dt.datetime) -> ImportReport:
        """Validate and (unless there are errors or it is a dry run) apply one import, in one transaction."""
        started = time.perf_counter()
        report = ImportReport(dry_run=request.dry_run, uais=tuple(sorted(set(request.uais))))
        try:
            with self.db.sessionmaker() as session:
                job = _Job(session.connection(), self.db.dialect, self.batch_size, request, report, now)
                job.run()
                if job.acceptable and not request.dry_run:
                    SqlAuditLog(session).record(AuditEvent(REGISTER_IMPORTED, now, details=_details(report)))
                    job.drop_stage()
                    session.commit()
                    report.applied = True
                else:
                    session.rollback()
        except OUTAGE_ERRORS as exc:
            if is_outage(exc):
                log.error("register import: database unavailable (%s)", type(exc).__name__)
                raise ServiceUnavailable() from exc
            raise
        report.seconds = time.perf_counter() - started
        return report


def _details(report: ImportReport) -> dict[str, Any]:
    counts = {k.value: vars(c) for k, c in report.counts.items()}
    return {"counts": counts, "rejected_rows": report.error_total, "uais": list(report.uais)}


class _Job:
    """One import inside one transaction."""

    def __init__(self, conn: Connection, dialect: str, batch_size: int, request: ImportRequest,
                 report: ImportReport, now: dt.datetime) -> None:
        self.conn, self.pg, self.batch_size = conn, dialect == "postgresql", batch_size
        self.request, self.report, self.now = request, report, now

    @property
    def acceptable(self) -> bool:
        """Whether what was read so far may be written (no fatal error; row errors only with skip)."""
        return not self.report.has_fatal and (self.request.skip_invalid or not self.report.error_total)

    def sql(self, statement: str, **params: Any) -> Any:
        """Run one statement; datetimes are bound the way UTC columns store them."""
        clause = text(statement)
        typed = [bindparam(k, type_=UtcDateTime()) for k, v in params.items() if isinstance(v, dt.datetime)]
        started = time.perf_counter()
        result = self.conn.execute(clause.bindparams(*typed) if typed else clause, params)
        log.debug("%.3fs %s", time.perf_counter() - started, " ".join(statement.split())[:100])
        return result

    def count(self, statement: str, **params: Any) -> int:
        """A single integer from a query (0 for NULL)."""
        return int(self.sql(statement, **params).scalar() or 0)

    def run(self) -> None:
        """Stage, check and apply each kind in turn, then mark the vanished and close their accounts."""
        self.create_stage()
        kinds = [kind for kind in Kind if kind in self.request.sources]
        spooler = None
        if self.pg:
            spooler = _Spooler([(k, self.request.sources[k]) for k in kinds], self.request.skip_invalid)
            spooler.start()
        try:
            for kind in kinds:
                self.stage(kind, spooler)
                checks: tuple[Check, ...]
                if kind is Kind.LINK and self.acceptable:
                    # Pupils and representatives are written: resolving the links finds the unknown ones.
                    self._resolve_links()
                    checks = RESOLVED_LINK_CHECKS
                else:
                    checks = tuple(c for c in CHECKS if c.kind is kind and not self.report.has_fatal)
                for check in checks:
                    self._check(check)
                if self.acceptable:
                    self.apply(kind)
        finally:
            if spooler is not None:
                spooler.stop()
        self._check_extra_uais()
        if self.acceptable:
            self.finish()

    # --- staging ----------------------------------------------------------------------------------

    def create_stage(self) -> None:
        """Create the staging tables (after taking the import lock on PostgreSQL)."""
        suffix = " ON COMMIT DROP" if self.pg else ""
        if self.pg:
            self.sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
            self.sql("SET LOCAL work_mem = '128MB'")
            self.sql("SET LOCAL jit = off")
            self.sql("SET LOCAL default_statistics_target = 10")  # staging statistics from a small sample
        else:
            self.drop_stage()
        types = {"date": "DATE" if self.pg else "TEXT", "bool": "BOOLEAN" if self.pg else "INTEGER"}
        for kind, columns in _STAGE_COLUMNS.items():
            self.sql(f"CREATE TEMPORARY TABLE {STAGE[kind]} ({columns.format(**types)}){suffix}")
        self.sql(f"CREATE TEMPORARY TABLE stage_seen (kind TEXT, k1 TEXT, k2 TEXT, k3 TEXT){suffix}")
        self.sql(f"CREATE TEMPORARY TABLE stage_scope (uai TEXT PRIMARY KEY){suffix}")

    def drop_stage(self) -> None:
        """Drop the staging tables (SQLite keeps temporary tables for the connection's life)."""
        if not self.pg:
            for table in (*STAGE.values(), "stage_seen", "stage_scope", "stage_link_ids"):
                self.sql(f"DROP TABLE IF EXISTS temp.{table}")

    def stage(self, kind: Kind, spooler: _Spooler | None) -> None:
        """Load one kind's rows into its staging table and account for its row errors."""
        table, started = STAGE[kind], time.perf_counter()
        raw: Any = self.conn.connection.driver_connection
        if spooler is not None:
            spool, tally = spooler.take(kind)
            with spool, raw.cursor() as cursor, cursor.copy(f"COPY {table} FROM STDIN") as copy:
                while chunk := spool.read(1 << 20):
                    copy.write(chunk)
        else:
            tally = _Tally()
            self._insert_sqlite(raw, kind, _staged(kind, self.request.sources[kind], tally,
                                                   self.request.skip_invalid))
        log.debug("%.3fs staged %s", time.perf_counter() - started, table)
        room = SHOWN_ERRORS - len(self.report.errors)
        self.report.errors.extend(e for n, e in enumerate(tally.errors) if n < room or e.fatal)
        self.report.error_total += tally.total
        self.report.counts[kind].invalid += tally.total
        if tally.rejects_kept:
            self.sql(f"INSERT INTO stage_seen SELECT '{kind.value}', {_SEEN_KEY[kind]} FROM {table} WHERE NOT ok")
            self.sql(f"DELETE FROM {table} WHERE NOT ok")
        if self.pg:
            self.sql(f"ANALYZE {table}")
        else:
            for number, columns in enumerate(_SQLITE_INDEXES[kind]):
                self.sql(f"CREATE INDEX temp.{table}_ix{number} ON {table} {columns}")

    def _insert_sqlite(self, raw: Any, kind: Kind, rows: Iterator[tuple[Any, ...]]) -> None:
        cursor = raw.cursor()
        statement = f"INSERT INTO {STAGE[kind]} VALUES ({', '.join('?' * _WIDTH[kind])})"
        batch: list[tuple[Any, ...]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= self.batch_size:
                cursor.executemany(statement, batch)
                batch.clear()
        if batch:
            cursor.executemany(statement, batch)
        cursor.close()

    # --- checks across rows and files ---------------------------------------------------------------

    def _check(self, check: Check) -> None:
        room = max(SHOWN_ERRORS - len(self.report.errors), 1)
        rows = self.sql(f"SELECT line, a, b, COUNT(*) OVER () FROM ({check.select}) bad ORDER BY line "
                        f"LIMIT {room}").all()
        if not rows:
            return
        total = rows[0][3]
        name = self.request.file_names.get(check.kind, "")
        for line, a, b, _total in rows:
            self.report.add_error(RowError(name, line, check.message.format(a=a, b=b)), SHOWN_ERRORS)
        self.report.error_total += total - len(rows)
        self.report.counts[check.kind].invalid += total
        if self.request.skip_invalid:
            table, key = check.table or STAGE[check.kind], check.seen or _SEEN_KEY.get(check.kind)
            bad = f"line IN (SELECT line FROM ({check.select}) bad)"
            if key:
                self.sql(f"INSERT INTO stage_seen SELECT '{check.kind.value}', {key} FROM {table} WHERE {bad}")
            self.sql(f"DELETE FROM {table} WHERE {bad}")

    def _check_extra_uais(self) -> None:
        for uai in self.report.uais:
            if not self.count("SELECT COUNT(*) FROM schools WHERE uai = :u", u=uai) and not self.count(
                    "SELECT COUNT(*) FROM stage_schools WHERE uai = :u", u=uai):
                self.report.add_error(RowError("--uai", 0, f"établissement inconnu « {uai} »"), SHOWN_ERRORS)

    # --- applying -------------------------------------------------------------------------------------

    def apply(self, kind: Kind) -> None:
        """Write one kind's differences (new and changed rows only)."""
        if kind is Kind.SCHOOL:
            self._apply_schools()
        elif kind is Kind.LINK:
            self._apply(LINKS)
        else:
            self._apply(STUDENTS if kind is Kind.STUDENT else REPRESENTATIVES)

    def finish(self) -> None:
        """Mark the vanished records of the imported schools, close accounts left without a present record."""
        now, given, counts = self.now, self.request.sources, self.report.counts
        self.sql("INSERT INTO stage_scope (uai) SELECT uai FROM stage_students UNION "
                 "SELECT uai FROM stage_representatives UNION SELECT uai FROM stage_links")
        for uai in self.report.uais:
            self.sql("INSERT INTO stage_scope (uai) SELECT :u WHERE NOT EXISTS "
                     "(SELECT 1 FROM stage_scope WHERE uai = :u)", u=uai)
        for target in (STUDENTS, REPRESENTATIVES):
            if target.kind in given:
                counts[target.kind].leaving = self.sql(target.vanish(), now=now).rowcount
        if Kind.LINK in given:
            counts[Kind.LINK].leaving = self.sql(LINKS_VANISH, now=now).rowcount
        if counts[Kind.STUDENT].leaving or counts[Kind.REPRESENTATIVE].leaving:
            closed = self.sql(CLOSE_ACCOUNTS, now=now).rowcount
            ended = self.sql(END_SESSIONS, now=now).rowcount if closed else 0
            log.info("register import: %d accounts closed, %d sessions ended", closed, ended)

    def _apply_schools(self) -> None:
        counts = self.report.counts[Kind.SCHOOL]
        row = self.sql(SCHOOL_COUNTS).one()
        counts.added, counts.updated = int(row[0] or 0), int(row[1] or 0)
        counts.unchanged = int(row[2] or 0) - counts.added - counts.updated
        self.sql(SCHOOL_UPDATE, now=self.now)
        self.sql(SCHOOL_INSERT, now=self.now)

    def _apply(self, target: Target) -> None:
        counts = self.report.counts[target.kind]
        row = self.sql(target.counts()).one()
        counts.added, counts.returned, counts.updated = (int(v or 0) for v in row[:3])
        counts.unchanged = int(row[3] or 0) - counts.added - counts.returned - counts.updated
        if counts.updated or counts.returned:
            self.sql(target.update(), now=self.now)
        if not counts.added:
            return
        if self.pg and counts.added >= BULK_LOAD_ROWS and not self.count(f"SELECT COUNT(*) FROM (SELECT 1 FROM "
                                                                          f"{target.table} LIMIT 1) t"):
            self._bulk_insert(target)
        else:
            self.sql(target.insert(), now=self.now)

    def _bulk_insert(self, target: Target) -> None:
        """First load of an empty table: check its keys once for all rows, not once per row.

        PostgreSQL checks a foreign key with one query per inserted row and maintains every index row by row;
        for a first load of hundreds of thousands of rows that is most of the import. The table's foreign
        keys, unique constraints and secondary indexes are dropped, the rows inserted, and the same
        definitions put back, which checks every row at once ("Populating a Database" in the PostgreSQL
        manual). It happens inside the import's transaction: a violation, or any failure, rolls everything
        back, definitions included; until then the table is locked.
        """
        constraints = self.sql(_TABLE_CONSTRAINTS, t=target.table).all()
        indexes = self.sql(_TABLE_INDEXES, t=target.table).all()
        try:
            with self.conn.begin_nested():
                for name, _definition in constraints:
                    self.sql(f'ALTER TABLE {target.table} DROP CONSTRAINT "{name}"')
                for name, _definition in indexes:
                    self.sql(f"DROP INDEX {name}")  # regclass text: already quoted when needed
        except DBAPIError as exc:  # e.g. not the owner of the table: keys are checked row by row
            if is_outage(exc):
                raise
            log.warning("register import: %s kept as it is (%s)", target.table, type(exc.orig).__name__)
            self.sql(target.insert(), now=self.now)
            return
        self.sql(target.insert(bulk=True), now=self.now)
        for _name, definition in indexes:
            self.sql(definition)
        for name, definition in reversed(constraints):  # unique constraints, then foreign keys
            self.sql(f'ALTER TABLE {target.table} ADD CONSTRAINT "{name}" {definition}')

    def _resolve_links(self) -> None:
        suffix = " ON COMMIT DROP" if self.pg else ""
        self.sql(f"CREATE TEMPORARY TABLE stage_link_ids{suffix} AS SELECT l.line, l.ine, l.uai, "
                 "l.representative_id AS rep_external_id, st.id AS student_id, r.id AS representative_id, "
                 "l.relationship, l.legal AS legal_responsibility, l.fingerprint FROM stage_links l "
                 "LEFT JOIN students st ON st.ine = l.ine "
                 "LEFT JOIN representatives r ON r.uai = l.uai AND r.external_id = l.representative_id")
        if self.pg:
            self.sql("ANALYZE stage_link_ids")
        else:
            self.sql("CREATE INDEX temp.stage_link_ids_ix ON stage_link_ids (student_id, representative_id)")


# --- the SQL ---------------------------------------------------------------------------------------

#: Foreign keys, then unique constraints, of a table (``pg_get_constraintdef`` gives them back verbatim).
_TABLE_CONSTRAINTS = ("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                      "WHERE conrelid = CAST(:t AS regclass) AND contype IN ('f', 'u') ORDER BY contype, conname")
#: Indexes that are neither the primary key nor behind a constraint, with their CREATE INDEX statements.
_TABLE_INDEXES = ("SELECT CAST(i.indexrelid AS regclass)::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                  "WHERE i.indrelid = CAST(:t AS regclass) AND NOT i.indisprimary AND NOT EXISTS "
                  "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)")


@dataclass(frozen=True)
class Check:
    """A cross-row check: ``select`` yields (line, a, b) for each rejected row of ``table``."""

    kind: Kind
    select: str
    message: str
    table: str = ""  # default: the kind's staging table
    seen: str = ""  # columns of ``table`` holding the key (default: ``_SEEN_KEY``)


def _duplicates(table: str, key: tuple[str, ...], shown: str, where: str = "") -> str:
    on = " AND ".join(f"d.{k} = s.{k}" for k in key)
    keys = ", ".join(key)
    filtered = f"(SELECT * FROM {table} WHERE {where})" if where else table
    return (f"SELECT s.line AS line, s.{shown} AS a, d.first AS b FROM {filtered} s JOIN (SELECT {keys}, "
            f"MIN(line) AS first FROM {filtered} x GROUP BY {keys} HAVING COUNT(*) > 1) d ON {on} "
            "WHERE s.line > d.first")


def _unknown_school(table: str) -> str:
    return (f"SELECT s.line AS line, s.uai AS a, '' AS b FROM {table} s WHERE "
            "NOT EXISTS (SELECT 1 FROM stage_schools k WHERE k.uai = s.uai) AND "
            "NOT EXISTS (SELECT 1 FROM schools k WHERE k.uai = s.uai)")


CHECKS = (
    Check(Kind.SCHOOL, _duplicates("stage_schools", ("uai",), "uai"), "UAI « {a} » en double (déjà ligne {b})"),
    Check(Kind.STUDENT, _duplicates("stage_students", ("ine",), "ine"), "INE « {a} » en double (déjà ligne {b})"),
    Check(Kind.STUDENT, _unknown_school("stage_students"),
          "établissement inconnu « {a} » (ni dans le fichier des établissements ni dans la base)"),
    Check(Kind.REPRESENTATIVE, _duplicates("stage_representatives", ("uai", "external_id"), "external_id"),
          "responsable « {a} » en double pour cet établissement (déjà ligne {b})"),
    Check(Kind.REPRESENTATIVE, _unknown_school("stage_representatives"),
          "établissement inconnu « {a} » (ni dans le fichier des établissements ni dans la base)"),
    Check(Kind.LINK, _duplicates("stage_links", ("ine", "uai", "representative_id"), "ine"),
          "lien en double pour l'élève « {a} » (déjà ligne {b})"),
    Check(Kind.LINK, "SELECT l.line AS line, l.ine AS a, '' AS b FROM stage_links l WHERE "
                     "NOT EXISTS (SELECT 1 FROM stage_students s WHERE s.ine = l.ine) AND "
                     "NOT EXISTS (SELECT 1 FROM students s WHERE s.ine = l.ine)",
          "élève inconnu : INE « {a} » ni dans le fichier des élèves ni dans la base"),
    Check(Kind.LINK, "SELECT l.line AS line, l.representative_id AS a, l.uai AS b FROM stage_links l WHERE "
                     "NOT EXISTS (SELECT 1 FROM stage_representatives r WHERE r.uai = l.uai AND "
                     "r.external_id = l.representative_id) AND NOT EXISTS (SELECT 1 FROM representatives r "
                     "WHERE r.uai = l.uai AND r.external_id = l.representative_id)",
          "responsable inconnu « {a} » de l'établissement {b} (ni dans le fichier des responsables ni dans "
          "la base)"),
)


_LINK_SEEN = "ine, uai, rep_external_id"
#: The link checks once pupils and representatives are written: an id that did not resolve is unknown.
RESOLVED_LINK_CHECKS = (
    Check(Kind.LINK, "SELECT line, ine AS a, '' AS b FROM stage_link_ids WHERE student_id IS NULL",
          CHECKS[-2].message, "stage_link_ids", _LINK_SEEN),
    Check(Kind.LINK, "SELECT line, rep_external_id AS a, uai AS b FROM stage_link_ids "
                     "WHERE representative_id IS NULL AND student_id IS NOT NULL",
          CHECKS[-1].message, "stage_link_ids", _LINK_SEEN),
    Check(Kind.LINK, _duplicates("stage_link_ids", ("student_id", "representative_id"), "ine",
                                 "student_id IS NOT NULL AND representative_id IS NOT NULL"),
          CHECKS[-3].message, "stage_link_ids", _LINK_SEEN),
)


@dataclass(frozen=True)
class Target:
    """A register table and the staging table it is upserted from, by key, comparing fingerprints."""

    kind: Kind
    table: str
    stage: str
    key: tuple[str, ...]
    data: tuple[str, ...]
    ordered: bool = False  # insert by ascending integer keys: index maintenance stays on the same pages
    person: bool = True  # people have left_at; links do not

    def _on(self, left: str) -> str:
        return " AND ".join(f"{left}.{k} = s.{k}" for k in self.key)

    def counts(self) -> str:
        """added, returned, updated, total."""
        return ("SELECT SUM(CASE WHEN t.id IS NULL THEN 1 ELSE 0 END), "
                "SUM(CASE WHEN t.status <> 'present' THEN 1 ELSE 0 END), "
                "SUM(CASE WHEN t.status = 'present' AND t.fingerprint <> s.fingerprint THEN 1 ELSE 0 END), "
                f"COUNT(*) FROM {self.stage} s LEFT JOIN {self.table} t ON {self._on('t')}")

    def update(self) -> str:
        """Rewrite changed and returning rows only."""
        values = ", ".join(f"{c} = s.{c}" for c in self.data)
        left = ", left_at = NULL" if self.person else ""
        return (f"UPDATE {self.table} SET {values}, status = 'present'{left}, updated_at = :now "
                f"FROM {self.stage} s WHERE {self._on(self.table)} AND ({self.table}.fingerprint <> s.fingerprint "
                f"OR {self.table}.status <> 'present')")

    def insert(self, *, bulk: bool = False) -> str:
        """Add rows never seen before (in key order when the table's indexes are kept up row by row)."""
        columns = ", ".join(self.key + self.data)
        values = ", ".join(f"s.{c}" for c in self.key + self.data)
        order = f" ORDER BY {', '.join('s.' + k for k in self.key)}" if self.ordered and not bulk else ""
        return (f"INSERT INTO {self.table} ({columns}, status, updated_at) SELECT {values}, 'present', :now "
                f"FROM {self.stage} s WHERE NOT EXISTS (SELECT 1 FROM {self.table} t WHERE {self._on('t')})"
                + order)

    def vanish(self) -> str:
        """Mark "leaving" the present records of the imported schools that the import no longer has."""
        seen = " AND ".join(f"x.k{n} = {self.table}.{k}" for n, k in enumerate(self.key, 1))
        return (f"UPDATE {self.table} SET status = 'leaving', left_at = :now, updated_at = :now "
                f"WHERE status = 'present' AND uai IN (SELECT uai FROM stage_scope) "
                f"AND NOT EXISTS (SELECT 1 FROM {self.stage} s WHERE {self._on(self.table)}) "
                f"AND NOT EXISTS (SELECT 1 FROM stage_seen x WHERE x.kind = '{self.kind.value}' AND {seen})")


STUDENTS = Target(Kind.STUDENT, "students", "stage_students", ("ine",),
                  ("uai", "external_id", "family_name", "given_names", "birth_date", "class_code", "level",
                   "postal_code", "fingerprint"))
REPRESENTATIVES = Target(Kind.REPRESENTATIVE, "representatives", "stage_representatives", ("uai", "external_id"),
                         ("family_name", "given_names", "mobile_phone", "email", "postal_code", "fingerprint"))
LINKS = Target(Kind.LINK, "student_links", "stage_link_ids", ("student_id", "representative_id"),
               ("relationship", "legal_responsibility", "fingerprint"), ordered=True, person=False)

LINKS_VANISH = (
    "UPDATE student_links SET status = 'leaving', updated_at = :now WHERE status = 'present' "
    "AND representative_id IN (SELECT r.id FROM representatives r JOIN stage_scope sc ON sc.uai = r.uai) "
    "AND NOT EXISTS (SELECT 1 FROM stage_link_ids s WHERE s.student_id = student_links.student_id "
    "AND s.representative_id = student_links.representative_id) "
    "AND NOT EXISTS (SELECT 1 FROM stage_seen x JOIN students st ON st.ine = x.k1 JOIN representatives r "
    "ON r.uai = x.k2 AND r.external_id = x.k3 WHERE x.kind = 'link' AND st.id = student_links.student_id "
    "AND r.id = student_links.representative_id)")

SCHOOL_DIFFERS = "(t.name <> s.name OR t.kind <> s.kind OR t.academie <> s.academie OR t.city <> s.city)"
SCHOOL_COUNTS = (f"SELECT SUM(CASE WHEN t.uai IS NULL THEN 1 ELSE 0 END), "
                 f"SUM(CASE WHEN t.uai IS NOT NULL AND {SCHOOL_DIFFERS} THEN 1 ELSE 0 END), COUNT(*) "
                 "FROM stage_schools s LEFT JOIN schools t ON t.uai = s.uai")
SCHOOL_UPDATE = ("UPDATE schools SET name = s.name, kind = s.kind, academie = s.academie, city = s.city, "
                 "updated_at = :now FROM stage_schools s WHERE schools.uai = s.uai AND "
                 + SCHOOL_DIFFERS.replace("t.", "schools."))
SCHOOL_INSERT = ("INSERT INTO schools (uai, name, kind, academie, city, updated_at) SELECT s.uai, s.name, s.kind, "
                 "s.academie, s.city, :now FROM stage_schools s "
                 "WHERE NOT EXISTS (SELECT 1 FROM schools t WHERE t.uai = s.uai)")

#: An account whose records just became "leaving" and that has no present record left is closed.
CLOSE_ACCOUNTS = (
    "UPDATE accounts SET state = 'closed', closed_at = :now WHERE state <> 'closed' AND id IN "
    "(SELECT account_id FROM students WHERE status = 'leaving' AND left_at = :now AND account_id IS NOT NULL "
    "UNION SELECT account_id FROM representatives WHERE status = 'leaving' AND left_at = :now "
    "AND account_id IS NOT NULL) "
    "AND NOT EXISTS (SELECT 1 FROM students s WHERE s.account_id = accounts.id AND s.status = 'present') "
    "AND NOT EXISTS (SELECT 1 FROM representatives r WHERE r.account_id = accounts.id AND r.status = 'present')")
END_SESSIONS = ("UPDATE sso_sessions SET ended_at = :now WHERE ended_at IS NULL AND account_id IN "
                "(SELECT id FROM accounts WHERE state = 'closed' AND closed_at = :now)")
