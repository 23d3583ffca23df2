"""The account page ("Mon compte"): password, e-mail and phone changes, children and schools, sessions.

Every change needs a full session (never a provisional one) and the current password (re-authentication,
SECURITY A17, W12), checked with the login's throttling. A new phone number or address is confirmed by a code
sent to it; the old one gets a notice. A password change ends the account's other sessions and sends a notice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from idp.core.accounts.model import Account, AccountState
from idp.core.accounts.service import AccountService
from idp.core.activation import events, messages
from idp.core.activation.common import DAY, FlowKit
from idp.core.activation.errors import ContactChangeRefused, FlowExpired, FormProblem, StepNotAllowed
from idp.core.activation.matching import (
    PHONE_PROBLEM,
    mask_e164,
    mobile_problem,
    parse_phone,
    sms_destination,
)
from idp.core.activation.model import Channel, Transaction, TxKind, TxState
from idp.core.activation.provisional import email_problem
from idp.core.audit import mask_email
from idp.core.authn import throttle
from idp.core.authn.flow import AuthnFlow
from idp.core.authn.model import SsoSession
from idp.core.authn.policy import FULL_METHODS
from idp.core.authn.sessions import find_session
from idp.core.i18n import N_, _
from idp.core.passwords.hashing import PasswordHasher
from idp.core.recovery.service import RESET, notify_password_change
from idp.errors import LoginThrottled, PasswordRejected

KINDS = {Channel.MAIL: TxKind.CHANGE_EMAIL.value, Channel.SMS: TxKind.CHANGE_PHONE.value}
WRONG_CURRENT = N_("Mot de passe actuel incorrect : vérifiez-le et réessayez.")
CURRENT_MISSING = N_("Indiquez votre mot de passe actuel.")
NEW_CONTACT_MISSING = {Channel.SMS: N_("Indiquez le nouveau numéro de téléphone portable."),
                       Channel.MAIL: N_("Indiquez la nouvelle adresse mail.")}
REFUSED_EVENTS = {Channel.SMS: events.PHONE_CHANGE_REFUSED, Channel.MAIL: events.EMAIL_CHANGE_REFUSED}


class NotLoggedIn(FlowExpired):
    """The account page needs a live, full session."""

    code = "not_logged_in"
    description = N_("Connectez-vous pour accéder à votre compte.")


@dataclass(frozen=True)
class AccountOverview:
    """What "Mon compte" shows."""

    account: Account
    records: Sequence[dict[str, Any]]
    sessions: Sequence[SsoSession]
    current_session_id: str


@dataclass(frozen=True)
class ContactChangeView:
    """The code page of an e-mail or phone change."""

    channel: str
    shown: str
    resend_wait: int
    delivery_problem: bool


class AccountSettings:
    """Operations of the account page."""

    def __init__(self, kit: FlowKit, accounts: AccountService, hasher: PasswordHasher, flow: AuthnFlow) -> None:
        self.kit = kit
        self._accounts = accounts
        self._hasher = hasher
        self._flow = flow

    def current(self, token: str | None) -> tuple[SsoSession, Account]:
        """The full session and active account behind the cookie, or ``NotLoggedIn``."""
        with self.kit.uow() as uow:
            session = find_session(uow, token, self._flow.session_policy, self.kit.clock)
            account = uow.accounts.get(session.account_id) if session else None
            uow.commit()
        if session is None or account is None or session.auth_method not in FULL_METHODS \
                or account.state is not AccountState.ACTIVE:
            raise NotLoggedIn()
        return session, account

    def overview(self, token: str | None) -> AccountOverview:
        """The account, its children and schools, its active sessions."""
        session, account = self.current(token)
        with self.kit.uow() as uow:
            records = uow.accounts.linked_records(account.id)
            sessions = uow.sessions.active_for_account(account.id, self.kit.clock.now())
        alive = [s for s in sessions if s.last_seen_at + self._flow.session_policy.idle > self.kit.clock.now()]
        return AccountOverview(account=account, records=records, sessions=alive, current_session_id=session.id)

    # --- password ---------------------------------------------------------------------------------

    def change_password(self, token: str | None, current: str, new: str, confirmation: str, *, ip: str) -> int:
        """Change the password (current one required); other sessions end; returns how many ended."""
        session, account = self.current(token)
        self._reauthenticate(account, current, ip)
        if new != confirmation:
            raise FormProblem([_("Les deux nouveaux mots de passe saisis ne sont pas identiques.")])
        try:
            self._accounts.check_new_password(new, self._accounts.password_context(account))
        except PasswordRejected as exc:
            raise FormProblem(exc.reasons) from None
        hashed = self._hasher.hash(new)
        kit = self.kit
        with kit.uow() as uow:
            now = kit.clock.now()
            uow.accounts.set_password_hash(account.id, hashed, now, changed=True)
            ended = uow.sessions.end_all(account.id, now, except_id=session.id)
            kit.stores(uow).cancel_account_transactions(account.id, (RESET,), now)
            notify_password_change(kit, uow, account, used=None)
            kit.audit(uow, events.PASSWORD_CHANGED, account.id, account.identifier,
                      {"sessions_ended": len(ended)}, ip)
            uow.commit()
        kit.logout_hooks.run(ended)  # the same path as a logout: single logout, tokens revoked
        kit.wake()
        return len(ended)

    def check_password(self, account: Account, password: str, ip: str) -> None:
        """Re-authentication by password for other flows (federation link and unlink); ``FormProblem`` if wrong."""
        self._reauthenticate(account, password, ip)

    def _reauthenticate(self, account: Account, password: str, ip: str) -> None:
        """The current password, checked with the login's throttling keys and delays."""
        kit = self.kit
        keys = throttle.keys_for(account.identifier, ip)
        with kit.uow() as uow:
            wait = throttle.wait_seconds(uow.throttle.get_many([keys.identifier, keys.ip, keys.network]),
                                         kit.clock.now())
        if wait:
            raise LoginThrottled(wait)
        if not password:
            raise FormProblem([], {"actuel": _(CURRENT_MISSING)})
        if not self._hasher.verify(account.password_hash, password[:1024]):
            with kit.uow() as uow:
                throttle.record_failure(keys, uow.throttle, self._flow._throttle, kit.clock.now())  # noqa: SLF001
                uow.commit()
            raise FormProblem([], {"actuel": _(WRONG_CURRENT)})

    # --- e-mail and phone -------------------------------------------------------------------------

    def start_contact_change(self, token: str | None, channel: Channel, value: str, current_password: str, *,
                             ip: str, browser_id: str) -> str:
        """Send a code to the new phone number or address; returns the transaction token."""
        session, account = self.current(token)
        destination = self._new_contact(channel, value)
        self._reauthenticate(account, current_password, ip)
        kit = self.kit
        with kit.uow() as uow:
            store = kit.stores(uow)
            kind = KINDS[channel]
            self._check_limits(uow, store, account, channel, destination, ip, start=True)
            tx_token, tx = kit.new_transaction(store, kind, browser_id, ip, account_id=account.id,
                                               channel=channel.value, destination=destination,
                                               data={"session": session.id})
            store.cancel_account_transactions(account.id, (kind,), kit.clock.now(), except_id=tx.id)
            ttl = kit.limits.code_ttl if channel is Channel.SMS else kit.limits.email_code_ttl
            text = messages.contact_code
            kit.send_code(uow, store, tx, purpose=kind, channel=channel, destination=destination,
                          limit_key_value=destination, ttl=ttl, text_for=lambda c, m: text(kit.product, c, m))
            kit.audit(uow, events.CONTACT_CHANGE_STARTED, account.id, account.identifier, {"channel": channel.value},
                      ip)
            uow.commit()
        kit.wake()
        return tx_token

    def _check_limits(self, uow: Any, store: Any, account: Account, channel: Channel, destination: str, ip: str, *,
                      start: bool = False) -> None:
        """Refuse, saying why, a code « Mon compte » may not send: N starts per address and hour, N codes per
        account and channel a day, N per destination a day, and the SMS budget of account changes (issue 21).
        The refusal is audited (``account.phone_change_refused``, ``account.email_change_refused``) and
        committed; nothing else is written."""
        kit, kinds = self.kit, tuple(KINDS.values())
        if start and kit.starts_exceeded(store, ip, kinds):
            reason = "address"
        elif store.count_account_sends(account.id, (KINDS[channel],), kit.clock.now() - DAY) \
                >= kit.limits.contact_codes_per_account_per_day:
            reason = "account"
        else:
            key = kit.recipient_key(channel.value, destination)
            reason = kit.limit_reached(store, channel, key, KINDS[channel])
        if not reason:
            return
        shown = mask_e164(destination) if channel is Channel.SMS else mask_email(destination)
        kit.refused(uow, REFUSED_EVENTS[channel], account.id, {"reason": reason, "new": shown}, ip,
                    subject=account.identifier)
        uow.commit()
        raise ContactChangeRefused(reason, sms=channel is Channel.SMS)

    def _new_contact(self, channel: Channel, value: str) -> str:
        """The new number or address, checked; the problem is written beside the field (empty says empty)."""
        if not value.strip():
            raise FormProblem([], {"valeur": _(NEW_CONTACT_MISSING[channel])})
        if channel is Channel.SMS:
            phone = parse_phone(value, self.kit.limits.default_region)
            mobile = sms_destination(phone, self.kit.limits.allowed_regions) if phone else None
            if mobile is None:
                raise FormProblem([], {"valeur": mobile_problem(value, self.kit.limits.default_region)
                                       or _(PHONE_PROBLEM)})
            return mobile
        email = value.strip()
        if email_problem(email):
            raise FormProblem([], {"valeur": email_problem(email)})
        return email

    def _contact_tx(self, token: str | None, tx_token: str | None, browser_id: str,
                    channel: Channel) -> tuple[SsoSession, Account, Transaction]:
        session, account = self.current(token)
        with self.kit.uow() as uow:
            tx = self.kit.load(self.kit.stores(uow), tx_token, browser_id, KINDS[channel])
        if tx.account_id != account.id or tx.data.get("session") != session.id:
            raise StepNotAllowed()
        return session, account, tx

    def contact_change_view(self, token: str | None, tx_token: str | None, browser_id: str,
                            channel: Channel) -> ContactChangeView:
        """The code page of a change."""
        _, _, tx = self._contact_tx(token, tx_token, browser_id, channel)
        if tx.state is not TxState.CODE_SENT:
            raise StepNotAllowed()
        with self.kit.uow() as uow:
            problem = self.kit.delivery_problem(self.kit.stores(uow), tx, channel)
        shown = mask_e164(tx.destination) if channel is Channel.SMS else tx.destination
        return ContactChangeView(channel=tx.channel, shown=shown, resend_wait=self.kit.resend_wait(tx),
                                 delivery_problem=problem)

    def resend_contact_code(self, token: str | None, tx_token: str | None, browser_id: str,
                            channel: Channel, *, ip: str = "") -> None:
        """A new code to the new address (the old one dies), within the same limits as the first."""
        _, account, tx = self._contact_tx(token, tx_token, browser_id, channel)
        kit = self.kit
        with kit.uow() as uow:
            store = kit.stores(uow)
            if tx.state is not TxState.CODE_SENT:
                raise StepNotAllowed()
            self._check_limits(uow, store, account, channel, tx.destination, ip)
            ttl = kit.limits.code_ttl if channel is Channel.SMS else kit.limits.email_code_ttl
            text = messages.contact_code
            kit.send_code(uow, store, tx, purpose=tx.kind, channel=channel, destination=tx.destination,
                          limit_key_value=tx.destination, ttl=ttl, text_for=lambda c, m: text(kit.product, c, m))
            uow.commit()
        kit.wake()

    def confirm_contact_change(self, token: str | None, tx_token: str | None, browser_id: str, channel: Channel,
                               code: str, *, ip: str) -> None:
        """The code is right: the new contact is set as verified and the old one gets a notice."""
        _, account, tx = self._contact_tx(token, tx_token, browser_id, channel)
        kit = self.kit
        with kit.uow() as uow:
            store = kit.stores(uow)
            current = store.get_transaction(tx.id) or tx
            if current.state is not TxState.CODE_SENT:
                raise StepNotAllowed()
            kit.check_code(uow, store, current, code)
            now = kit.clock.now()
            if not store.move(tx.id, [TxState.CODE_SENT], TxState.DONE, now):
                raise StepNotAllowed()
            if channel is Channel.SMS:
                uow.accounts.set_phone(account.id, tx.destination, now)
                old = account.phone if account.phone_verified else ""
            else:
                uow.accounts.set_email(account.id, tx.destination, now)
                old = account.email if account.email_verified else ""
            if old and old.lower() != tx.destination.lower():
                old_dest = sms_destination(old, kit.limits.allowed_regions) if channel is Channel.SMS else old
                subject, text = messages.contact_changed(kit.product, account.identifier, channel is Channel.SMS)
                kit.queue(uow, store, channel, old_dest, text, purpose="notice", account_id=account.id,
                          subject=subject, counted=False)
            shown = mask_e164(tx.destination) if channel is Channel.SMS else mask_email(tx.destination)
            kit.audit(uow, events.CONTACT_CHANGED, account.id, account.identifier,
                      {"channel": channel.value, "new": shown}, ip)
            uow.commit()
        kit.wake()

    # --- sessions ---------------------------------------------------------------------------------

    def end_session(self, token: str | None, public_id: str, *, ip: str) -> bool:
        """End one of the account's other sessions (the current one ends with "Se déconnecter")."""
        session, account = self.current(token)
        kit = self.kit
        with kit.uow() as uow:
            sessions = uow.sessions.active_for_account(account.id, kit.clock.now())
            target = next((s for s in sessions if s.public_id == public_id and s.id != session.id), None)
            if target is None:
                return False
            if not uow.sessions.end(target.id, kit.clock.now()):
                return False
            kit.audit(uow, events.SESSION_ENDED, account.id, account.identifier, {}, ip)
            uow.commit()
        kit.logout_hooks.run([target])  # the same path as a logout: single logout, tokens revoked
        return True
