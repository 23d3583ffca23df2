"""Locks on a name, held until the database transaction ends, for work that must not interleave across workers."""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.orm import Session


def hold(session: Session, key: str) -> None:
    """Wait for, then hold until commit or rollback, the lock named ``key``.

    PostgreSQL: a transaction-scoped advisory lock on a 64-bit hash of the name. SQLite needs none: its
    transactions begin IMMEDIATE (``idp.storage.db``), so writing transactions already run one at a time.
    """
    if session.get_bind().dialect.name == "postgresql":
        number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": number})
