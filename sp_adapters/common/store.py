"""Each adapter's own SQLite database, and its server-side local sessions.

A local session is a row; the browser's signed cookie only carries its random id. Logging out (in the
browser, or by a back-channel message of the identity provider naming the IdP-side reference: SAML
SessionIndex, CAS ticket, OIDC ``sid``) marks the row ended, so the next request is anonymous.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SESSIONS_DDL = """
CREATE TABLE IF NOT EXISTS local_sessions (
    id TEXT PRIMARY KEY,
    user_key TEXT NOT NULL,
    idp_ref TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    ended_at REAL
);
CREATE INDEX IF NOT EXISTS local_sessions_ref ON local_sessions (idp_ref);
CREATE INDEX IF NOT EXISTS local_sessions_user ON local_sessions (user_key);
"""


class Store:
    """A SQLite file in the data directory; one short connection per unit of work (thread-safe)."""

    def __init__(self, path: Path, ddl: str = "") -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SESSIONS_DDL + ddl)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=10)
        conn.row_factory = sqlite3.Row
        try:
            yield conn
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()

    def one(self, sql: str, *params: Any) -> sqlite3.Row | None:
        with self.connect() as conn:
            row: sqlite3.Row | None = conn.execute(sql, params).fetchone()
            return row

    def all(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        with self.connect() as conn:
            return list(conn.execute(sql, params).fetchall())

    def run(self, sql: str, *params: Any) -> int:
        with self.connect() as conn:
            return conn.execute(sql, params).rowcount

    # --- local sessions ---------------------------------------------------------------------------------

    def open_session(self, user_key: str, idp_ref: str, data: dict[str, Any]) -> str:
        session_id = secrets.token_urlsafe(32)
        self.run("INSERT INTO local_sessions (id, user_key, idp_ref, data, created_at) VALUES (?, ?, ?, ?, ?)",
                 session_id, user_key, idp_ref, json.dumps(data), time.time())
        return session_id

    def live_session(self, session_id: str | None) -> dict[str, Any] | None:
        if not session_id:
            return None
        row = self.one("SELECT * FROM local_sessions WHERE id = ? AND ended_at IS NULL", session_id)
        if row is None:
            return None
        return {"id": row["id"], "user_key": row["user_key"], "idp_ref": row["idp_ref"], **json.loads(row["data"])}

    def update_session(self, session_id: str, data: dict[str, Any]) -> None:
        self.run("UPDATE local_sessions SET data = ? WHERE id = ?", json.dumps(data), session_id)

    def end_session(self, session_id: str) -> None:
        self.run("UPDATE local_sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL", time.time(), session_id)

    def end_by_ref(self, idp_ref: str) -> int:
        """End every live session opened with this IdP reference; how many were ended."""
        if not idp_ref:
            return 0
        return self.run("UPDATE local_sessions SET ended_at = ? WHERE idp_ref = ? AND ended_at IS NULL",
                        time.time(), idp_ref)

    def end_by_user(self, user_key: str) -> int:
        return self.run("UPDATE local_sessions SET ended_at = ? WHERE user_key = ? AND ended_at IS NULL",
                        time.time(), user_key)
