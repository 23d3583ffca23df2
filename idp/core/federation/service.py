"""The federation route: "S'identifier avec FranceConnect", the callback, the link from the account page,
the upstream logout.

    start ──► provider ──► callback ─┬─ (issuer, sub) linked ─────────────► logged in (request resumed)
                                     ├─ one register candidate ───────────► confirmation (FederatedEnrolment)
                                     ├─ none / several ───────────────────► a page; nothing linked (F06)
                                     └─ from the account page ────────────► linked to the logged-in account

``state`` and ``nonce`` are random (43 characters), stored server-side bound to this browser, used once and
valid 10 minutes (F01); the provider's ``iss`` parameter must be its issuer when present (F03); the tokens
are verified by the ``Upstream`` adapter (F02, F04). Only ``(issuer, sub)`` ever designates an account (F05).
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from idp.core.accounts.model import Account, AccountState
from idp.core.activation.common import FlowKit
from idp.core.activation.errors import FormProblem
from idp.core.authn.flow import AuthnFlow, browser_hash
from idp.core.authn.model import AuthMethod, AuthnRequest, SsoSession
from idp.core.authn.sessions import find_session
from idp.core.federation import events
from idp.core.federation.enrolment import FederatedEnrolment, Reauthenticate
from idp.core.federation.errors import FederationRejected, FederationUnavailable
from idp.core.federation.matching import candidates, family_keys, record_matches
from idp.core.federation.ports import FederationStoreFactory, PendingState, Upstream, UpstreamAnswer
from idp.core.ports import UnitOfWork

LOGIN, LINK, LOGOUT = "login", "link", "logout"
MAX_PARAM = 2048


@dataclass(frozen=True)
class Outcome:
    """What the callback ended with; the web layer turns ``kind`` into a redirect or a page.

    kinds: ``logged_in`` (token, request), ``confirm`` (tx_token), ``no_match``, ``ambiguous``, ``no_phone``,
    ``account_unavailable``, ``linked``, ``taken``, ``mismatch``, ``cancelled``.
    """

    kind: str
    request_id: str = ""
    token: str | None = None
    session: SsoSession | None = None
    request: AuthnRequest | None = None
    tx_token: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class FederationService:
    """The client side of the federation, independent of Flask and of the database."""

    def __init__(self, kit: FlowKit, flow: AuthnFlow, upstream: Upstream, links: FederationStoreFactory,
                 enrolment: FederatedEnrolment, reauthenticate: Reauthenticate, state_ttl: dt.timedelta) -> None:
        self.kit = kit
        self._flow = flow
        self.upstream = upstream
        self._links = links
        self.enrolment = enrolment
        self._reauthenticate = reauthenticate
        self._state_ttl = state_ttl

    # --- start ----------------------------------------------------------------------------------

    def start(self, browser_id: str, *, request_id: str = "", session_token: str | None = None,
              purpose: str = LOGIN, password: str = "", ip: str = "") -> str:
        """The provider's authorization URL for a new state bound to this browser.

        ``purpose=link`` (the account page) needs the logged-in session and its password typed again."""
        if not self.upstream.available():
            raise FederationUnavailable("circuit open")
        account_id = None
        if purpose == LINK:
            account = self._logged_in(session_token)
            self._check_password(account, password, ip)
            account_id = account.id
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.kit.clock.now()
        with self.kit.uow() as uow:
            pending = self.enrolment._pending_request(uow, request_id, browser_id) if request_id else ""
            self._links(uow).add_state(PendingState(
                id=_state_id(state), purpose=purpose, browser_hash=browser_hash(browser_id), nonce=nonce,
                created_at=now, expires_at=now + self._state_ttl, request_id=pending, account_id=account_id))
            uow.commit()
        return self.upstream.authorization_url(state, nonce)

    # --- callback -------------------------------------------------------------------------------

    def callback(self, params: dict[str, str], browser_id: str, *, ip: str, user_agent: str = "",
                 session_token: str | None = None) -> Outcome:
        """Check the answer, then log in, start the confirmation, or link (from the account page)."""
        pending = self._take_state(params, browser_id, (LOGIN, LINK), ip)
        if params.get("error"):
            return Outcome("cancelled", request_id=pending.request_id)
        issuer = params.get("iss")
        if issuer is not None and not hmac.compare_digest(issuer.encode(), self.upstream.issuer.encode()):
            raise self._rejected("iss mismatch", ip)
        code = params.get("code", "")
        if not code or len(code) > MAX_PARAM:
            raise self._rejected("no code", ip)
        try:
            answer = self.upstream.authenticate(code, pending.nonce)
        except FederationRejected as exc:
            raise self._rejected(exc.reason, ip) from None
        except FederationUnavailable as exc:
            self._audit(events.FEDERATION_UNAVAILABLE, None, {"reason": exc.reason}, ip)
            raise
        if pending.purpose == LINK:
            return self._link_from_account(pending, answer, session_token, ip)
        return self._login(pending, answer, browser_id, ip, user_agent, session_token)

    def _take_state(self, params: dict[str, str], browser_id: str, purposes: tuple[str, ...],
                    ip: str) -> PendingState:
        state = params.get("state", "")
        if not state or len(state) > MAX_PARAM:
            raise self._rejected("no state", ip)
        with self.kit.uow() as uow:
            pending = self._links(uow).take_state(_state_id(state), self.kit.clock.now())
            uow.commit()
        if pending is None or pending.purpose not in purposes \
                or not hmac.compare_digest(pending.browser_hash, browser_hash(browser_id)):
            raise self._rejected("unknown state", ip)
        if self.kit.clock.now() >= pending.expires_at:
            raise self._rejected("expired state", ip)
        return pending

    def _login(self, pending: PendingState, answer: UpstreamAnswer, browser_id: str, ip: str, user_agent: str,
               old_token: str | None) -> Outcome:
        pivot = answer.pivot
        with self.kit.uow() as uow:
            links = self._links(uow)
            account_id = links.linked_account(pivot.issuer, pivot.sub)
            if account_id is not None:
                return self._open(uow, account_id, pending, answer, browser_id, ip, user_agent, old_token)
            groups = candidates(pivot, links.representatives_named(family_keys(pivot)))
            several_accounts = len(groups) == 1 and len({r.account_id for r in groups[0] if r.account_id}) > 1
            if not groups or len(groups) > 1 or several_accounts:
                kind = "no_match" if not groups else "ambiguous"
                event = events.FEDERATION_NO_MATCH if not groups else events.FEDERATION_AMBIGUOUS
                self.kit.audit(uow, event, None, "", {"candidates": len(groups)}, ip)
                uow.commit()
                return Outcome(kind, request_id=pending.request_id)
            token = self.enrolment.begin(uow, groups[0], pivot, answer.id_token, browser_id=browser_id, ip=ip,
                                         request_id=pending.request_id)
            if token is None:
                self.kit.audit(uow, events.FEDERATION_NO_MATCH, None, "", {"candidates": 1, "phone": False}, ip)
                uow.commit()
                return Outcome("no_phone", request_id=pending.request_id)
            self.kit.audit(uow, events.FEDERATION_CONFIRMATION, None, "", {"records": len(groups[0])}, ip)
            uow.commit()
        self.kit.wake()
        return Outcome("confirm", request_id=pending.request_id, tx_token=token)

    def _open(self, uow: UnitOfWork, account_id: int, pending: PendingState, answer: UpstreamAnswer,
              browser_id: str, ip: str, user_agent: str, old_token: str | None) -> Outcome:
        account = uow.accounts.get(account_id)
        if account is None or account.state is not AccountState.ACTIVE:
            self.kit.audit(uow, events.FEDERATION_REJECTED, account_id, "", {"reason": "account unavailable"}, ip)
            uow.commit()
            return Outcome("account_unavailable", request_id=pending.request_id)
        token, session, request = self._flow.open_after_step(
            uow, account, AuthMethod.FEDERATION, request_id=pending.request_id, browser_id=browser_id, ip=ip,
            user_agent=user_agent, old_token=old_token)
        self._links(uow).keep_id_token(session.id, answer.pivot.issuer, answer.id_token, self.kit.clock.now())
        self.kit.audit(uow, events.FEDERATION_LOGIN, account_id, account.identifier, {}, ip)
        uow.commit()
        return Outcome("logged_in", request_id=pending.request_id, token=token, session=session, request=request)

    # --- the account page -----------------------------------------------------------------------

    def _link_from_account(self, pending: PendingState, answer: UpstreamAnswer, session_token: str | None,
                           ip: str) -> Outcome:
        """Link to the account that asked, still logged in in this browser, if the identity is its holder's."""
        account = self._logged_in(session_token)
        if account.id != pending.account_id:
            raise self._rejected("session changed", ip)
        pivot = answer.pivot
        with self.kit.uow() as uow:
            links = self._links(uow)
            owner = links.linked_account(pivot.issuer, pivot.sub)
            if owner is not None:
                uow.commit()
                return Outcome("linked" if owner == account.id else "taken")
            records = self.kit.stores(uow).linked_representatives(account.id)
            if not any(record_matches(pivot, r.family_name, r.given_names) for r in records):
                self.kit.audit(uow, events.FEDERATION_REJECTED, account.id, "", {"reason": "names differ"}, ip)
                uow.commit()
                return Outcome("mismatch")
            if links.is_linked(account.id, pivot.issuer) or not links.link(pivot.issuer, pivot.sub, account.id,
                                                                          self.kit.clock.now()):
                uow.rollback()
                return Outcome("taken")
            self.kit.audit(uow, events.FEDERATION_LINKED, account.id, account.identifier, {"route": "account"}, ip)
            uow.commit()
        return Outcome("linked")

    def is_linked(self, account_id: int) -> bool:
        """Whether the account has a linked identity at this provider."""
        with self.kit.uow() as uow:
            return self._links(uow).is_linked(account_id, self.upstream.issuer)

    def unlink(self, session_token: str | None, password: str, *, ip: str) -> bool:
        """Remove the link (password typed again); later logins with that identity start over."""
        account = self._logged_in(session_token)
        self._check_password(account, password, ip)
        with self.kit.uow() as uow:
            removed = self._links(uow).unlink(account.id, self.upstream.issuer)
            if removed:
                self.kit.audit(uow, events.FEDERATION_UNLINKED, account.id, account.identifier, {}, ip)
            uow.commit()
        return bool(removed)

    def _logged_in(self, session_token: str | None) -> Account:
        with self.kit.uow() as uow:
            session = find_session(uow, session_token, self._flow.session_policy, self.kit.clock)
            account = uow.accounts.get(session.account_id) if session else None
            uow.commit()
        if session is None or account is None or account.state is not AccountState.ACTIVE \
                or session.auth_method is AuthMethod.PROVISIONAL:
            raise FederationRejected("not logged in")
        return account

    def _check_password(self, account: Account, password: str, ip: str) -> None:
        self._reauthenticate(account, password, ip)  # FormProblem with the French reason when wrong

    # --- logout (F08) ---------------------------------------------------------------------------

    def logout_redirect(self, session: SsoSession, browser_id: str, then: str) -> str | None:
        """After our session has ended: the provider's ``session/end`` URL when the session came through it.

        ``then`` (a local path, or "" for the logged-out page) is where its return continues. Nothing here
        can keep our session alive: it has already ended, and the provider being down only loses its logout.
        """
        with self.kit.uow() as uow:
            id_token = self._links(uow).take_id_token(session.id)
            if not id_token or not self.upstream.available():
                uow.commit()
                return None
            state = secrets.token_urlsafe(32)
            now = self.kit.clock.now()
            self._links(uow).add_state(PendingState(
                id=_state_id(state), purpose=LOGOUT, browser_hash=browser_hash(browser_id), nonce="",
                created_at=now, expires_at=now + self._state_ttl, data={"then": then}))
            uow.commit()
        return self.upstream.logout_url(id_token, state)

    def logout_return(self, state: str, browser_id: str) -> str:
        """Back from the provider's logout: where to continue ("" for the logged-out page)."""
        with self.kit.uow() as uow:
            pending = self._links(uow).take_state(_state_id(state[:MAX_PARAM]), self.kit.clock.now()) \
                if state else None
            uow.commit()
        if pending is None or pending.purpose != LOGOUT \
                or not hmac.compare_digest(pending.browser_hash, browser_hash(browser_id)):
            return ""
        return str(pending.data.get("then", ""))

    # --- helpers --------------------------------------------------------------------------------

    def _rejected(self, reason: str, ip: str) -> FederationRejected:
        self._audit(events.FEDERATION_REJECTED, None, {"reason": reason}, ip)
        return FederationRejected(reason)

    def _audit(self, event: str, account_id: int | None, details: dict[str, Any], ip: str) -> None:
        with self.kit.uow() as uow:
            self.kit.audit(uow, event, account_id, "", details, ip)
            uow.commit()


def _state_id(state: str) -> str:
    """States are stored as their SHA-256, like every other browser-held token."""
    import hashlib

    return hashlib.sha256(state.encode("utf-8")).hexdigest()


__all__ = ["FederationService", "FormProblem", "Outcome"]
