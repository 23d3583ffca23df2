# ruff: noqa: S608 - statements are assembled from this module's constant table and column names only;
# every value is a bound parameter.
"""The register import's SQL: staging tables, the cross-row checks and the set-wise upserts.

Used by ``idp.storage.register``; every statement here is a constant or is built from this module's own
table and column names.
"""

from __future__ import annotations

from dataclasses import dataclass

from idp.core.register.records import Kind

STAGE = {Kind.SCHOOL: "stage_schools", Kind.STUDENT: "stage_students",
         Kind.REPRESENTATIVE: "stage_representatives", Kind.LINK: "stage_links"}
STAGE_COLUMNS = {
    Kind.SCHOOL: "line INTEGER, uai TEXT, name TEXT, kind TEXT, academie TEXT, city TEXT, ok {bool}",
    Kind.STUDENT: "line INTEGER, ine TEXT, uai TEXT, external_id TEXT, family_name TEXT, given_names TEXT, "
                  "birth_date {date}, class_code TEXT, level TEXT, postal_code TEXT, fingerprint TEXT, ok {bool}",
    Kind.REPRESENTATIVE: "line INTEGER, uai TEXT, external_id TEXT, family_name TEXT, given_names TEXT, "
                         "mobile_phone TEXT, email TEXT, postal_code TEXT, fingerprint TEXT, ok {bool}",
    Kind.LINK: "line INTEGER, ine TEXT, uai TEXT, representative_id TEXT, relationship TEXT, legal {bool}, "
               "fingerprint TEXT, ok {bool}",
}
WIDTH = {Kind.SCHOOL: 7, Kind.STUDENT: 12, Kind.REPRESENTATIVE: 10, Kind.LINK: 8}
#: Staging columns holding the key a rejected row is remembered by (see ``RowError.key``).
SEEN_KEY = {Kind.STUDENT: "ine, '', ''", Kind.REPRESENTATIVE: "uai, external_id, ''",
             Kind.LINK: "ine, uai, representative_id"}
SQLITE_INDEXES = {Kind.SCHOOL: ("(uai)",), Kind.STUDENT: ("(ine)",), Kind.REPRESENTATIVE: ("(uai, external_id)",),
                   Kind.LINK: ("(ine)", "(uai, representative_id)")}


@dataclass(frozen=True)
class Check:
    """A cross-row check: ``select`` yields (line, a, b) for each rejected row of ``table``."""

    kind: Kind
    select: str
    message: str
    table: str = ""  # default: the kind's staging table
    seen: str = ""  # columns of ``table`` holding the key (default: ``SEEN_KEY``)


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

#: Accounts whose released values this import changed (it wrote each changed row with ``updated_at = :now``): a
#: pupil's own record or school, a representative's record, a parent's child's record, school or link. Their
#: cached answers (SAML's released attributes, CAS's attributes copies) are then stale.
REGISTER_CHANGED = (
    "UPDATE accounts SET register_changed_at = :now WHERE id IN "
    "(SELECT s.account_id FROM students s JOIN schools sc ON sc.uai = s.uai "
    "WHERE s.updated_at = :now OR sc.updated_at = :now "
    "UNION SELECT account_id FROM representatives WHERE updated_at = :now "
    "UNION SELECT r.account_id FROM student_links l JOIN representatives r ON r.id = l.representative_id "
    "JOIN students s ON s.id = l.student_id JOIN schools sc ON sc.uai = s.uai "
    "WHERE l.updated_at = :now OR s.updated_at = :now OR sc.updated_at = :now)")

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
