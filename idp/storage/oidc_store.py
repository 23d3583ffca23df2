"""SQL storage of the OpenID Connect provider: clients, grants, codes, tokens, consents, replay caches.

Secrets never rest in clear: client secrets, authorization codes and tokens are stored as the SHA-256 of a
256-bit random value (``secrets.token_urlsafe(32)``), so a database dump hands out nothing usable. Single-use
artefacts are consumed with one conditional ``UPDATE … WHERE used_at IS NULL`` (SECURITY R04): exactly one
caller wins, on SQLite and PostgreSQL alike. Every token belongs to a *grant* (one authorization); revoking
the grant kills every token issued under it (code replay, refresh-token reuse, logout).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Protocol

from sqlalchemy import (
    Boolean,
    Connection,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from idp.core.accounts.model import Account
from idp.storage import catalogue
from idp.storage.accounts import SqlAccountRepository, distinct_records, linked_records_of, to_account
from idp.storage.models import (
    AccountRow,
    Base,
    ServiceProviderRow,
    SessionParticipantRow,
    UtcDateTime,
    table_of,
)
from idp.storage.pgexec import PgStatement


def digest(secret: str) -> str:
    """The stored form of a high-entropy secret (client secret, code, token): its SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


# --- rows ------------------------------------------------------------------------------------------


class OidcClientRow(Base):
    """A registered OIDC client (relying party)."""

    __tablename__ = "oidc_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(64), default="")
    auth_method: Mapped[str] = mapped_column(String(30))
    redirect_uris: Mapped[str] = mapped_column(Text, default="[]")
    post_logout_redirect_uris: Mapped[str] = mapped_column(Text, default="[]")
    scopes: Mapped[str] = mapped_column(Text, default="openid")
    jwks: Mapped[str] = mapped_column(Text, default="")
    jwks_uri: Mapped[str] = mapped_column(String(400), default="")
    subject_type: Mapped[str] = mapped_column(String(10), default="pairwise")
    sector_identifier: Mapped[str] = mapped_column(String(255), default="")
    refresh_tokens: Mapped[bool] = mapped_column(Boolean, default=False)
    first_party: Mapped[bool] = mapped_column(Boolean, default=False)
    backchannel_logout_uri: Mapped[str] = mapped_column(String(400), default="")
    id_token_alg: Mapped[str] = mapped_column(String(10), default="RS256")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    secret_changed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class OidcGrantRow(Base):
    """One authorization: a person, a client, the SSO session it came from; tokens hang off it."""

    __tablename__ = "oidc_grants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    session_id: Mapped[str] = mapped_column(String(64), index=True)
    sid: Mapped[str] = mapped_column(String(64))
    sub: Mapped[str] = mapped_column(String(255))
    scope: Mapped[str] = mapped_column(Text)
    auth_time: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    acr: Mapped[str] = mapped_column(String(40), default="")
    amr: Mapped[str] = mapped_column(String(80), default="[]")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class OidcCodeRow(Base):
    """An authorization code (hashed), single use, bound to client, redirect_uri and PKCE challenge."""

    __tablename__ = "oidc_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("oidc_grants.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    redirect_uri: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str] = mapped_column(Text, default="")
    code_challenge: Mapped[str] = mapped_column(String(128), default="")
    code_challenge_method: Mapped[str] = mapped_column(String(10), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class OidcTokenRow(Base):
    """An access or refresh token (hashed); alive while neither it nor its grant is revoked or expired."""

    __tablename__ = "oidc_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # access, refresh
    grant_id: Mapped[str] = mapped_column(ForeignKey("oidc_grants.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class OidcConsentRow(Base):
    """Scopes a person agreed to release to a third-party client (listed and revocable on the account page)."""

    __tablename__ = "oidc_consents"
    __table_args__ = (UniqueConstraint("account_id", "client_id", name="uq_oidc_consents_account_client"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class OidcPendingRow(Base):
    """An authorization request waiting on the consent page, bound to the browser that opened it."""

    __tablename__ = "oidc_pending"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    browser_hash: Mapped[str] = mapped_column(String(64))
    params: Mapped[str] = mapped_column(Text)
    account_id: Mapped[int] = mapped_column(Integer)
    session_id: Mapped[str] = mapped_column(String(64))
    fresh: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class OidcJtiRow(Base):
    """A client assertion ``jti`` seen before its expiry (RFC 7523 §3 replay cache)."""

    __tablename__ = "oidc_jti"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)


# --- values ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientRecord:
    """A registered client as stored."""

    client_id: str
    name: str
    auth_method: str
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    secret_hash: str = ""
    post_logout_redirect_uris: tuple[str, ...] = ()
    jwks: str = ""
    jwks_uri: str = ""
    subject_type: str = "pairwise"
    sector_identifier: str = ""
    refresh_tokens: bool = False
    first_party: bool = False
    backchannel_logout_uri: str = ""
    id_token_alg: str = "RS256"
    enabled: bool = True
    created_at: dt.datetime | None = None


@dataclass(frozen=True)
class GrantRecord:
    """An authorization and what every token issued under it says about the login."""

    id: str
    client_id: str
    account_id: int
    session_id: str
    sid: str
    sub: str
    scope: str
    auth_time: dt.datetime
    acr: str
    amr: tuple[str, ...]
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None = None


@dataclass(frozen=True)
class CodeRecord:
    """A stored authorization code with its grant."""

    code_hash: str
    grant: GrantRecord
    client_id: str
    redirect_uri: str
    nonce: str
    code_challenge: str
    code_challenge_method: str
    expires_at: dt.datetime
    used_at: dt.datetime | None


@dataclass(frozen=True)
class TokenRecord:
    """A stored access or refresh token with its grant and the account's state."""

    token_hash: str
    kind: str
    grant: GrantRecord
    client_id: str
    scope: str
    created_at: dt.datetime
    expires_at: dt.datetime
    used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    account_state: str = "active"

    def alive(self, now: dt.datetime) -> bool:
        """Not expired, not revoked, grant not revoked, account still active (SECURITY O22)."""
        return (self.revoked_at is None and self.grant.revoked_at is None and now < self.expires_at
                and self.account_state == "active")


@dataclass(frozen=True)
class ConsentRecord:
    """A consent as the account page will list it."""

    client_id: str
    client_name: str
    scope: tuple[str, ...]
    granted_at: dt.datetime


@dataclass(frozen=True)
class PendingRecord:
    """An authorization request waiting for consent."""

    id: str
    params: dict[str, str]
    account_id: int
    session_id: str
    fresh: bool
    expires_at: dt.datetime
    extra: dict[str, str] = field(default_factory=dict)


def _client(row: OidcClientRow) -> ClientRecord:
    return ClientRecord(
        client_id=row.client_id, name=row.name, auth_method=row.auth_method,
        redirect_uris=tuple(json.loads(row.redirect_uris)), scopes=tuple(row.scopes.split()),
        secret_hash=row.secret_hash, post_logout_redirect_uris=tuple(json.loads(row.post_logout_redirect_uris)),
        jwks=row.jwks, jwks_uri=row.jwks_uri, subject_type=row.subject_type,
        sector_identifier=row.sector_identifier, refresh_tokens=row.refresh_tokens, first_party=row.first_party,
        backchannel_logout_uri=row.backchannel_logout_uri, id_token_alg=row.id_token_alg, enabled=row.enabled,
        created_at=row.created_at,
    )


def _grant(row: OidcGrantRow) -> GrantRecord:
    return GrantRecord(
        id=row.id, client_id=row.client_id, account_id=row.account_id, session_id=row.session_id, sid=row.sid,
        sub=row.sub, scope=row.scope, auth_time=row.auth_time, acr=row.acr, amr=tuple(json.loads(row.amr)),
        created_at=row.created_at, expires_at=row.expires_at, revoked_at=row.revoked_at,
    )


# --- hot-path statements, built once (the token endpoint runs them on every request) -----------------

_G = table_of(OidcGrantRow)
_C = table_of(OidcCodeRow)
_T = table_of(OidcTokenRow)
_GRANT_COLUMNS = [c.label(f"g_{c.name}") for c in _G.c]
_A = table_of(AccountRow)
_AT = bindparam("at", type_=UtcDateTime())


# Every statement reaches its rows by primary key, first the code or token, then its grant, then the account:
# the grant and the account are only ever looked up from the token, in scalar subqueries the planner cannot
# reorder. (A join let PostgreSQL start from the account and walk all its grants: with thousands of grants
# per account, a refresh grant cost milliseconds of database CPU.)
def _account_state(grant_id: Any) -> Any:
    """The state of the account behind a live (unrevoked) grant; NULL when the grant is revoked or absent."""
    return (select(_A.c.state).select_from(_G.join(_A, _A.c.id == _G.c.account_id))
            .where(_G.c.id == grant_id, _G.c.revoked_at.is_(None)).scalar_subquery())


def _grant_live(grant_id: Any) -> Any:
    return select(_G.c.id).where(_G.c.id == grant_id, _G.c.revoked_at.is_(None)).scalar_subquery().is_not(None)


_CODE_BY_HASH = select(_C, *_GRANT_COLUMNS).join(_G, _G.c.id == _C.c.grant_id).where(_C.c.code_hash == bindparam("h"))
_TOKEN_BY_HASH = (select(_T, *_GRANT_COLUMNS,
                         select(_A.c.state).where(_A.c.id == _G.c.account_id).scalar_subquery().label("account_state"))
                  .join(_G, _G.c.id == _T.c.grant_id).where(_T.c.token_hash == bindparam("h")))
_GRANT_BY_ID = select(*_GRANT_COLUMNS).where(_G.c.id == bindparam("gid"))

# The two redemptions (SECURITY O04, O21, R04): ONE conditional UPDATE each, the only statements that ever mark
# a code or a refresh token used. They match only when everything the request must match does; the token
# endpoint then never needs a second one (``OidcServer.find_code``/``find_refresh``).
_TAKE_CODE_ROW = (update(_C).where(
    _C.c.code_hash == bindparam("h"), _C.c.used_at.is_(None), _C.c.client_id == bindparam("cid"),
    # RFC 6749 §4.1.3: the redirect_uri must be the authorization request's when that one carried it.
    or_(_C.c.redirect_uri == bindparam("ruri"), _C.c.redirect_uri == ""),
    _C.c.code_challenge == bindparam("challenge"), _C.c.expires_at > _AT, _grant_live(_C.c.grant_id),
).values(used_at=_AT).returning(*_C.c))
_TAKE_REFRESH_ROW = (update(_T).where(
    _T.c.token_hash == bindparam("h"), _T.c.kind == "refresh", _T.c.used_at.is_(None), _T.c.revoked_at.is_(None),
    _T.c.client_id == bindparam("cid"), _T.c.expires_at > _AT, _account_state(_T.c.grant_id) == "active",
).values(used_at=_AT).returning(*_T.c))


_INSERTED = ["token_hash", "kind", "grant_id", "client_id", "scope", "created_at", "expires_at"]
_REFRESH_HASH = bindparam("rh", type_=String())


def redeeming(taken: Any, scope: Any, *extra: Any) -> Any:
    """PostgreSQL: the redemption ``taken`` (a data-modifying CTE), its grant by primary key, and the new tokens
    inserted, in ONE statement: the access token, and the refresh token when ``rh`` is not NULL (its expiry
    capped by the grant's). The statement returns ``taken``'s columns, the grant's (``g_*``), ``new_scope`` (the
    scope of the new tokens) and ``extra``; no row: nothing was redeemed nor stored."""
    live = select(taken, *_GRANT_COLUMNS, scope.label("new_scope"), *extra).join(_G, _G.c.id == taken.c.grant_id).cte("live")
    access = select(bindparam("ah"), literal("access"), live.c.g_id, live.c.g_client_id, live.c.new_scope, _AT,
                    bindparam("aexp", type_=UtcDateTime()))
    refresh = select(_REFRESH_HASH, literal("refresh"), live.c.g_id, live.c.g_client_id, live.c.new_scope, _AT,
                     func.least(bindparam("rexp", type_=UtcDateTime()), live.c.g_expires_at)).where(_REFRESH_HASH.is_not(None))
    return select(live).add_cte(insert(_T).from_select(_INSERTED, union_all(access, refresh)).cte("issued"))


# PostgreSQL redeems and issues in one statement (data-modifying CTEs), atomic by itself, so the token endpoint
# runs it in autocommit; SQLite cannot (no DML in a CTE): there the UPDATE, the grant's read and the INSERT run
# in the caller's transaction.
_REDEEM_CODE = PgStatement(redeeming(_TAKE_CODE_ROW.cte("taken"), _G.c.scope))
_REDEEM_REFRESH = PgStatement(redeeming(_TAKE_REFRESH_ROW.cte("taken"), func.coalesce(bindparam("nscope", type_=String()), _G.c.scope),
                            literal("active").label("account_state")))
_ACCOUNT_BY_ID = select(_A).where(_A.c.id == bindparam("id"))


def _bearer_statement() -> Any:
    """PostgreSQL: UserInfo's reads in one statement: the token with its grant (the CTE materialised, so the planner
    starts from the token), the account's columns (``a_*``, by primary key) and the account's register records
    (``linked_records_of``) as a JSON array (``records``)."""
    token = (select(_T, *_GRANT_COLUMNS).join(_G, _G.c.id == _T.c.grant_id).where(_T.c.token_hash == bindparam("h"))
             .cte("bearer").prefix_with("MATERIALIZED"))
    linked = linked_records_of(token.c.g_account_id).subquery("linked")
    fields = [part for column in linked.c for part in (literal_column(f"'{column.name}'"), column)]
    records = select(func.json_agg(func.json_build_object(*fields))).scalar_subquery()
    return (select(token, *[c.label(f"a_{c.name}") for c in _A.c], records.label("records"))
            .select_from(token.outerjoin(_A, _A.c.id == token.c.g_account_id)))


_BEARER = PgStatement(_bearer_statement())
_INSERT_TOKEN = insert(_T)


@dataclass(frozen=True)
class Bearer:
    """What UserInfo needs of an access token: the token (with its grant and the account's state), the account and
    its register records (as ``SqlAccountRepository.linked_records`` gives them)."""

    token: TokenRecord
    account: Account | None
    records: Sequence[dict[str, Any]]


@dataclass(frozen=True)
class NewTokens:
    """The tokens a redemption stores (hashed): an access token, and a refresh token when the client has the grant
    (its expiry is capped by the grant's when stored)."""

    access_hash: str
    access_expires: dt.datetime
    refresh_hash: str | None
    refresh_expires: dt.datetime

    def params(self) -> dict[str, Any]:
        return {"ah": self.access_hash, "aexp": self.access_expires, "rh": self.refresh_hash,
                "rexp": self.refresh_expires}

# Issuing a code: its grant, the code (hashed) and, once per session and client, the single-logout participant.
_P = table_of(SessionParticipantRow)
_INSERT_GRANT = insert(_G).values({c.name: bindparam(f"g_{c.name}", type_=c.type) for c in _G.c})
_INSERT_CODE = insert(_C).values({c.name: bindparam(f"c_{c.name}", type_=c.type) for c in _C.c})
_ADD_PARTICIPANT = insert(_P).from_select(
    ["session_id", "protocol", "client_id", "data", "created_at"],
    select(bindparam("g_session_id"), literal("oidc"), bindparam("g_client_id"), bindparam("p_data"),
           bindparam("g_created_at", type_=UtcDateTime()))
    .where(~exists().where(_P.c.session_id == bindparam("g_session_id"), _P.c.protocol == "oidc",
                           _P.c.client_id == bindparam("g_client_id"))))
#: PostgreSQL: the three inserts in one statement (one round trip, atomic by itself).
_ISSUE_CODE = PgStatement(select(literal(1)).add_cte(_INSERT_GRANT.cte("grant_row")).add_cte(_INSERT_CODE.cte("code_row"))
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


def grant_from(m: Any) -> GrantRecord:
    """A grant from a row mapping whose grant columns are labelled ``g_*``."""
    return GrantRecord(
        id=m["g_id"], client_id=m["g_client_id"], account_id=m["g_account_id"], session_id=m["g_session_id"],
        sid=m["g_sid"], sub=m["g_sub"], scope=m["g_scope"], auth_time=m["g_auth_time"], acr=m["g_acr"],
        amr=tuple(json.loads(m["g_amr"])), created_at=m["g_created_at"], expires_at=m["g_expires_at"],
        revoked_at=m["g_revoked_at"],
    )


# --- repository ------------------------------------------------------------------------------------


class Unit(Protocol):
    """What ``SqlOidcStore`` needs of a unit of work (``SqlUnitOfWork``): its ORM session, built on first use,
    and the executor of its Core statements (the pooled connection in autocommit)."""

    @property
    def session(self) -> Session: ...

    @property
    def executor(self) -> Session | Connection: ...


class SqlOidcStore:
    """Every OIDC read and write, in one unit of work.

    Given the unit of work itself, the hot statements (a code's issue and redemption, a refresh grant, a bearer's
    records) run on its executor, and the ORM session is built only by the methods that use the ORM: in an
    autocommit unit, an authorization request, a token request or a UserInfo request builds none (its set-up
    and close were ~8 % of a complete flow's CPU). Given a ``Session`` (the CLI, the purge), everything runs on it.
    """

    def __init__(self, unit: Session | Unit) -> None:
        if isinstance(unit, Session):
            self._unit: Unit | None = None
            self._session: Session | None = unit
            self._x: Session | Connection = unit
        else:
            self._unit, self._session, self._x = unit, None, unit.executor
        bind = self._x.get_bind() if isinstance(self._x, Session) else self._x
        self._pg = bind.dialect.name == "postgresql"

    @property
    def _s(self) -> Session:
        if self._session is None:
            assert self._unit is not None
            self._session = self._unit.session
        return self._session

    @property
    def session(self) -> Session:
        """The unit of work's session (for the repositories that read beside this store)."""
        return self._s

    def _postgresql(self) -> bool:
        """PostgreSQL runs data-modifying CTEs (several writes, or a write and a join, in one statement)."""
        return self._pg

    # clients

    def add_client(self, client: ClientRecord, secret_hash: str, at: dt.datetime, home_url: str = "") -> None:
        """Register a client; a home URL also lists it in "Mes services"."""
        self._s.add(OidcClientRow(
            client_id=client.client_id, name=client.name, secret_hash=secret_hash, auth_method=client.auth_method,
            redirect_uris=json.dumps(list(client.redirect_uris)),
            post_logout_redirect_uris=json.dumps(list(client.post_logout_redirect_uris)),
            scopes=" ".join(client.scopes), jwks=client.jwks, jwks_uri=client.jwks_uri,
            subject_type=client.subject_type, sector_identifier=client.sector_identifier,
            refresh_tokens=client.refresh_tokens, first_party=client.first_party,
            backchannel_logout_uri=client.backchannel_logout_uri, id_token_alg=client.id_token_alg, enabled=True,
            created_at=at,
            secret_changed_at=at if secret_hash else None,
        ))
        self._s.add(ServiceProviderRow(protocol="oidc", client_id=client.client_id, name=client.name,
                                       home_url=home_url, enabled=bool(home_url), created_at=at))
        catalogue.changed_in(self._s)

    def client(self, client_id: str) -> ClientRecord | None:
        if not client_id or len(client_id) > 64 or not client_id.isprintable():
            return None
        row = self._s.get(OidcClientRow, client_id)
        return _client(row) if row else None

    def clients(self) -> Sequence[ClientRecord]:
        return [_client(r) for r in self._s.scalars(select(OidcClientRow).order_by(OidcClientRow.client_id))]

    def remove_client(self, client_id: str) -> bool:
        """Delete a client with its grants, codes, tokens and consents."""
        grants = select(OidcGrantRow.id).where(OidcGrantRow.client_id == client_id)
        self._s.execute(delete(OidcTokenRow).where(OidcTokenRow.grant_id.in_(grants)))
        self._s.execute(delete(OidcCodeRow).where(OidcCodeRow.grant_id.in_(grants)))
        self._s.execute(delete(OidcGrantRow).where(OidcGrantRow.client_id == client_id))
        self._s.execute(delete(OidcConsentRow).where(OidcConsentRow.client_id == client_id))
        self._s.execute(delete(ServiceProviderRow).where(ServiceProviderRow.protocol == "oidc",
                                                         ServiceProviderRow.client_id == client_id))
        catalogue.changed_in(self._s)
        return bool(self._s.execute(delete(OidcClientRow).where(OidcClientRow.client_id == client_id)).rowcount)  # type: ignore[attr-defined]

    def set_secret(self, client_id: str, secret_hash: str, at: dt.datetime) -> bool:
        result = self._s.execute(update(OidcClientRow).where(OidcClientRow.client_id == client_id)
                                 .values(secret_hash=secret_hash, secret_changed_at=at))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # grants and codes

    def issue_code(self, new: NewCode) -> None:
        """Store a code, its grant and the session's participant (one statement on PostgreSQL; on SQLite three,
        so the caller runs them in a transaction)."""
        params = _code_params(new)
        if self._postgresql():
            _ISSUE_CODE.execute(self._x, params)
            return
        for statement in (_INSERT_GRANT, _INSERT_CODE, _ADD_PARTICIPANT):
            self._s.execute(statement, params)

    def code(self, code_hash: str) -> CodeRecord | None:
        """A code with its grant, whatever its state (read only: to explain a refusal, never to redeem)."""
        row = self._s.execute(_CODE_BY_HASH, {"h": code_hash}).first()
        return self._code_of(row._mapping) if row is not None else None

    def redeem_code(self, code_hash: str, client_id: str, redirect_uri: str, challenge: str, at: dt.datetime,
                    new: NewTokens) -> CodeRecord | None:
        """Redeem a code and store ``new`` under its grant: the code is consumed by one conditional UPDATE if it is
        live, of this client, for this redirect_uri and PKCE challenge, its grant live; exactly one caller wins
        (SECURITY O04, R04). On PostgreSQL the tokens are inserted by the same statement. None: nothing changed."""
        params = {"h": code_hash, "cid": client_id, "ruri": redirect_uri, "challenge": challenge, "at": at,
                  **new.params()}
        if self._postgresql():
            found = _REDEEM_CODE.first(self._x, params)
            return self._code_of(found) if found is not None else None
        taken = self._s.execute(_TAKE_CODE_ROW, params).first()
        if taken is None:
            return None
        code = self._code_of(self._with_grant(taken._mapping))
        self._issue(code.grant, code.grant.scope, at, new)
        return code

    def _with_grant(self, taken: Any) -> dict[str, Any]:
        grant = self._s.execute(_GRANT_BY_ID, {"gid": taken["grant_id"]}).one()
        return {**taken, **grant._mapping}

    @staticmethod
    def _code_of(m: Any) -> CodeRecord:
        return CodeRecord(code_hash=m["code_hash"], grant=grant_from(m), client_id=m["client_id"],
                          redirect_uri=m["redirect_uri"], nonce=m["nonce"], code_challenge=m["code_challenge"],
                          code_challenge_method=m["code_challenge_method"], expires_at=m["expires_at"],
                          used_at=m["used_at"])

    def revoke_grant(self, grant_id: str, at: dt.datetime) -> None:
        """Revoke a grant: every token issued under it stops working at once."""
        self._s.execute(update(OidcGrantRow).where(OidcGrantRow.id == grant_id, OidcGrantRow.revoked_at.is_(None))
                        .values(revoked_at=at))

    def revoke_grants_of_session(self, session_id: str, at: dt.datetime) -> int:
        """Revoke the grants born of an SSO session (logout)."""
        result = self._s.execute(update(OidcGrantRow).where(OidcGrantRow.session_id == session_id,
                                                            OidcGrantRow.revoked_at.is_(None)).values(revoked_at=at))
        return int(result.rowcount)  # type: ignore[attr-defined]

    def grants_of_session(self, session_id: str) -> Sequence[GrantRecord]:
        rows = self._s.scalars(select(OidcGrantRow).where(OidcGrantRow.session_id == session_id))
        return [_grant(r) for r in rows]

    # tokens

    def _issue(self, grant: GrantRecord, scope: str, at: dt.datetime, new: NewTokens) -> None:
        """SQLite's second half of a redemption: the new tokens' rows, in the caller's transaction."""
        rows = [(new.access_hash, "access", new.access_expires)]
        if new.refresh_hash is not None:
            rows.append((new.refresh_hash, "refresh", min(new.refresh_expires, grant.expires_at)))
        self._s.execute(_INSERT_TOKEN, [{"token_hash": token_hash, "kind": kind, "grant_id": grant.id,
                                         "client_id": grant.client_id, "scope": scope, "created_at": at,
                                         "expires_at": expires_at, "used_at": None, "revoked_at": None}
                                        for token_hash, kind, expires_at in rows])

    def account(self, account_id: int) -> Account | None:
        """The account behind a token (one Core select: userinfo's hot path loads no ORM object)."""
        row = self._s.execute(_ACCOUNT_BY_ID, {"id": account_id}).first()
        return to_account(row) if row is not None else None

    def bearer(self, token_hash: str, *, register: Callable[[str], bool]) -> Bearer | None:
        """An access token with its grant, its account and, when ``register(scope)`` says the token's scope needs them,
        the account's register records: one statement on PostgreSQL (which reads the records whatever the scope),
        two or three reads elsewhere."""
        if self._postgresql():
            found = _BEARER.first(self._x, {"h": token_hash})
            return self._bearer_of(found) if found is not None else None
        token = self.token(token_hash)
        if token is None:
            return None
        account = self.account(token.grant.account_id)
        records = SqlAccountRepository(self._x).linked_records(account.id) \
            if account is not None and register(token.scope) else ()
        return Bearer(token, account, records)

    def _bearer_of(self, m: Any) -> Bearer:
        columns = {name[2:]: value for name, value in m.items() if name.startswith("a_")}
        account = to_account(SimpleNamespace(**columns)) if columns["id"] is not None else None  # type: ignore[arg-type]
        token = self._token_of({**m, "account_state": columns["state"]})
        records = [{**record, "birth_date": dt.date.fromisoformat(record["birth_date"])} for record in m["records"] or ()]
        return Bearer(token, account, distinct_records(records))

    def token(self, token_hash: str) -> TokenRecord | None:
        row = self._s.execute(_TOKEN_BY_HASH, {"h": token_hash}).first()
        return self._token_of(row._mapping) if row is not None else None

    def redeem_refresh(self, token_hash: str, client_id: str, scope: str | None, at: dt.datetime,
                       new: NewTokens) -> TokenRecord | None:
        """Rotate a refresh token and store ``new`` (with ``scope``, else the old token's): it is marked used by one
        conditional UPDATE if it is live, of this client, its grant live and its account active; exactly one caller
        wins (SECURITY O21, R04). On PostgreSQL the tokens are inserted by the same statement. None: nothing changed."""
        params = {"h": token_hash, "cid": client_id, "at": at, "nscope": scope, **new.params()}
        if self._postgresql():
            found = _REDEEM_REFRESH.first(self._x, params)
            return self._token_of(found) if found is not None else None
        taken = self._s.execute(_TAKE_REFRESH_ROW, params).first()
        if taken is None:
            return None
        token = self._token_of({**self._with_grant(taken._mapping), "account_state": "active"})
        self._issue(token.grant, scope or token.scope, at, new)
        return token

    @staticmethod
    def _token_of(m: Any) -> TokenRecord:
        return TokenRecord(token_hash=m["token_hash"], kind=m["kind"], grant=grant_from(m), client_id=m["client_id"],
                           scope=m["scope"], created_at=m["created_at"], expires_at=m["expires_at"],
                           used_at=m["used_at"], revoked_at=m["revoked_at"], account_state=m["account_state"])

    def revoke_token(self, token_hash: str, at: dt.datetime) -> None:
        self._s.execute(update(OidcTokenRow).where(OidcTokenRow.token_hash == token_hash,
                                                   OidcTokenRow.revoked_at.is_(None)).values(revoked_at=at))

    # consents

    def consent(self, account_id: int, client_id: str) -> tuple[str, ...] | None:
        row = self._s.scalars(select(OidcConsentRow).where(OidcConsentRow.account_id == account_id,
                                                           OidcConsentRow.client_id == client_id)).first()
        if row is None or row.revoked_at is not None:
            return None
        return tuple(row.scope.split())

    def save_consent(self, account_id: int, client_id: str, scope: Sequence[str], at: dt.datetime) -> None:
        row = self._s.scalars(select(OidcConsentRow).where(OidcConsentRow.account_id == account_id,
                                                           OidcConsentRow.client_id == client_id)).first()
        text = " ".join(sorted(set(scope)))
        if row is None:
            self._s.add(OidcConsentRow(account_id=account_id, client_id=client_id, scope=text, granted_at=at))
        else:
            row.scope, row.granted_at, row.revoked_at = text, at, None

    def consents(self, account_id: int) -> Sequence[ConsentRecord]:
        """Live consents of a person, for the account page."""
        rows = self._s.execute(
            select(OidcConsentRow, OidcClientRow.name).join(OidcClientRow, OidcClientRow.client_id == OidcConsentRow.client_id)
            .where(OidcConsentRow.account_id == account_id, OidcConsentRow.revoked_at.is_(None))
            .order_by(OidcClientRow.name))
        return [ConsentRecord(client_id=c.client_id, client_name=name, scope=tuple(c.scope.split()),
                              granted_at=c.granted_at) for c, name in rows]

    def revoke_consent(self, account_id: int, client_id: str, at: dt.datetime) -> bool:
        """Withdraw a consent and revoke the grants it allowed (ASVS 10.7.3)."""
        result = self._s.execute(update(OidcConsentRow).where(OidcConsentRow.account_id == account_id,
                                                              OidcConsentRow.client_id == client_id,
                                                              OidcConsentRow.revoked_at.is_(None)).values(revoked_at=at))
        self._s.execute(update(OidcGrantRow).where(OidcGrantRow.account_id == account_id,
                                                   OidcGrantRow.client_id == client_id,
                                                   OidcGrantRow.revoked_at.is_(None)).values(revoked_at=at))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # pending consent requests

    def add_pending(self, pending: PendingRecord, browser_hash: str) -> None:
        self._s.add(OidcPendingRow(id=pending.id, browser_hash=browser_hash, params=json.dumps(pending.params),
                                   account_id=pending.account_id, session_id=pending.session_id,
                                   fresh=pending.fresh, expires_at=pending.expires_at))

    def pending(self, pending_id: str, browser_hash: str, now: dt.datetime) -> PendingRecord | None:
        if len(pending_id) > 64 or not pending_id.isprintable():
            return None
        row = self._s.get(OidcPendingRow, pending_id)
        if row is None or row.browser_hash != browser_hash or row.used_at is not None or now >= row.expires_at:
            return None
        return PendingRecord(id=row.id, params=json.loads(row.params), account_id=row.account_id,
                             session_id=row.session_id, fresh=row.fresh, expires_at=row.expires_at)

    def use_pending(self, pending_id: str, at: dt.datetime) -> bool:
        result = self._s.execute(update(OidcPendingRow).where(OidcPendingRow.id == pending_id,
                                                              OidcPendingRow.used_at.is_(None)).values(used_at=at))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # client assertion replay cache

    def remember_jti(self, client_id: str, jti: str, expires_at: dt.datetime) -> bool:
        """Record a client assertion id; False when it was already seen (replay, RFC 7523 §3)."""
        table = table_of(OidcJtiRow)
        insert_row = postgresql_insert if self._postgresql() else sqlite_insert
        statement = insert_row(table).values(key=digest(f"{client_id}\x00{jti}"), expires_at=expires_at)
        # One statement whoever runs it (autocommit at the token endpoint, a transaction elsewhere): a key already
        # there, even one a concurrent request has just written, inserts nothing and returns no row.
        return self._s.execute(statement.on_conflict_do_nothing().returning(table.c.key)).first() is not None

    # purge (SECURITY R18)

    def purge(self, now: dt.datetime) -> int:
        """Delete expired codes, tokens, grants, pending requests and jti entries; idempotent."""
        count = 0
        for table, column in ((OidcCodeRow, OidcCodeRow.expires_at), (OidcTokenRow, OidcTokenRow.expires_at),
                              (OidcPendingRow, OidcPendingRow.expires_at), (OidcJtiRow, OidcJtiRow.expires_at)):
            count += int(self._s.execute(delete(table).where(column < now)).rowcount)  # type: ignore[attr-defined]
        live = select(OidcTokenRow.grant_id).union(select(OidcCodeRow.grant_id))
        count += int(self._s.execute(delete(OidcGrantRow).where(OidcGrantRow.expires_at < now,
                                                                OidcGrantRow.id.not_in(live))).rowcount)  # type: ignore[attr-defined]
        return count
