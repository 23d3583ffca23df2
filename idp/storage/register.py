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
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, text
from sqlalchemy.exc import DBAPIError

from idp.core.audit import REGISTER_IMPORTED
from idp.core.ports import AuditEvent
from idp.core.register.records import ImportReport, Kind, Parsed, RowError
from idp.errors import ServiceUnavailable
from idp.storage.audit import SqlAuditLog
from idp.storage.db import Database
from idp.storage.models import UtcDateTime
from idp.storage.register_spool import SHOWN_ERRORS, Spooler, Tally, staged
from idp.storage.register_sql import (
    CHECKS,
    CLOSE_ACCOUNTS,
    END_SESSIONS,
    LINKS,
    LINKS_VANISH,
    REGISTER_CHANGED,
    REPRESENTATIVES,
    RESOLVED_LINK_CHECKS,
    SCHOOL_COUNTS,
    SCHOOL_INSERT,
    SCHOOL_UPDATE,
    SEEN_KEY,
    SQLITE_INDEXES,
    STAGE,
    STAGE_COLUMNS,
    STUDENTS,
    WIDTH,
    Check,
    Target,
)
from idp.storage.uow import OUTAGE_ERRORS, is_outage

log = logging.getLogger("idp.register")

_LOCK_KEY = 4_829_301  # pg_advisory_xact_lock: one register import at a time
#: Rows added to an empty table from which its foreign keys are checked in bulk (see ``_bulk_insert``).
BULK_LOAD_ROWS = 10_000


@dataclass
class ImportRequest:
    """What to import: one stream of parsed rows per kind (kinds without a source are left alone)."""

    sources: dict[Kind, Iterable[Parsed]]
    file_names: dict[Kind, str]
    uais: tuple[str, ...] = ()
    skip_invalid: bool = False
    dry_run: bool = False


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
            spooler = Spooler([(k, self.request.sources[k]) for k in kinds], self.request.skip_invalid)
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
        for kind, columns in STAGE_COLUMNS.items():
            self.sql(f"CREATE TEMPORARY TABLE {STAGE[kind]} ({columns.format(**types)}){suffix}")
        self.sql(f"CREATE TEMPORARY TABLE stage_seen (kind TEXT, k1 TEXT, k2 TEXT, k3 TEXT){suffix}")
        self.sql(f"CREATE TEMPORARY TABLE stage_scope (uai TEXT PRIMARY KEY){suffix}")

    def drop_stage(self) -> None:
        """Drop the staging tables (SQLite keeps temporary tables for the connection's life)."""
        if not self.pg:
            for table in (*STAGE.values(), "stage_seen", "stage_scope", "stage_link_ids"):
                self.sql(f"DROP TABLE IF EXISTS temp.{table}")

    def stage(self, kind: Kind, spooler: Spooler | None) -> None:
        """Load one kind's rows into its staging table and account for its row errors."""
        table, started = STAGE[kind], time.perf_counter()
        raw: Any = self.conn.connection.driver_connection
        if spooler is not None:
            spool, tally = spooler.take(kind)
            with spool, raw.cursor() as cursor, cursor.copy(f"COPY {table} FROM STDIN") as copy:
                while chunk := spool.read(1 << 20):
                    copy.write(chunk)
        else:
            tally = Tally()
            self._insert_sqlite(raw, kind, staged(kind, self.request.sources[kind], tally,
                                                   self.request.skip_invalid))
        log.debug("%.3fs staged %s", time.perf_counter() - started, table)
        room = SHOWN_ERRORS - len(self.report.errors)
        self.report.errors.extend(e for n, e in enumerate(tally.errors) if n < room or e.fatal)
        self.report.error_total += tally.total
        self.report.counts[kind].invalid += tally.total
        if tally.rejects_kept:
            self.sql(f"INSERT INTO stage_seen SELECT '{kind.value}', {SEEN_KEY[kind]} FROM {table} WHERE NOT ok")
            self.sql(f"DELETE FROM {table} WHERE NOT ok")
        if self.pg:
            self.sql(f"ANALYZE {table}")
        else:
            for number, columns in enumerate(SQLITE_INDEXES[kind]):
                self.sql(f"CREATE INDEX temp.{table}_ix{number} ON {table} {columns}")

    def _insert_sqlite(self, raw: Any, kind: Kind, rows: Iterator[tuple[Any, ...]]) -> None:
        cursor = raw.cursor()
        statement = f"INSERT INTO {STAGE[kind]} VALUES ({', '.join('?' * WIDTH[kind])})"
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
            table, key = check.table or STAGE[check.kind], check.seen or SEEN_KEY.get(check.kind)
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
        """Mark the vanished records of the imported schools, close accounts left without a present record, and
        date the register change of every account whose released values changed (``REGISTER_CHANGED``)."""
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
        if any(c.changed for c in counts.values()):
            changed = self.sql(REGISTER_CHANGED, now=now).rowcount
            log.info("register import: %d accounts see changed register values", changed)

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
