"""The one login every protocol uses: begin an authentication request, log in, resume the request.

A front-end calls ``begin`` with what its protocol asked. Either an existing SSO session answers at once
(an ``Assertion``), or the request is stored and the browser goes to ``/login/<id>``; after the password
(and any detour: activation, recovery), ``resume`` hands the front-end its ``Assertion``. The login page never
knows which protocol brought the person here.

The portal (a person who comes straight to us, nobody to answer) does not store its request: ``begin(...,
store=False)`` returns it without an id, the form posts back to the portal and ``login_unstored`` checks the
password and opens the session without reading or writing a request (two statements fewer per login).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from idp import metrics
from idp.core import audit
from idp.core.accounts.identifiers import normalise_login_input
from idp.core.accounts.language import language_to_record, remember_language
from idp.core.accounts.model import Account, AccountState, Profile
from idp.core.authn import throttle
from idp.core.authn.model import Assertion, AuthMethod, AuthnRequest, SsoSession
from idp.core.authn.policy import (
    account_may_answer,
    check_profile,
    must_fail_passive,
    session_can_answer,
    session_may_resume,
)
from idp.core.authn.sessions import (
    SessionPolicy,
    find_session,
    find_session_with_account,
    new_session,
    open_session,
)
from idp.core.clock import Clock
from idp.core.i18n import _
from idp.core.passwords.hashing import PasswordHasher
from idp.core.ports import AuditEvent, UnitOfWork, UnitOfWorkFactory
from idp.errors import (
    AccountUnavailable,
    AuthnFailed,
    AuthnFailure,
    AuthnRequestExpired,
    InvalidCredentials,
    LoginThrottled,
    WrongProfile,
)

log = logging.getLogger("idp.authn")

MAX_PASSWORD_INPUT = 1024


@dataclass(frozen=True)
class Client:
    """Who sends a person to log in: the protocol, the service provider's id and its display name."""

    protocol: str
    client_id: str = ""
    name: str = ""


@dataclass(frozen=True)
class LoginOutcome:
    """A successful password check: the new session's cookie token and where the person goes next."""

    token: str
    session: SsoSession
    account: Account
    needs_activation: bool
    request: AuthnRequest
    #: The password was right but must be replaced first (a campaign): no service is answered before that.
    needs_password_change: bool = False


def browser_hash(browser_id: str) -> str:
    """Authentication requests are bound to the browser that started them, through a hash of its id."""
    return hashlib.sha256(browser_id.encode("utf-8")).hexdigest()


class AuthnFlow:
    """Begin, log in and resume authentication requests."""

    def __init__(self, uow_factory: UnitOfWorkFactory, hasher: PasswordHasher, clock: Clock,
                 session_policy: SessionPolicy, throttle_policy: throttle.ThrottlePolicy,
                 request_ttl: dt.timedelta) -> None:
        self._uow = uow_factory
        self._hasher = hasher
        self._clock = clock
        self.session_policy = session_policy
        self._throttle = throttle_policy
        self._request_ttl = request_ttl
        #: Called (after the commit) when failures lock a known account: the lockout notice (SECURITY A22).
        self.on_lock: Callable[[Account], None] | None = None

    @property
    def throttle_policy(self) -> throttle.ThrottlePolicy:
        """The login's throttling numbers (client authentication failures are counted with them too)."""
        return self._throttle

    # --- begin -----------------------------------------------------------------------------------

    def begin(self, client: Client, payload: dict[str, Any], browser_id: str, session_token: str | None, *,
              force_authn: bool = False, passive: bool = False, profile_hint: str = "", store: bool = True,
              on_answer: Callable[[UnitOfWork, Assertion], None] | None = None) -> Assertion | AuthnRequest:
        """Answer from the SSO session when it may, else store the request for the login page.

        ``on_answer`` lets the front-end write what its answer needs in the same transaction (one commit).
        ``store=False`` (the portal, whose login completes its request and answers nobody): nothing is written,
        the request comes back with an empty id and the login goes through ``login_unstored``.
        """
        now = self._clock.now()
        request = AuthnRequest(
            id=secrets.token_urlsafe(24) if store else "", protocol=client.protocol, client_id=client.client_id,
            client_name=client.name, payload=payload, force_authn=force_authn, passive=passive,
            profile_hint=profile_hint, created_at=now, expires_at=now + self._request_ttl,
        )
        if not store and not session_token and not passive:
            return request  # no session to look up, nothing to write: no unit of work at all
        # Autocommit: a read, then at most one INSERT (and the session's occasional touch); no transaction.
        with self._uow.autocommit() as uow:
            found = find_session_with_account(uow, session_token, self.session_policy, self._clock)
            session = found[0] if found else None
            if must_fail_passive(request, session):
                raise AuthnFailed(AuthnFailure.PASSIVE_LOGIN_REQUIRED)
            if found is not None and session_can_answer(request, found[0]) and account_may_answer(found[1]):
                assertion = Assertion(account=found[1], session=found[0], request=request, fresh_login=False)
                if on_answer is not None:
                    on_answer(uow, assertion)
                uow.commit()
                metrics.LOGINS.labels(protocol=request.protocol, route="sso", outcome="success").inc()
                return assertion
            if store:
                uow.authn_requests.add(request, browser_hash(browser_id))
            uow.commit()
        return request

    def pending(self, request_id: str, browser_id: str) -> AuthnRequest:
        """Return a request still waiting for a login in this browser, or raise ``AuthnRequestExpired``."""
        with self._uow.autocommit() as uow:
            return self._pending_in(uow, request_id, browser_id)

    def _pending_in(self, uow: UnitOfWork, request_id: str, browser_id: str) -> AuthnRequest:
        request = uow.authn_requests.get(request_id, browser_hash(browser_id))
        if request is None or request.completed_at is not None or self._expired(request):
            raise AuthnRequestExpired()
        return request

    def _expired(self, request: AuthnRequest) -> bool:
        return request.expires_at is not None and self._clock.now() >= request.expires_at

    # --- login -----------------------------------------------------------------------------------

    def login(self, request_id: str, browser_id: str, identifier: str, password: str, *, profile: Profile, ip: str,
              user_agent: str = "", old_token: str | None = None,
              complete_protocols: frozenset[str] = frozenset()) -> LoginOutcome:
        """Check identifier and password for a pending request; open a new session on success.

        ``profile`` is the one chosen on the login screen: an account of the other profile logs nobody in
        (``WrongProfile``, raised only after a right password, counted as no failure).

        The argon2 verification runs between two short transactions, so no database lock or pooled
        connection is held while hashing. A request of a protocol in ``complete_protocols`` (front-ends that
        need nothing from ``resume``: the portal) is completed by the login itself, unless the account
        still has to be activated; ``outcome.request.completed_at`` then tells the caller.
        """
        return self._login(lambda uow: self._pending_in(uow, request_id, browser_id), identifier, password,
                           profile=profile, ip=ip, user_agent=user_agent, old_token=old_token,
                           complete_protocols=complete_protocols)

    def login_unstored(self, request: AuthnRequest, identifier: str, password: str, *, profile: Profile, ip: str,
                       user_agent: str = "", old_token: str | None = None) -> LoginOutcome:
        """``login`` for a request ``begin(store=False)`` returned (the portal's): the same checks — throttle,
        dummy verify, account state, session rotation, rehash, audit line —, no request read or written.

        The request is completed by the login (nothing to resume) unless the account is provisional: the
        activation detour then runs without a request and ends on "Mes services", as the portal's would.
        """
        if request.id:
            raise ValueError("a stored request logs in through login()")
        return self._login(lambda uow: request, identifier, password, profile=profile, ip=ip, user_agent=user_agent,
                           old_token=old_token, complete_protocols=frozenset({request.protocol}))

    def _login(self, load_request: Callable[[UnitOfWork], AuthnRequest], identifier: str, password: str, *,
               profile: Profile, ip: str, user_agent: str, old_token: str | None,
               complete_protocols: frozenset[str]) -> LoginOutcome:
        ident = normalise_login_input(identifier)
        password = password[:MAX_PASSWORD_INPUT]
        keys = throttle.keys_for(ident, ip)
        with self._uow.autocommit() as uow:  # reads (and one audit INSERT when throttled)
            request = load_request(uow)
            counters = uow.throttle.get_many([keys.identifier, keys.ip, keys.network])
            wait = throttle.wait_seconds(counters, self._clock.now())
            if wait:
                self._audit(uow, audit.LOGIN_THROTTLED, None, ident, ip, {"wait_seconds": wait})
                uow.commit()
                metrics.LOGINS.labels(protocol=request.protocol, route="password", outcome="throttled").inc()
                raise LoginThrottled(wait)
            account = uow.accounts.by_identifier(ident) if ident else None
        if account is None:
            self._hasher.dummy_verify(password)
        # Login state (counters, the new session, the audit line) commits without waiting for the disk.
        if account is None or not self._hasher.verify(account.password_hash, password):
            with self._uow.login_state() as uow:
                failure = self._fail(uow, keys, account, ident, ip)
                uow.commit()
            if failure.locked and account is not None and self.on_lock is not None:
                self._notify_lock(account)
            metrics.LOGINS.labels(protocol=request.protocol, route="password",
                                  outcome="locked" if failure.locked else "failure").inc()
            if failure.locked:  # this failure starts the wait: say so now, not at the next try
                raise LoginThrottled(failure.lock_seconds)
            raise InvalidCredentials(tries_left=failure.tries_left)
        try:
            self._check_usable(account)
            self._check_profile(account, profile, ip)
        except AccountUnavailable:
            metrics.LOGINS.labels(protocol=request.protocol, route="password", outcome="unusable").inc()
            raise
        except WrongProfile:
            metrics.LOGINS.labels(protocol=request.protocol, route="password", outcome="wrong_profile").inc()
            raise
        # Usually the success writes one thing, ``add_at_login`` (no counters to clear, no earlier session to
        # end, no rehash): the storage may then send it without a transaction (one statement on PostgreSQL).
        rehash = self._needs_rehash(account)
        one_write = keys.identifier not in counters and not old_token and not rehash
        with self._uow.login_state(one_write=one_write) as uow:
            if keys.identifier in counters:
                throttle.record_success(keys, uow.throttle)
            done = self._succeed(uow, account, password, request, ip, user_agent, old_token, rehash=rehash,
                                 complete=request.protocol in complete_protocols)
            uow.commit()
        metrics.LOGINS.labels(protocol=request.protocol, route="password", outcome="success").inc()
        return done

    def _fail(self, uow: UnitOfWork, keys: throttle.ThrottleKeys, account: Account | None, ident: str,
              ip: str) -> throttle.Failure:
        now = self._clock.now()
        failure = throttle.record_failure(keys, uow.throttle, self._throttle, now)
        account_id = account.id if account else None
        self._audit(uow, audit.LOGIN_FAILURE, account_id, ident, ip, {"known": account is not None})
        if failure.locked:
            self._audit(uow, audit.LOGIN_LOCKED, account_id, ident, ip, {})
        return failure

    def _notify_lock(self, account: Account) -> None:
        """The lockout notice; a delivery problem is logged and never changes the login's answer."""
        assert self.on_lock is not None
        try:
            self.on_lock(account)
        except Exception:  # noqa: BLE001 - the notice must not turn a refused login into an error page
            log.exception("lockout notice not queued")

    def _check_usable(self, account: Account) -> None:
        if account.state in (AccountState.LOCKED, AccountState.CLOSED):
            raise AccountUnavailable()
        expiry = account.provisional_expires_at
        if account.state is AccountState.PROVISIONAL and expiry is not None and self._clock.now() >= expiry:
            raise AccountUnavailable(
                _("Vos identifiants provisoires ont expiré. Demandez-en de nouveaux à votre établissement.")
            )

    def _check_profile(self, account: Account, profile: Profile, ip: str) -> None:
        """``check_profile``, audited when it refuses; the throttle counters are left as they were."""
        try:
            check_profile(account, profile)
        except WrongProfile:
            with self._uow.login_state() as uow:
                self._audit(uow, audit.LOGIN_WRONG_PROFILE, account.id, account.identifier, ip,
                            {"chosen": profile.value})
                uow.commit()
            raise

    def _needs_rehash(self, account: Account) -> bool:
        return bool(account.password_hash) and self._hasher.needs_rehash(account.password_hash or "")

    def _succeed(self, uow: UnitOfWork, account: Account, password: str, request: AuthnRequest, ip: str,
                 user_agent: str, old_token: str | None, *, rehash: bool, complete: bool) -> LoginOutcome:
        now = self._clock.now()
        if rehash:
            uow.accounts.set_password_hash(account.id, self._hasher.hash(password), now, changed=False)
            self._audit(uow, audit.PASSWORD_REHASHED, account.id, account.identifier, ip, {})
        provisional = account.state is AccountState.PROVISIONAL
        change_due = account.must_change_password and not provisional
        if old_token:
            # A cookie from before the login never survives it (session fixation, SECURITY W01).
            old = find_session(uow, old_token, self.session_policy, self._clock)
            if old is not None:
                uow.sessions.end(old.id, now)
        method = AuthMethod.PROVISIONAL if provisional else \
            AuthMethod.PASSWORD_CHANGE if change_due else AuthMethod.PASSWORD
        token, session = new_session(account.id, method, self.session_policy, now, ip, user_agent)
        complete = complete and not provisional and not change_due
        event = AuditEvent(event=audit.LOGIN_SUCCESS, at=now, account_id=account.id,
                           subject=audit.mask_identifier(account.identifier), ip=ip, details={"method": method.value})
        # The session, the account's last login (and language), the request and the audit line: one statement on
        # PostgreSQL. An unstored request (id "", the portal's) matches no row: its part changes nothing.
        uow.sessions.add_at_login(session, request_id=request.id, complete=complete, event=event,
                                  language=language_to_record(account))
        done = dataclasses.replace(request, session_id=session.id, authenticated_at=now,
                                   completed_at=now if complete else None)
        return LoginOutcome(token=token, session=session, account=account, needs_activation=provisional,
                            request=done, needs_password_change=change_due)

    # --- after activation or recovery -------------------------------------------------------------

    def open_after_step(self, uow: UnitOfWork, account: Account, method: AuthMethod, *, request_id: str,
                        browser_id: str, ip: str, user_agent: str = "",
                        old_token: str | None = None) -> tuple[str, SsoSession, AuthnRequest | None]:
        """Open a NEW session inside the caller's transaction once an activation step proved who the person is
        (the account's last login and language recorded with it).

        Any session behind ``old_token`` (a provisional one, or an attacker's planted cookie) is ended, never
        reused (SECURITY W01). When ``request_id`` names a request still pending in this browser, it is marked
        authenticated by the new session, so ``resume`` answers the service provider that sent the person.
        """
        now = self._clock.now()
        if old_token:
            old = find_session(uow, old_token, self.session_policy, self._clock)
            if old is not None:
                uow.sessions.end(old.id, now)
        account_id = account.id
        token, session = open_session(uow, account_id, method, self.session_policy, self._clock, ip, user_agent)
        uow.accounts.record_login(account_id, now, language_to_record(account))
        request = uow.authn_requests.get(request_id, browser_hash(browser_id)) if request_id else None
        if request is not None and (request.completed_at is not None or self._expired(request)):
            request = None
        if request is not None:
            uow.authn_requests.mark_authenticated(request.id, session.id, now)
        self._audit(uow, audit.LOGIN_SUCCESS, account_id, "", ip, {"method": method.value})
        metrics.LOGINS.labels(protocol=request.protocol if request else "portal", route=method.value,
                              outcome="success").inc()
        return token, session, request

    # --- resume ----------------------------------------------------------------------------------

    def resume(self, request_id: str, browser_id: str, session_token: str | None) -> Assertion:
        """Hand the front-end the assertion for a request its person has just logged in for (once)."""
        # Autocommit: reads, then one conditional UPDATE that only one caller ever wins.
        with self._uow.autocommit() as uow:
            request = self._pending_in(uow, request_id, browser_id)
            found = find_session_with_account(uow, session_token, self.session_policy, self._clock)
            if found is None:
                raise AuthnRequestExpired()
            session, account = found
            fresh = request.session_id == session.id
            if not session_may_resume(request, session, fresh) or not account_may_answer(account):
                raise AuthnRequestExpired()
            if not uow.authn_requests.complete(request_id, self._clock.now()):
                raise AuthnRequestExpired()
            uow.commit()
        done = dataclasses.replace(request, completed_at=self._clock.now())
        return Assertion(account=account, session=session, request=done, fresh_login=fresh)

    # --- logout ----------------------------------------------------------------------------------

    def current_session(self, token: str | None) -> tuple[SsoSession, Account] | None:
        """The live session behind a cookie and its account, if any."""
        with self._uow.autocommit() as uow:
            found = find_session_with_account(uow, token, self.session_policy, self._clock)
            uow.commit()
        return found

    def remember_language(self, token: str | None, language: str) -> bool:
        """The language switch of a logged-in person: the language chosen is stored on the session's account
        (nothing written when it is the stored one, or when nobody is logged in)."""
        if not token:
            return False
        with self._uow() as uow:
            found = find_session_with_account(uow, token, self.session_policy, self._clock)
            written = found is not None and remember_language(uow, found[1], language)
            uow.commit()
        return written

    def logout(self, token: str | None, ip: str) -> SsoSession | None:
        """End the session behind a cookie; returns it (for single logout) or None if there was none."""
        with self._uow() as uow:
            session = find_session(uow, token, self.session_policy, self._clock)
            if session is None:
                return None
            uow.sessions.end(session.id, self._clock.now())
            self._audit(uow, audit.LOGOUT, session.account_id, "", ip, {})
            uow.commit()
        return session

    def _audit(self, uow: UnitOfWork, event: str, account_id: int | None, subject: str, ip: str,
               details: dict[str, Any]) -> None:
        masked = audit.mask_identifier(subject)
        uow.audit.record(AuditEvent(event=event, at=self._clock.now(), account_id=account_id, subject=masked,
                                    ip=ip, details=details))
