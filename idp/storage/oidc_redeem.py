"""The token endpoint's two hot statements: redeem a code or rotate a refresh token, and store the new tokens.

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, func, insert, literal, select, union_all, update

from idp.errors import ServiceUnavailable
from idp.storage.db import Database
from idp.storage.models import AccountRow, UtcDateTime
from idp.storage.oidc_store import (
    _C,
    _G,
    _GRANT_COLUMNS,
    _T,
    GrantRecord,
    SqlOidcStore,
    _grant_of,
)
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


_A = AccountRow.__table__
_AT = bindparam("at", type_=UtcDateTime())
_INSERTED = ["token_hash", "kind", "grant_id", "client_id", "scope", "created_at", "expires_at"]


def _issue(taken: Any, with_refresh: bool) -> Any:
    """``INSERT INTO oidc_tokens SELECT …`` the new access (and refresh) token rows for what ``taken`` returned."""
    rows: list[Select[Any]] = [select(bindparam("ah"), literal("access"), taken.c.token_grant, bindparam("cid"),
                                      taken.c.token_scope, _AT, bindparam("aexp", type_=UtcDateTime()))]
    if with_refresh:
        rows.append(select(bindparam("rh"), literal("refresh"), taken.c.token_grant, bindparam("cid"),
                           taken.c.token_scope, _AT,
                           func.least(bindparam("rexp", type_=UtcDateTime()), taken.c.g_expires_at)))
    return insert(_T).from_select(_INSERTED, union_all(*rows) if len(rows) > 1 else rows[0]).cte("issued")


def _refresh_statement() -> Any:
    taken = (update(_T).where(_T.c.token_hash == bindparam("h"), _T.c.kind == "refresh", _T.c.used_at.is_(None),
                              _T.c.revoked_at.is_(None), _T.c.client_id == bindparam("cid"), _T.c.expires_at > _AT,
                              _G.c.id == _T.c.grant_id, _G.c.revoked_at.is_(None), _A.c.id == _G.c.account_id,
                              _A.c.state == "active")
             .values(used_at=_AT)
             .returning(_T.c.grant_id.label("token_grant"), _T.c.scope.label("token_scope"), *_GRANT_COLUMNS)
             .cte("taken"))
    return select(taken).add_cte(_issue(taken, with_refresh=True))


def _code_statement(with_refresh: bool) -> Any:
    taken = (update(_C).where(_C.c.code_hash == bindparam("h"), _C.c.used_at.is_(None),
                              _C.c.client_id == bindparam("cid"), _C.c.redirect_uri == bindparam("ruri"),
                              _C.c.code_challenge == bindparam("challenge"), _C.c.expires_at > _AT,
                              _G.c.id == _C.c.grant_id, _G.c.revoked_at.is_(None))
             .values(used_at=_AT)
             .returning(_C.c.nonce, _G.c.id.label("token_grant"), _G.c.scope.label("token_scope"), *_GRANT_COLUMNS)
             .cte("taken"))
    return select(taken).add_cte(_issue(taken, with_refresh))


_REFRESH = _refresh_statement()
_CODE = {True: _code_statement(True), False: _code_statement(False)}


class TokenRedeemer:
    """Redeem codes and refresh tokens in the fewest round trips the database allows."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._postgresql = db.dialect == "postgresql"
        self._autocommit = db.engine.execution_options(isolation_level="AUTOCOMMIT")

    def refresh(self, token_hash: str, client_id: str, at: dt.datetime, new: NewTokens) -> Redeemed | None:
        """Rotate a live refresh token of this client (its grant live, the account active) and store ``new``."""
        params = {"h": token_hash, "cid": client_id, "at": at, "ah": new.access_hash, "aexp": new.access_expires,
                  "rh": new.refresh_hash, "rexp": new.refresh_expires}
        if self._postgresql:
            return self._one(_REFRESH, params)

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
            return self._one(_CODE[new.refresh_hash is not None], params)

        def slow(store: SqlOidcStore) -> Redeemed | None:
            code = store.code(code_hash)
            if (code is None or code.client_id != client_id or code.redirect_uri != redirect_uri
                    or code.code_challenge != challenge or code.used_at is not None or at >= code.expires_at
                    or code.grant.revoked_at is not None or not store.consume_code(code_hash, at)):
                return None
            return Redeemed(code.grant, code.grant.scope, code.nonce)

        return self._transaction(slow, new, client_id, at)

    def _one(self, statement: Any, params: dict[str, Any]) -> Redeemed | None:
        try:
            with self._autocommit.connect() as conn:
                row = conn.execute(statement, params).first()
        except OUTAGE_ERRORS as exc:
            _raise_outage(exc)
            raise
        if row is None:
            return None
        m = row._mapping
        return Redeemed(_grant_of(row), m["token_scope"], m.get("nonce") or "")

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

