"""Schema migrations with Alembic, run programmatically (``idp init`` and the test fixtures)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from idp.storage.db import Database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config(connection: object | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the database schema up to ``revision``."""
    with db.engine.begin() as conn:
        command.upgrade(_config(conn), revision)


def current_revision(db: Database) -> str | None:
    """The revision the database is at (None before the first migration)."""
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with the code."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def autogenerate(db: Database, message: str) -> None:
    """Write a new revision from the difference between the models and the database (developers only)."""
    with db.engine.begin() as conn:
        command.revision(_config(conn), message=message, autogenerate=True)
