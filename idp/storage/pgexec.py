"""PostgreSQL's hot statements run on psycopg directly, in the caller's unit of work.

The token, UserInfo and SSO paths run one or two statements each, and SQLAlchemy's execution machinery around a
statement (execution context, result metadata, row processing) cost more CPU than psycopg's own work and the
statement's SQL together: half a refresh grant's CPU in the worker. A ``PgStatement`` is a SQLAlchemy Core
statement compiled ONCE for the connection's dialect (the same SQL, bind casts included, that SQLAlchemy sends)
and executed as a psycopg prepared statement on the connection of the caller's ``Session``, so it runs in the
unit of work's transaction or autocommit exactly as ``Session.execute`` would. Rows come back as dicts.

Public APIs only: ``ClauseElement.compile(dialect=…)``, the compiled statement's ``string``, ``params`` and
``binds``, ``Select.selected_columns`` for result types, ``TypeEngine.bind_processor``/``result_processor`` (the
conversions SQLAlchemy itself applies, ``UtcDateTime``'s among them), ``Session.connection()``,
``Connection.connection``'s ``driver_connection`` and ``Connection.invalidate()``.
A psycopg error is raised as SQLAlchemy's (``DBAPIError.instance``), so the unit of work tells an outage (503)
from a bug as for any statement, and a broken connection is invalidated so that the pool does not hand it out
again. The repository method that runs a ``PgStatement`` is the statement's only implementation; SQLite runs
the repository's portable statements through ``Session.execute``.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


class _Compiled:
    """A statement's SQL for one dialect, its default parameters, and the custom types to apply."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if not isinstance(compiled, SQLCompiler) or any(bind.expanding for bind in compiled.binds.values()):
            raise TypeError("a PgStatement needs a statement without expanding (IN) parameters")
        self.sql = compiled.string
        self.defaults = dict(compiled.params)
        # The types' own processors (TypeEngine.bind_processor / result_processor), as SQLAlchemy applies them.
        self.binders = {name: processor for name, bind in compiled.binds.items()
                        if (processor := bind.type.bind_processor(dialect)) is not None}
        columns = getattr(statement, "selected_columns", None) or ()
        self.results = [(index, processor) for index, column in enumerate(columns)
                        if (processor := column.type.result_processor(dialect, None)) is not None]
        self.returns_rows = bool(columns)
        self.names: list[str] | None = None  # the result's column names, read from the first answer


class PgStatement:
    """A Core statement run on psycopg directly (PostgreSQL), compiled at its first use."""

    def __init__(self, statement: ClauseElement) -> None:
        self._statement = statement
        self._compiled: _Compiled | None = None
        self._lock = threading.Lock()

    def first(self, session: Session | Connection, params: dict[str, Any]) -> dict[str, Any] | None:
        """The first row as a dict (None: no row), in the transaction or autocommit of ``session`` (a unit of
        work's ORM session, or its connection)."""
        rows = self._run(session, params, every=False)
        return rows[0] if rows else None

    def all(self, session: Session | Connection, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every row, as dicts (see ``first``)."""
        return self._run(session, params, every=True)

    def execute(self, session: Session | Connection, params: dict[str, Any]) -> None:
        """Run a statement whose rows are not needed."""
        self._run(session, params, every=False)

    def _run(self, session: Session | Connection, params: dict[str, Any], *, every: bool) -> list[dict[str, Any]]:
        connection = session.connection() if isinstance(session, Session) else session
        dialect = connection.dialect
        compiled = self._compiled or self._compile(dialect)
        values = {**compiled.defaults, **params}
        for name, process in compiled.binders.items():
            values[name] = process(values.get(name))
        driver = connection.connection.driver_connection
        try:
            cursor = driver.execute(compiled.sql, values, prepare=True)  # type: ignore[union-attr]
            # (psycopg builds ``description`` anew at each access: read once, for the names.)
            if not compiled.returns_rows:
                rows = []
            elif every:
                rows = cursor.fetchall()
            else:
                rows = [row] if (row := cursor.fetchone()) is not None else []
        except psycopg.Error as exc:
            broken = isinstance(exc, psycopg.OperationalError) or driver.closed  # type: ignore[union-attr]
            if broken:
                connection.invalidate(exc)
            raise DBAPIError.instance(compiled.sql, values, exc, psycopg.Error,
                                      connection_invalidated=broken) from exc
        if rows and compiled.names is None:
            compiled.names = [column.name for column in cursor.description or ()]
        return [self._converted(compiled, row) for row in rows]

    @staticmethod
    def _converted(compiled: _Compiled, row: Any) -> dict[str, Any]:
        values = list(row)
        for index, process in compiled.results:
            values[index] = process(values[index])
        return dict(zip(compiled.names or (), values, strict=True))

    def _compile(self, dialect: Dialect) -> _Compiled:
        with self._lock:
            if self._compiled is None:
                self._compiled = _Compiled(self._statement, dialect)
            return self._compiled
