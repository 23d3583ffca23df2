"""SSO sessions: opened at login with a fresh random id, checked for idle and absolute expiry, ended at logout."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from idp.core.accounts.model import Account
from idp.core.authn.model import AuthMethod, SsoSession
from idp.core.clock import Clock
from idp.core.ports import UnitOfWork

log = logging.getLogger("idp.authn")

LogoutHook = Callable[[SsoSession], None]


class LogoutHooks(list[LogoutHook]):
    """The single-logout hooks the protocol front-ends register (``services.extras["logout_hooks"]``).

    Every way a session ends (logout, a password changed or reset, "end this session" on the account page,
    an account locked) runs them through ``run``, after the commit that ended the sessions: SAML and CAS
    back-channel logout, OIDC back-channel logout and refresh-token revocation.
    """

    def run(self, sessions: Iterable[SsoSession]) -> None:
        """Call every hook for every ended session; a failing hook is logged and never stops the others."""
        for session in sessions:
            for hook in self:
                try:
                    hook(session)
                except Exception:  # noqa: BLE001 - the sessions are already ended; one protocol's fault is logged
                    log.exception("logout hook %s failed", getattr(hook, "__qualname__", type(hook).__name__))


@dataclass(frozen=True)
class SessionPolicy:
    """Lifetimes of an SSO session (settings ``[session]``)."""

    idle: dt.timedelta = dt.timedelta(minutes=30)
    absolute: dt.timedelta = dt.timedelta(hours=10)
    touch_interval: dt.timedelta = dt.timedelta(seconds=60)


def session_id_for(token: str) -> str:
    """The stored id of a session is the SHA-256 of the cookie value."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def new_session(account_id: int, method: AuthMethod, policy: SessionPolicy, now: dt.datetime, ip: str = "",
                user_agent: str = "") -> tuple[str, SsoSession]:
    """A new session (a new random id at every login, never stored yet) and the cookie token for it."""
    token = secrets.token_urlsafe(32)
    session = SsoSession(
        id=session_id_for(token), public_id=secrets.token_hex(16), account_id=account_id, auth_method=method,
        authn_instant=now, created_at=now, last_seen_at=now, expires_at=now + policy.absolute,
        ip=ip, user_agent=user_agent[:200],
    )
    return token, session


def open_session(uow: UnitOfWork, account_id: int, method: AuthMethod, policy: SessionPolicy, clock: Clock,
                 ip: str = "", user_agent: str = "") -> tuple[str, SsoSession]:
    """Create and store a new session (a new id at every login) and return the cookie token with it."""
    token, session = new_session(account_id, method, policy, clock.now(), ip, user_agent)
    uow.sessions.add(session)
    return token, session


def is_alive(session: SsoSession, policy: SessionPolicy, now: dt.datetime) -> bool:
    """A session is alive until ended, idle for too long, or past its absolute lifetime."""
    return session.ended_at is None and now < session.expires_at and now < session.last_seen_at + policy.idle


def find_session(uow: UnitOfWork, token: str | None, policy: SessionPolicy, clock: Clock) -> SsoSession | None:
    """Return the live session behind a cookie token, refreshing its idle timer now and then."""
    if not token or len(token) > 100:
        return None
    session = uow.sessions.get(session_id_for(token))
    now = clock.now()
    if session is None or not is_alive(session, policy, now):
        return None
    if now - session.last_seen_at >= policy.touch_interval:
        uow.sessions.touch(session.id, now)
    return session


def find_session_with_account(uow: UnitOfWork, token: str | None, policy: SessionPolicy,
                              clock: Clock) -> tuple[SsoSession, Account] | None:
    """Like ``find_session``, with the account loaded in the same query: what every SSO answer reads.

    One SELECT (session joined to its account, Core, no ORM), and a write only when the idle timer is older
    than ``policy.touch_interval`` (60 s by default). Call it in ``uow_factory.autocommit()`` (no
    BEGIN/ROLLBACK; the touch commits alone, without waiting for the disk); ``AuthnFlow.begin``, ``resume``
    and ``current_session`` already do.
    """
    if not token or len(token) > 100:
        return None
    found = uow.sessions.get_with_account(session_id_for(token))
    now = clock.now()
    if found is None or not is_alive(found[0], policy, now):
        return None
    if now - found[0].last_seen_at >= policy.touch_interval:
        uow.sessions.touch(found[0].id, now)
    return found
