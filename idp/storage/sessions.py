"""SSO sessions, their participants and pending authentication requests, in SQL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Row

from idp.core.accounts.model import Account, AccountState, Profile
from idp.core.authn.model import AuthMethod, AuthnRequest, SsoSession
from idp.core.ports import AuditEvent
from idp.storage.accounts import SqlAccountRepository
from idp.storage.audit import SqlAuditLog, log_event
from idp.storage.audit import row_values as audit_row
from idp.storage.models import (
    AccountRow,
    AuditEventRow,
    AuthnRequestRow,
    Executor,
    SessionParticipantRow,
    SsoSessionRow,
    table_of,
)
from idp.storage.pgexec import PgStatement

# Core statements on the tables, built once: no ORM identity map, no unit-of-work flush on the hot path.
_S, _A, _R = table_of(SsoSessionRow), table_of(AccountRow), table_of(AuthnRequestRow)
_SESSION_WITH_ACCOUNT = (
    select(*[c.label(f"s_{c.name}") for c in _S.c], *[c.label(f"a_{c.name}") for c in _A.c])
    .select_from(_S.join(_A, _A.c.id == _S.c.account_id))
    .where(_S.c.id == bindparam("sid"))
)
_PG_SESSION_WITH_ACCOUNT = PgStatement(_SESSION_WITH_ACCOUNT)
_SESSION = select(_S).where(_S.c.id == bindparam("sid"))
_INSERT_SESSION = insert(_S)
_TOUCH = update(_S).where(_S.c.id == bindparam("sid")).values(last_seen_at=bindparam("at"))
_END = update(_S).where(_S.c.id == bindparam("sid"), _S.c.ended_at.is_(None)).values(ended_at=bindparam("at"))
_P = table_of(SessionParticipantRow)
_INSERT_PARTICIPANT = insert(_P)
# A login's writes in one PostgreSQL statement (data-modifying CTEs run together, atomically).
_E = table_of(AuditEventRow)
_LOGIN_WRITES = (
    insert(_E).values({c.name: bindparam(f"e_{c.name}", type_=c.type) for c in _E.c if c.name != "id"})
    .add_cte(
        insert(_S).values({c.name: bindparam(f"s_{c.name}", type_=c.type) for c in _S.c}).cte("opened"),
        update(_A).where(_A.c.id == bindparam("a_id"))
        .values(last_login_at=bindparam("a_at", type_=_A.c.last_login_at.type),
                language=func.coalesce(bindparam("a_language", type_=_A.c.language.type), _A.c.language))
        .cte("seen"),
        update(_R).where(_R.c.id == bindparam("r_id"))
        .values(session_id=bindparam("r_sid"), authenticated_at=bindparam("r_at", type_=_R.c.authenticated_at.type),
                completed_at=func.coalesce(_R.c.completed_at, bindparam("r_done", type_=_R.c.completed_at.type)))
        .cte("answered"),
    )
)
_PG_LOGIN_WRITES = PgStatement(_LOGIN_WRITES)
_REQUEST = select(_R).where(_R.c.id == bindparam("rid"))
_INSERT_REQUEST = insert(_R)
_MARK_AUTHENTICATED = (update(_R).where(_R.c.id == bindparam("rid"))
                       .values(session_id=bindparam("sess"), authenticated_at=bindparam("at")))
_MARK_AUTHENTICATED_AND_COMPLETE = (
    update(_R).where(_R.c.id == bindparam("rid"))
    .values(session_id=bindparam("sess"), authenticated_at=bindparam("at", type_=_R.c.authenticated_at.type),
            completed_at=func.coalesce(_R.c.completed_at, bindparam("at", type_=_R.c.completed_at.type)))
)
_COMPLETE = (update(_R).where(_R.c.id == bindparam("rid"), _R.c.completed_at.is_(None))
             .values(completed_at=bindparam("at")))


def _session_values(session: SsoSession) -> dict[str, Any]:
    return {"id": session.id, "public_id": session.public_id, "account_id": session.account_id,
            "auth_method": session.auth_method.value, "authn_instant": session.authn_instant,
            "created_at": session.created_at, "last_seen_at": session.last_seen_at,
            "expires_at": session.expires_at, "ended_at": session.ended_at, "ip": session.ip,
            "user_agent": session.user_agent}


def _to_session(row: SsoSessionRow | Row[Any]) -> SsoSession:
    return SsoSession(
        id=row.id, public_id=row.public_id, account_id=row.account_id, auth_method=AuthMethod(row.auth_method),
        authn_instant=row.authn_instant, created_at=row.created_at, last_seen_at=row.last_seen_at,
        expires_at=row.expires_at, ended_at=row.ended_at, ip=row.ip, user_agent=row.user_agent,
    )


class SqlSessionRepository:
    """``SessionRepository`` on SQLAlchemy."""

    def __init__(self, session: Executor, dialect: str = "") -> None:
        self._s = session
        self._dialect = dialect

    def add(self, session: SsoSession) -> None:
        self._s.execute(_INSERT_SESSION, _session_values(session))

    def add_at_login(self, session: SsoSession, *, request_id: str, complete: bool, event: AuditEvent,
                     language: str | None = None) -> None:
        """The session, the account's last login (and language when it changed), the request answered, the
        audit line: one statement on PostgreSQL; the same four statements in the caller's transaction elsewhere."""
        at = session.created_at
        if self._dialect != "postgresql":
            self.add(session)
            SqlAccountRepository(self._s).record_login(session.account_id, at, language)
            SqlAuthnRequestRepository(self._s).mark_authenticated(request_id, session.id, at, complete=complete)
            SqlAuditLog(self._s).record(event)
            return
        values: dict[str, Any] = {f"s_{key}": value for key, value in _session_values(session).items()}
        values.update({f"e_{key}": value for key, value in audit_row(event).items()})
        values.update(a_id=session.account_id, a_at=at, a_language=language, r_id=request_id, r_sid=session.id, r_at=at,
                      r_done=at if complete else None)
        _PG_LOGIN_WRITES.execute(self._s, values)
        log_event(event)

    def get(self, session_id: str) -> SsoSession | None:
        row = self._s.execute(_SESSION, {"sid": session_id}).first()
        return _to_session(row) if row else None

    def get_with_account(self, session_id: str) -> tuple[SsoSession, Account] | None:
        """The session and its account in one Core query (the hot path of every SSO answer)."""
        if self._dialect == "postgresql":
            m: Any = _PG_SESSION_WITH_ACCOUNT.first(self._s, {"sid": session_id})
        else:
            row = self._s.execute(_SESSION_WITH_ACCOUNT, {"sid": session_id}).first()
            m = row._mapping if row is not None else None
        if m is None:
            return None
        session = SsoSession(
            id=m["s_id"], public_id=m["s_public_id"], account_id=m["s_account_id"],
            auth_method=AuthMethod(m["s_auth_method"]), authn_instant=m["s_authn_instant"],
            created_at=m["s_created_at"], last_seen_at=m["s_last_seen_at"], expires_at=m["s_expires_at"],
            ended_at=m["s_ended_at"], ip=m["s_ip"], user_agent=m["s_user_agent"],
        )
        account = Account(
            id=m["a_id"], public_id=m["a_public_id"], identifier=m["a_identifier"], profile=Profile(m["a_profile"]),
            state=AccountState(m["a_state"]), family_name=m["a_family_name"], given_names=m["a_given_names"],
            password_hash=m["a_password_hash"], must_change_password=m["a_must_change_password"],
            provisional_expires_at=m["a_provisional_expires_at"], email=m["a_email"],
            email_verified=m["a_email_verified_at"] is not None, phone=m["a_phone"],
            phone_verified=m["a_phone_verified_at"] is not None, created_at=m["a_created_at"],
            last_login_at=m["a_last_login_at"], register_changed_at=m["a_register_changed_at"],
            language=m["a_language"],
        )
        return session, account

    def touch(self, session_id: str, at: dt.datetime) -> None:
        self._s.execute(_TOUCH, {"sid": session_id, "at": at})

    def end(self, session_id: str, at: dt.datetime) -> bool:
        result = self._s.execute(_END, {"sid": session_id, "at": at})
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def end_all_for_account(self, account_id: int, at: dt.datetime, *, except_id: str | None = None) -> int:
        return len(self.end_all(account_id, at, except_id=except_id))

    def end_all(self, account_id: int, at: dt.datetime, *, except_id: str | None = None) -> Sequence[SsoSession]:
        """End the account's sessions not ended yet (but ``except_id``); one UPDATE … RETURNING."""
        query = update(_S).where(_S.c.account_id == account_id, _S.c.ended_at.is_(None))
        if except_id:
            query = query.where(_S.c.id != except_id)
        rows = self._s.execute(query.values(ended_at=at).returning(*_S.c)).all()
        return [_to_session(row) for row in rows]

    def active_for_account(self, account_id: int, now: dt.datetime) -> Sequence[SsoSession]:
        rows = self._s.execute(
            select(_S).where(_S.c.account_id == account_id, _S.c.ended_at.is_(None), _S.c.expires_at > now)
            .order_by(_S.c.created_at)
        )
        return [_to_session(r) for r in rows]

    def add_participant(self, session_id: str, protocol: str, client_id: str, data: dict[str, Any],
                        at: dt.datetime) -> None:
        self._s.execute(_INSERT_PARTICIPANT, {"session_id": session_id, "protocol": protocol, "client_id": client_id,
                                              "data": json.dumps(data), "created_at": at})

    def participants(self, session_id: str) -> Sequence[tuple[str, str, dict[str, Any]]]:
        rows = self._s.execute(select(_P).where(_P.c.session_id == session_id).order_by(_P.c.id))
        return [(r.protocol, r.client_id, json.loads(r.data)) for r in rows]


def _to_request(row: Row[Any]) -> AuthnRequest:
    return AuthnRequest(
        id=row.id, protocol=row.protocol, client_id=row.client_id, client_name=row.client_name,
        payload=json.loads(row.payload), force_authn=row.force_authn, passive=row.passive,
        profile_hint=row.profile_hint, created_at=row.created_at, expires_at=row.expires_at,
        session_id=row.session_id, authenticated_at=row.authenticated_at, completed_at=row.completed_at,
    )


class SqlAuthnRequestRepository:
    """``AuthnRequestRepository`` on SQLAlchemy."""

    def __init__(self, session: Executor) -> None:
        self._s = session

    def add(self, request: AuthnRequest, browser_hash: str) -> None:
        assert request.created_at and request.expires_at
        self._s.execute(_INSERT_REQUEST, {
            "id": request.id, "protocol": request.protocol, "client_id": request.client_id,
            "client_name": request.client_name, "payload": json.dumps(request.payload),
            "force_authn": request.force_authn, "passive": request.passive, "profile_hint": request.profile_hint,
            "browser_hash": browser_hash, "created_at": request.created_at, "expires_at": request.expires_at,
            "session_id": None, "authenticated_at": None, "completed_at": None,
        })

    def get(self, request_id: str, browser_hash: str) -> AuthnRequest | None:
        if len(request_id) > 64:
            return None
        row = self._s.execute(_REQUEST, {"rid": request_id}).first()
        if row is None or row.browser_hash != browser_hash:
            return None
        return _to_request(row)

    def mark_authenticated(self, request_id: str, session_id: str, at: dt.datetime, *,
                           complete: bool = False) -> None:
        """Record the session that authenticated the request; ``complete`` also closes it (nothing to resume)."""
        statement = _MARK_AUTHENTICATED_AND_COMPLETE if complete else _MARK_AUTHENTICATED
        self._s.execute(statement, {"rid": request_id, "sess": session_id, "at": at})

    def complete(self, request_id: str, at: dt.datetime) -> bool:
        """Mark the request answered; only one caller ever wins (conditional update)."""
        result = self._s.execute(_COMPLETE, {"rid": request_id, "at": at})
        return bool(result.rowcount)  # type: ignore[attr-defined]
