"""The Alembic migrations create exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from idp.storage import schema
from idp.storage.db import Database
from idp.storage.models import Base


def test_migrations_match_models(tmp_path, base_settings) -> None:  # noqa: ANN001
    from dataclasses import replace

    settings = replace(base_settings, database=replace(base_settings.database, url=f"sqlite:///{tmp_path}/m.db"))
    db = Database(settings)
    schema.upgrade(db)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"
    assert schema.current_revision(db) == schema.head_revision()
    db.dispose()


def test_migrations_run_on_the_test_database(db) -> None:
    assert schema.current_revision(db) == schema.head_revision()
