"""The OIDC hot statements: issue a code (grant, code, session participant), redeem a code or rotate a refresh
token and store the new tokens, read what userinfo needs. Each is one round trip on PostgreSQL.

Issuing a code writes its grant, the code (hashed) and, once per session and client, the single-logout
participant, in one statement.

Each runs only when the request matches the stored artefact in full (client, redirect URI, PKCE challenge,
lifetime, live grant, active account for refresh tokens); otherwise nothing is written and ``None`` sends
the request down the general path, which explains what is wrong (replay, reuse, mismatch) and revokes the
grant where it must.

On PostgreSQL the conditional ``UPDATE … RETURNING`` (single use: exactly one caller wins, SECURITY R04)
and the ``INSERT`` of the new tokens are one statement (data-modifying CTEs) run in autocommit: one round
trip, no ``BEGIN``/``COMMIT``. SQLite cannot put DML in a CTE nor return a joined table's columns: there
the same conditions run as a read then a conditional update inside one ``BEGIN IMMEDIATE`` transaction.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Select,
    bindparam,
    exists,
    func,
    insert,
    literal,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import replacement_traverse

from idp.core.accounts.model import Account
from idp.errors import ServiceUnavailable
from idp.storage.accounts import _LINKED_RECORDS, to_account
from idp.storage.db import Database
from idp.storage.models import SessionParticipantRow, UtcDateTime, table_of
from idp.storage.oidc_store import (
    _A,
    _C,
    _G,
    _GRANT_COLUMNS,
    _T,
    GrantRecord,
    SqlOidcStore,
    TokenRecord,
    grant_from,
    taken_code,
    taken_refresh,
)
from idp.storage.rawsql import RawStatement
from idp.storage.uow import OUTAGE_ERRORS, is_outage


@dataclass(frozen=True)
class NewTokens:
    """The hashes and expiries of the tokens a successful redemption stores (refresh capped by the grant)."""

    access_hash: str
    access_expires: dt.datetime
    refresh_hash: str | None
    refresh_expires: dt.datetime


@dataclass(frozen=True)
class Redeemed:
    """What the ID token and the answer need: the grant, the scope of the new tokens, the code's nonce."""

    grant: GrantRecord
    scope: str
    nonce: str = ""


_AT = bindparam("at", type_=UtcDateTime())
_INSERTED = ["token_hash", "kind", "grant_id", "client_id", "scope", "created_at", "expires_at"]


def _redeem(taken: Any, scope: Any, with_refresh: bool, *extra: Any) -> Any:
    """``taken``'s grant (by primary key) and the new access (and refresh) token rows inserted; the statement
    returns the grant's columns (``g_*``), ``token_scope`` and ``extra`` only."""
    live = (select(*_GRANT_COLUMNS, scope.label("token_scope"), *extra)
            .select_from(taken.join(_G, _G.c.id == taken.c.grant_id)).cte("live"))
    rows: list[Select[Any]] = [select(bindparam("ah"), literal("access"), live.c.g_id, bindparam("cid"),
                                      live.c.token_scope, _AT, bindparam("aexp", type_=UtcDateTime()))]
    if with_refresh:
        rows.append(select(bindparam("rh"), literal("refresh"), live.c.g_id, bindparam("cid"), live.c.token_scope,
                           _AT, func.least(bindparam("rexp", type_=UtcDateTime()), live.c.g_expires_at)))
    issued = insert(_T).from_select(_INSERTED, union_all(*rows) if len(rows) > 1 else rows[0]).cte("issued")
    return select(live).add_cte(issued)


def _refresh_statement() -> Any:
    taken = taken_refresh()
    return _redeem(taken, taken.c.scope, True)


def _code_statement(with_refresh: bool) -> Any:
    taken = taken_code()
    return _redeem(taken, _G.c.scope, with_refresh, taken.c.nonce)


_P = table_of(SessionParticipantRow)
_INSERT_GRANT = insert(_G).values({c.name: bindparam(f"g_{c.name}", type_=c.type) for c in _G.c})
_INSERT_CODE = insert(_C).values({c.name: bindparam(f"c_{c.name}", type_=c.type) for c in _C.c})
# One participant row per session and client is enough for single logout (the same sid and sub every time).
_ADD_PARTICIPANT = insert(_P).from_select(
    ["session_id", "protocol", "client_id", "data", "created_at"],
    select(bindparam("g_session_id"), literal("oidc"), bindparam("g_client_id"), bindparam("p_data"),
           bindparam("g_created_at", type_=UtcDateTime()))
    .where(~exists().where(_P.c.session_id == bindparam("g_session_id"), _P.c.protocol == "oidc",
                           _P.c.client_id == bindparam("g_client_id"))))
_ISSUE_CODE = (select(literal(1)).add_cte(_INSERT_GRANT.cte("grant_row")).add_cte(_INSERT_CODE.cte("code_row"))
               .add_cte(_ADD_PARTICIPANT.cte("participant_row")))


@dataclass(frozen=True)
class NewCode:
    """An authorization code to store (hashed) with its grant, bound to redirect URI, nonce and PKCE challenge."""

    grant: GrantRecord
    code_hash: str
    redirect_uri: str
    nonce: str
    code_challenge: str
    code_challenge_method: str
    expires_at: dt.datetime


def _code_params(new: NewCode) -> dict[str, Any]:
    g = new.grant
    params: dict[str, Any] = {f"g_{name}": value for name, value in (
        ("id", g.id), ("client_id", g.client_id), ("account_id", g.account_id), ("session_id", g.session_id),
        ("sid", g.sid), ("sub", g.sub), ("scope", g.scope), ("auth_time", g.auth_time), ("acr", g.acr),
        ("amr", json.dumps(list(g.amr))), ("created_at", g.created_at), ("expires_at", g.expires_at),
        ("revoked_at", None))}
    params.update({"c_code_hash": new.code_hash, "c_grant_id": g.id, "c_client_id": g.client_id,
                   "c_redirect_uri": new.redirect_uri, "c_nonce": new.nonce, "c_code_challenge": new.code_challenge,
                   "c_code_challenge_method": new.code_challenge_method, "c_created_at": g.created_at,
                   "c_expires_at": new.expires_at, "c_used_at": None,
                   "p_data": json.dumps({"sid": g.sid, "sub": g.sub})})
    return params


def _bearer_statement() -> Any:
    """UserInfo's reads in one statement: the token with its grant (by primary key, the CTE materialised so that
    the planner starts from the token), the account's columns (``a_*``, by primary key) and the account's
    register records (``SqlAccountRepository.linked_records``' query) as a JSON array."""
    token = (select(_T.c.kind, _T.c.client_id, _T.c.scope, _T.c.created_at, _T.c.expires_at, _T.c.used_at,
                    _T.c.revoked_at, *_GRANT_COLUMNS)
             .join(_G, _G.c.id == _T.c.grant_id).where(_T.c.token_hash == bindparam("h"))
             .cte("bearer").prefix_with("MATERIALIZED"))

    def account_of_token(element: Any) -> Any:
        if isinstance(element, BindParameter) and element.key == "account_id":
            return token.c.g_account_id
        return None

    # SQLAlchemy's stubs declare replacement_traverse for column elements; a Select is traversed the same way.
    query: Select[Any] = replacement_traverse(_LINKED_RECORDS, {}, account_of_token)  # type: ignore[call-overload]
    linked = query.subquery("linked")
    fields = [part for column in linked.c for part in (literal_column(f"'{column.name}'"), column)]
    records = select(func.json_agg(func.json_build_object(*fields))).scalar_subquery()
    return (select(token, *[c.label(f"a_{c.name}") for c in _A.c], records.label("records"))
            .select_from(token.outerjoin(_A, _A.c.id == token.c.g_account_id)))


@dataclass(frozen=True)
class Bearer:
    """What UserInfo needs about an access token: the token (with grant and account state), the account and
    its register records (as ``linked_records`` returns them)."""

    token: TokenRecord
    account: Account | None
    records: list[dict[str, Any]]


class _Columns:
    """Attribute access to the ``a_*`` columns of a row, for ``to_account``."""

    def __init__(self, row: dict[str, Any]) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        return self._row["a_" + name]


def _bearer_of(token_hash: str, row: dict[str, Any]) -> Bearer:
    account = to_account(_Columns(row)) if row["a_id"] is not None else None  # type: ignore[arg-type]
    token = TokenRecord(token_hash=token_hash, kind=row["kind"], grant=grant_from(row), client_id=row["client_id"],
                        scope=row["scope"], created_at=row["created_at"], expires_at=row["expires_at"],
                        used_at=row["used_at"], revoked_at=row["revoked_at"],
                        account_state=row["a_state"] if account is not None else None)  # type: ignore[arg-type]
    seen: dict[int, dict[str, Any]] = {}
    for record in row["records"] or ():
        record = dict(record)
        record["birth_date"] = dt.date.fromisoformat(record["birth_date"])
        seen[record.pop("id")] = record
    records = sorted(seen.values(), key=lambda r: (r["family_name"], r["given_names"]))
    return Bearer(token, account, records)


_BEARER = _bearer_statement()
_REFRESH = _refresh_statement()
_CODE = {True: _code_statement(True), False: _code_statement(False)}


class TokenRedeemer:
    """Redeem codes and refresh tokens in the fewest round trips the database allows."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._postgresql = db.dialect == "postgresql"
        self._autocommit = db.engine.execution_options(isolation_level="AUTOCOMMIT")
        if self._postgresql:
            engine = db.engine
            self._issue = RawStatement(engine, _ISSUE_CODE)
            self._refresh = RawStatement(engine, _REFRESH)
            self._code = {refresh: RawStatement(engine, statement) for refresh, statement in _CODE.items()}
            self._bearer = RawStatement(engine, _BEARER)

    @property
    def one_statement_bearer(self) -> bool:
        """Whether ``bearer`` is available (PostgreSQL); elsewhere UserInfo reads through ``reading``."""
        return self._postgresql

    def bearer(self, token_hash: str) -> Bearer | None:
        """An access token with its grant, account and register records, in one statement (PostgreSQL only)."""
        row = self._bearer.first({"h": token_hash})
        return _bearer_of(token_hash, row) if row is not None else None

    def issue_code(self, new: NewCode) -> None:
        """Store a code, its grant and the session's participant: one statement in autocommit on PostgreSQL."""
        params = _code_params(new)
        if self._postgresql:
            self._issue.first(params)
            return
        try:
            with self._db.session() as session:
                for statement in (_INSERT_GRANT, _INSERT_CODE, _ADD_PARTICIPANT):
                    session.execute(statement, params)
                session.commit()
        except OUTAGE_ERRORS as exc:
            _raise_outage(exc)
            raise

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads only: in autocommit on PostgreSQL (no ``BEGIN``/``ROLLBACK`` round trips)."""
        try:
            if self._postgresql:
                with self._autocommit.connect() as conn, Session(bind=conn) as session:
                    yield session
                return
            with self._db.session() as session:
                yield session
        except OUTAGE_ERRORS as exc:
            _raise_outage(exc)
            raise

    def refresh(self, token_hash: str, client_id: str, at: dt.datetime, new: NewTokens) -> Redeemed | None:
        """Rotate a live refresh token of this client (its grant live, the account active) and store ``new``."""
        params = {"h": token_hash, "cid": client_id, "at": at, "ah": new.access_hash, "aexp": new.access_expires,
                  "rh": new.refresh_hash, "rexp": new.refresh_expires}
        if self._postgresql:
            return self._one(self._refresh, params)

        def slow(store: SqlOidcStore) -> Redeemed | None:
            token = store.token(token_hash)
            if (token is None or token.kind != "refresh" or token.client_id != client_id or token.used_at is not None
                    or not token.alive(at) or not store.rotate_refresh(token_hash, at)):
                return None
            return Redeemed(token.grant, token.scope)

        return self._transaction(slow, new, client_id, at)

    def code(self, code_hash: str, client_id: str, redirect_uri: str, challenge: str, at: dt.datetime,
             new: NewTokens) -> Redeemed | None:
        """Consume a live code if client, redirect URI and PKCE challenge match, and store ``new``."""
        params = {"h": code_hash, "cid": client_id, "ruri": redirect_uri, "challenge": challenge, "at": at,
                  "ah": new.access_hash, "aexp": new.access_expires, "rh": new.refresh_hash,
                  "rexp": new.refresh_expires}
        if self._postgresql:
            return self._one(self._code[new.refresh_hash is not None], params)

        def slow(store: SqlOidcStore) -> Redeemed | None:
            code = store.code(code_hash)
            if (code is None or code.client_id != client_id or code.redirect_uri != redirect_uri
                    or code.code_challenge != challenge or code.used_at is not None or at >= code.expires_at
                    or code.grant.revoked_at is not None or not store.consume_code(code_hash, at)):
                return None
            return Redeemed(code.grant, code.grant.scope, code.nonce)

        return self._transaction(slow, new, client_id, at)

    @staticmethod
    def _one(statement: RawStatement, params: dict[str, Any]) -> Redeemed | None:
        row = statement.first(params)
        if row is None:
            return None
        return Redeemed(grant_from(row), row["token_scope"], row.get("nonce") or "")

    def _transaction(self, redeem: Callable[[SqlOidcStore], Redeemed | None], new: NewTokens, client_id: str,
                     at: dt.datetime) -> Redeemed | None:
        try:
            with self._db.session() as session:
                store = SqlOidcStore(session)
                redeemed = redeem(store)
                if redeemed is None:
                    return None
                rows = [(new.access_hash, "access", new.access_expires)]
                if new.refresh_hash is not None:
                    rows.append((new.refresh_hash, "refresh", min(new.refresh_expires, redeemed.grant.expires_at)))
                store.add_tokens(redeemed.grant.id, client_id, redeemed.scope, at, rows)
                session.commit()
                return redeemed
        except OUTAGE_ERRORS as exc:
            _raise_outage(exc)
            raise


def _raise_outage(exc: BaseException) -> None:
    if is_outage(exc):
        raise ServiceUnavailable() from exc

