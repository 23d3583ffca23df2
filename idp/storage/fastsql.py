"""The hot units of work on PostgreSQL: Core statements sent by psycopg on one pooled connection.

An ORM ``Session.execute`` costs ~0.3 ms of CPU per statement (cache key, bind and result processing, the
session's own bookkeeping) and building the Session and its repositories ~0.1 ms more; the same statement
sent by psycopg on a held connection costs ~0.08 ms. ``FastUnitOfWork`` checks one pooled connection out at
its first statement and hands the repositories a ``FastExecutor``: the part of the ``Session`` interface they
use (``execute`` → rows with attribute access and ``._mapping``, ``first``, ``all``, ``scalar``, ``rowcount``).

What SQLAlchemy did per execution is done here once per statement and process: each statement is compiled
once for the dialect (a weak-key registry: module-level statements stay compiled, a statement built per call
is compiled for that call and forgotten), and the bind and result processors of the columns' types are looked
up then (``UtcDateTime``: aware UTC in, naive UTC stored, aware UTC out). Anything the executor does not
cover (ORM entities, ``begin_nested``, ``add``…) goes to a real ``Session`` bound to the SAME connection, so
it stays inside the unit of work's transaction. Driver errors are raised as SQLAlchemy's ``DBAPIError``
subclasses (callers catching ``IntegrityError`` keep working); a connection-level failure invalidates the
connection in the pool and becomes ``ServiceUnavailable`` (503) at the end of the unit of work.

An autocommit unit of work uses its thread's held connection (``idp.storage.threadconn``: checked out once
per thread, left in autocommit) instead of a checkout per unit of work; a transactional one checks one out.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Self

import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InvalidRequestError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert, UpdateBase
from sqlalchemy.sql.elements import ClauseElement

from idp.core.ports import ThrottleStore
from idp.errors import ServiceUnavailable
from idp.storage import threadconn

log = logging.getLogger("idp.storage")

TUPLES_OK = psycopg.pq.ExecStatus.TUPLES_OK

# ``x IN (__[POSTCOMPILE_keys])`` (an expanding bind) becomes ``x = ANY(%(keys)s)``: one array parameter, so
# the SQL text stays the same whatever the list's length (and an empty list matches nothing, as with IN).
_EXPANDING_IN = re.compile(r" IN \(__\[POSTCOMPILE_(\w+)\]\)")


class _Fallback(Exception):
    """The statement needs the ORM (entities, context-computed defaults): run it on a Session."""


class _Row(tuple[Any, ...]):
    """Base of the per-statement row classes (named tuples with ``_mapping``, like SQLAlchemy's ``Row``)."""

    __slots__ = ()
    _keys: tuple[str, ...] = ()

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(zip(self._keys, self, strict=True))

    def _asdict(self) -> dict[str, Any]:
        return self._mapping


def _row_class(keys: Sequence[str]) -> type[_Row]:
    base = namedtuple("Row", keys, rename=True)  # type: ignore[misc]  # noqa: PYI024 - names known at run time
    row: type[_Row] = type("Row", (base, _Row), {"__slots__": (), "_keys": tuple(keys)})
    return row


class Prepared:
    """One statement compiled for the dialect, with what binding and reading its rows need."""

    __slots__ = ("sql", "required", "defaults", "binds", "expanding", "keys", "row", "results")

    def __init__(self, statement: ClauseElement, dialect: Any, column_keys: Sequence[str] | None) -> None:
        if getattr(statement, "_propagate_attrs", None) and statement._propagate_attrs.get(
                "compile_state_plugin") == "orm":
            raise _Fallback()
        kw: dict[str, Any] = {}
        if isinstance(statement, UpdateBase) and column_keys is not None:
            kw["column_keys"] = list(column_keys)
        if isinstance(statement, Insert):
            kw["for_executemany"] = True  # no implicit ``RETURNING id``: nothing here reads it
        compiled: Any = statement.compile(dialect=dialect, **kw)  # an SQLCompiler: its attributes are read
        defaults: dict[str, Any] = {}
        for column in [*compiled.insert_prefetch, *compiled.update_prefetch]:
            default = column.default if column in compiled.insert_prefetch else column.onupdate
            if default is None or not default.is_scalar:
                raise _Fallback()  # a callable default wants an execution context: SQLAlchemy's business
            defaults[column.key] = default.arg
        sql = compiled.string
        expanding = {name for name, bind in compiled.binds.items() if bind.expanding}
        if expanding:
            sql = _EXPANDING_IN.sub(lambda m: f" = ANY(%({m.group(1)})s)", sql)
            if "__[POSTCOMPILE_" in sql:
                raise _Fallback()  # NOT IN, tuples…: let SQLAlchemy expand them
        self.sql = sql
        # Values written into the statement (``.values(x=None)`` included); bare ``bindparam("x")`` are required.
        self.required = frozenset(name for name, bind in compiled.binds.items()
                                  if bind.required and name not in defaults)
        self.defaults = {**{k: v for k, v in compiled.params.items() if k not in self.required}, **defaults}
        self.binds: dict[str, Callable[[Any], Any]] = dict(compiled._bind_processors)
        self.expanding = expanding
        self.keys = [entry.keyname for entry in compiled._result_columns]
        self.row = _row_class(self.keys) if self.keys else None  # text(): from the cursor's description
        self.results: list[tuple[int, Callable[[Any], Any]]] = []
        for index, entry in enumerate(compiled._result_columns):
            try:
                processor = entry.type._cached_result_processor(dialect, None)
            except Exception as exc:  # noqa: BLE001 - a type that needs the column's wire type (numerics)
                raise _Fallback() from exc
            if processor is not None:
                self.results.append((index, processor))

    def parameters(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        values = {**self.defaults, **params} if params else dict(self.defaults)
        if self.required and not values.keys() >= self.required:
            missing = sorted(self.required.difference(values))
            raise InvalidRequestError(f"A value is required for bind parameter {missing[0]!r}")
        for name, processor in self.binds.items():
            if name in values:
                value = values[name]
                if name in self.expanding:
                    values[name] = [processor(v) for v in value]
                elif value is not None:
                    values[name] = processor(value)
        for name in self.expanding:
            values[name] = list(values[name])
        return values

    def rows(self, raw: list[tuple[Any, ...]], nfields: int, describe: Callable[[], Sequence[Any]]) -> list[_Row]:
        """The rows as named tuples; the cursor's description (one object per column, ~10 µs each) is only
        read when the column names are not known yet (``text()`` statements) or do not fit."""
        if self.row is None or nfields != len(self.keys):
            self.keys = [column.name for column in describe()]
            self.row = _row_class(self.keys)
        make = self.row._make  # type: ignore[attr-defined]
        if not self.results:
            return [make(r) for r in raw]
        out = []
        for r in raw:
            values = list(r)
            for index, processor in self.results:
                values[index] = processor(values[index])
            out.append(make(values))
        return out


class StatementCache:
    """Statements compiled once per dialect: a weak-key registry (never keyed by ``id()`` of a temporary)."""

    def __init__(self, dialect: Any) -> None:
        self.dialect = dialect
        self._compiled: weakref.WeakKeyDictionary[ClauseElement, dict[Any, Prepared | None]] = (
            weakref.WeakKeyDictionary())

    def get(self, statement: ClauseElement, params: Mapping[str, Any] | None) -> Prepared | None:
        """The compiled statement, or None when it must go through the ORM."""
        column_keys = frozenset(params) if params and isinstance(statement, UpdateBase) else None
        by_keys = self._compiled.get(statement)
        if by_keys is None:
            by_keys = self._compiled[statement] = {}
        elif column_keys in by_keys:
            return by_keys[column_keys]
        try:
            prepared: Prepared | None = Prepared(statement, self.dialect, sorted(column_keys) if column_keys
                                                 else None)
        except _Fallback:
            prepared = None
        by_keys[column_keys] = prepared
        return prepared


class _Scalars(list[Any]):
    def first(self) -> Any:
        return self[0] if self else None

    def all(self) -> list[Any]:
        return list(self)

    def one(self) -> Any:
        if len(self) != 1:
            raise _no_one(len(self))
        return self[0]

    def one_or_none(self) -> Any:
        if len(self) > 1:
            raise _no_one(len(self))
        return self[0] if self else None


def _no_one(count: int) -> Exception:
    from sqlalchemy.exc import MultipleResultsFound, NoResultFound

    return NoResultFound("No row was found when one was required") if not count else MultipleResultsFound(
        "Multiple rows were found when exactly one was required")


class FastResult:
    """The rows of one statement (all fetched), with the ``Result`` methods the repositories call."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[_Row], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[_Row]:
        return iter(self._rows)

    def first(self) -> _Row | None:
        return self._rows[0] if self._rows else None

    def all(self) -> list[_Row]:
        return self._rows

    def one(self) -> _Row:
        return _Scalars(self._rows).one()  # type: ignore[no-any-return]

    def one_or_none(self) -> _Row | None:
        return _Scalars(self._rows).one_or_none()  # type: ignore[no-any-return]

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return row[0] if row is not None else None

    def scalars(self) -> _Scalars:
        return _Scalars(r[0] for r in self._rows)

    def mappings(self) -> list[dict[str, Any]]:
        return [r._mapping for r in self._rows]


class FastExecutor:
    """What the repositories use of a ``Session``, on the unit of work's psycopg connection."""

    __slots__ = ("_uow",)

    def __init__(self, uow: FastUnitOfWork) -> None:
        self._uow = uow

    def execute(self, statement: Any, params: Mapping[str, Any] | None = None) -> Any:
        prepared = self._uow.cache.get(statement, params) if isinstance(statement, ClauseElement) else None
        if prepared is None:
            return self._uow.session.execute(statement, params)
        return self._uow.run(prepared, params)

    def scalars(self, statement: Any, params: Mapping[str, Any] | None = None) -> Any:
        prepared = self._uow.cache.get(statement, params) if isinstance(statement, ClauseElement) else None
        if prepared is None:
            return self._uow.session.scalars(statement, params)
        return self._uow.run(prepared, params).scalars()

    def scalar(self, statement: Any, params: Mapping[str, Any] | None = None) -> Any:
        return self.execute(statement, params).scalar()

    def __getattr__(self, name: str) -> Any:
        # ``add``, ``flush``, ``get``, ``begin_nested``…: the ORM, on the same connection and transaction.
        return getattr(self._uow.session, name)


class FastUnitOfWork:
    """``UnitOfWork`` on one psycopg connection (PostgreSQL): autocommit, or one real transaction.

    The connection is checked out at the first statement; repositories are built when first used. An
    autocommit unit of work commits each statement alone (``commit()`` is a no-op); a transactional one
    commits or rolls back on the same connection (nothing is left of a failed unit of work).
    """

    def __init__(self, engine: Engine, cache: StatementCache, *, autocommit: bool,
                 redis_throttle: ThrottleStore | None = None, catalogue: Any = None) -> None:
        self._engine = engine
        self.cache = cache
        self._autocommit = autocommit
        self._redis_throttle = redis_throttle
        self._catalogue = catalogue
        self._pooled: Any = None
        self._held: threadconn.Held | None = None
        self._driver: psycopg.Connection[Any] | None = None
        self._session: Session | None = None
        self._repos: dict[str, Any] = {}
        self.executor = FastExecutor(self)

    # --- repositories, built on first use ----------------------------------------------------------

    def _repo(self, name: str, build: Callable[[], Any]) -> Any:
        repo = self._repos.get(name)
        if repo is None:
            repo = self._repos[name] = build()
        return repo

    @property
    def accounts(self) -> Any:
        from idp.storage.accounts import SqlAccountRepository

        return self._repo("accounts", lambda: SqlAccountRepository(self.executor))  # type: ignore[arg-type]

    @property
    def sessions(self) -> Any:
        from idp.storage.sessions import SqlSessionRepository

        return self._repo("sessions", lambda: SqlSessionRepository(self.executor, "postgresql"))  # type: ignore[arg-type]

    @property
    def authn_requests(self) -> Any:
        from idp.storage.sessions import SqlAuthnRequestRepository

        return self._repo("authn_requests", lambda: SqlAuthnRequestRepository(self.executor))  # type: ignore[arg-type]

    @property
    def throttle(self) -> Any:
        if self._redis_throttle is not None:
            return self._redis_throttle
        from idp.storage.throttle import SqlThrottleStore

        return self._repo("throttle", lambda: SqlThrottleStore(self.executor, "postgresql"))  # type: ignore[arg-type]

    @property
    def audit(self) -> Any:
        from idp.storage.audit import SqlAuditLog

        return self._repo("audit", lambda: SqlAuditLog(self.executor))  # type: ignore[arg-type]

    @property
    def services(self) -> Any:
        from idp.storage.catalogue import SqlServiceCatalogue

        return self._repo("services", lambda: SqlServiceCatalogue(self.executor, self._catalogue))

    # --- the connection --------------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection[Any]:
        if self._driver is not None:
            return self._driver
        if self._autocommit:  # the thread's held connection, already in autocommit (idp.storage.threadconn)
            try:
                held = threadconn.for_engine(self._engine).checkout()
            except psycopg.Error as exc:
                raise DBAPIError.instance(None, None, exc, psycopg.Error) from exc
            self._held, self._pooled, self._driver = held, held.fairy, held.driver
            return held.driver
        try:
            pooled = self._engine.raw_connection()
        except psycopg.Error as exc:  # the pool hands the driver's connection error through as is
            raise DBAPIError.instance(None, None, exc, psycopg.Error) from exc
        driver: psycopg.Connection[Any] = pooled.driver_connection  # type: ignore[assignment]
        try:
            if driver.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                driver.rollback()  # never expected (the pool resets connections on return)
            if driver.autocommit:
                driver.autocommit = False
        except psycopg.Error as exc:
            self._broken(pooled, exc)
            raise DBAPIError.instance(None, None, exc, psycopg.Error, connection_invalidated=True) from exc
        self._pooled, self._driver = pooled, driver
        return driver

    def _broken(self, pooled: Any, exc: BaseException) -> None:
        """Invalidate a connection the driver found dead (and, like SQLAlchemy, the pool's older ones)."""
        held = self._held
        if held is not None and pooled is held.fairy:
            threadconn.for_engine(self._engine).broken(held, exc)
        else:
            try:
                pool_invalidate = getattr(self._engine.pool, "_invalidate", None)
                if pool_invalidate is not None:
                    pool_invalidate(pooled, exc)
                else:
                    pooled.invalidate(exc)
            except Exception:  # noqa: BLE001 - the connection is gone either way
                log.debug("invalidating a broken connection failed", exc_info=True)
        if pooled is self._pooled:
            self._pooled = self._driver = self._held = None
            self._session = None

    def run(self, prepared: Prepared, params: Mapping[str, Any] | None) -> FastResult:
        """Send one compiled statement; rows fetched and processed, ``rowcount`` kept."""
        values = prepared.parameters(params)
        driver = self._connection()
        try:
            with driver.cursor() as cursor:
                cursor.execute(prepared.sql, values)
                result = cursor.pgresult
                if result is not None and result.status == TUPLES_OK:
                    rows = prepared.rows(cursor.fetchall(), result.nfields, lambda: cursor.description or ())
                else:
                    rows = []
                return FastResult(rows, cursor.rowcount)
        except psycopg.Error as exc:
            raise self._failed(driver, exc, prepared.sql, values) from exc

    def execute_raw(self, sql: str, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """One statement written for psycopg (values already as the columns store them) on this unit of
        work's connection, in its transaction or autocommit; its first row, or None."""
        driver = self._connection()
        try:
            with driver.cursor() as cursor:
                cursor.execute(sql, params)
                result = cursor.pgresult
                return cursor.fetchone() if result is not None and result.status == TUPLES_OK else None
        except psycopg.Error as exc:
            raise self._failed(driver, exc, sql, params) from exc

    def _failed(self, driver: psycopg.Connection[Any], exc: psycopg.Error, sql: str, values: Any) -> Exception:
        """The driver's error as SQLAlchemy's, the connection invalidated when it is gone."""
        invalidated = isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) or driver.closed \
            or driver.broken
        if invalidated:
            self._broken(self._pooled, exc)
        return DBAPIError.instance(sql, values, exc, psycopg.Error, connection_invalidated=invalidated)

    @property
    def session(self) -> Session:
        """A real ORM ``Session`` on this unit of work's connection (for what the executor does not cover)."""
        if self._session is None:
            self._connection()
            connection = Connection(self._engine, connection=self._pooled)
            self._session = Session(bind=connection, expire_on_commit=False, autoflush=False,
                                    join_transaction_mode="rollback_only")
        return self._session

    # --- the unit of work ------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        try:
            self._release()
        finally:
            if exc is not None:
                from idp.storage.uow import is_outage

                if is_outage(exc):
                    log.error("database unavailable: %s", type(exc).__name__)
                    raise ServiceUnavailable() from exc

    def _release(self) -> None:
        pooled, driver, session, held = self._pooled, self._driver, self._session, self._held
        self._pooled = self._driver = self._session = self._held = None
        if pooled is None:
            return
        try:
            if session is not None:
                session.close()
            if driver is not None and not driver.closed \
                    and driver.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                driver.rollback()
            if held is not None:
                return  # stays with this thread, in autocommit, for its next unit of work
            if driver is not None and not driver.closed:
                driver.autocommit = False
        except psycopg.Error as exc:
            if held is not None:
                threadconn.for_engine(self._engine).broken(held, exc)
            else:
                self._broken(pooled, exc)
            return
        except DBAPIError:
            if held is not None:
                return
        pooled.close()

    def commit(self) -> None:
        if self._driver is None:
            return
        try:
            if self._session is not None:
                self._session.flush()
            if not self._autocommit:
                self._driver.commit()
        except psycopg.Error as exc:
            invalidated = isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
            if invalidated:
                self._broken(self._pooled, exc)
                raise ServiceUnavailable() from exc
            raise DBAPIError.instance("COMMIT", None, exc, psycopg.Error) from exc
        except DBAPIError as exc:
            from idp.storage.uow import is_outage

            if is_outage(exc):
                raise ServiceUnavailable() from exc
            raise

    def rollback(self) -> None:
        if self._session is not None:
            self._session.rollback()
        if self._driver is not None and not self._driver.closed:
            self._driver.rollback()
