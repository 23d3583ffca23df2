"""Forgotten identifier and forgotten password, with codes by SMS or e-mail to the account's verified contacts.

Every answer is the same whether or not the account exists (SECURITY A14, A15): a transaction and a code are
made in every case, a message is queued only when there is a verified contact, and sent after the answer. A
reset ends every session of the account, invalidates older requests and sends a notice on the other channel;
it never logs the person in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from idp.core.accounts.identifiers import normalise_login_input
from idp.core.accounts.language import in_account_language, remember_language
from idp.core.accounts.model import Account, AccountState
from idp.core.accounts.service import AccountService
from idp.core.activation import events, messages
from idp.core.activation.common import FlowKit
from idp.core.activation.errors import FormProblem, StepNotAllowed
from idp.core.activation.matching import PHONE_MISSING, PHONE_PROBLEM, parse_phone, sms_destination
from idp.core.activation.model import Channel, TxKind, TxState
from idp.core.activation.provisional import email_problem
from idp.core.authn import throttle
from idp.core.authn.flow import browser_hash
from idp.core.i18n import N_, _
from idp.core.passwords.hashing import PasswordHasher
from idp.core.passwords.policy import MSG_MISMATCH, NO_CONTEXT, PasswordContext
from idp.core.ports import UnitOfWork
from idp.errors import PasswordRejected

RESET = TxKind.RECOVER_PASSWORD.value
IDENT = TxKind.RECOVER_IDENTIFIER.value
#: The form fields of « Identifiant oublié », where each problem is written.
CONTACT_FIELDS = {Channel.SMS: "telephone", Channel.MAIL: "courriel"}
EMAIL_MISSING = N_("Indiquez l'adresse mail de votre compte.")
CHANNEL_MISSING = N_("Choisissez de recevoir votre identifiant par SMS ou par mail, et indiquez le numéro ou "
                     "l'adresse.")
IDENTIFIER_MISSING = N_("Indiquez votre identifiant (au format p.nomXX).")


@dataclass(frozen=True)
class ResetView:
    """What the reset pages show (the same for an unknown identifier)."""

    state: TxState
    channel: str
    resend_wait: int
    delivery_problem: bool
    request_id: str
    identifier: str = ""
    #: Once the code proved it: what the new password must not contain, for the live checklist.
    avoid: PasswordContext = NO_CONTEXT


def parse_channel(value: str) -> Channel:
    """``sms`` or ``mail`` from a form; anything else is a form problem."""
    try:
        return Channel(value)
    except ValueError:
        raise FormProblem([], {"canal_sms": _("Choisissez de recevoir le code par SMS ou par mail.")}) from None


def chosen_contact(choice: str, phone: str, email: str) -> tuple[Channel, str]:
    """The channel and the contact typed on « Identifiant oublié » (both fields are on the page): the one chosen,
    unless only the other field was filled in, which says what the person meant (a mail alone is a mail)."""
    typed = {Channel.SMS: phone.strip(), Channel.MAIL: email.strip()}
    if choice not in ("sms", "mail"):
        # Nothing is preselected: what was typed says which one (both typed: the choice is needed).
        filled = [c for c, value in typed.items() if value]
        if len(filled) != 1:
            raise FormProblem([], {"canal_sms": _(CHANNEL_MISSING)})
        return filled[0], typed[filled[0]]
    channel = Channel(choice)
    other = Channel.MAIL if channel is Channel.SMS else Channel.SMS
    if not typed[channel] and typed[other]:
        channel = other
    return channel, typed[channel]


class RecoveryService:
    """"Identifiant oublié ?" and "Mot de passe oublié ?"."""

    def __init__(self, kit: FlowKit, accounts: AccountService, hasher: PasswordHasher) -> None:
        self.kit = kit
        self._accounts = accounts
        self._hasher = hasher

    # --- forgotten identifier ---------------------------------------------------------------------

    def forgot_identifier(self, channel: Channel, value: str, *, ip: str, browser_id: str) -> None:
        """Send the identifier(s) of the accounts whose verified phone or address this is; answer the same."""
        kit = self.kit
        contact = self._contact(channel, value)
        with kit.uow() as uow:
            store = kit.stores(uow)
            kit.check_starts(store, ip, (IDENT,))
            kit.new_transaction(store, IDENT, browser_id, ip, state=TxState.DONE, channel=channel.value)
            found = uow.accounts.with_verified_contact(phone=contact if channel is Channel.SMS else "",
                                                       email=contact if channel is Channel.MAIL else "")
            destination = self._deliverable(channel, contact) if found else None
            text = messages.identifiers(kit.product, [(a.identifier, a.profile.label) for a in found])
            sent = kit.queue(uow, store, channel, destination, text, purpose=IDENT, limit_key_value=contact,
                             subject=messages.identifiers_subject(kit.product))
            kit.audit(uow, events.RECOVERY_IDENTIFIER, found[0].id if found else None, "",
                      {"channel": channel.value, "sent": sent}, ip)
            uow.commit()
        kit.wake()

    def _contact(self, channel: Channel, value: str) -> str:
        """The phone or address typed, checked; a problem is written next to its field (empty says empty)."""
        field = CONTACT_FIELDS[channel]
        if not value.strip():
            raise FormProblem([], {field: _(PHONE_MISSING if channel is Channel.SMS else EMAIL_MISSING)})
        if channel is Channel.SMS:
            phone = parse_phone(value, self.kit.limits.default_region)
            if phone is None:
                raise FormProblem([], {field: _(PHONE_PROBLEM)})
            return phone
        email = value.strip()
        if email_problem(email):
            raise FormProblem([], {field: email_problem(email)})
        return email.lower()

    def _deliverable(self, channel: Channel, contact: str) -> str | None:
        if channel is Channel.SMS:
            return sms_destination(contact, self.kit.limits.allowed_regions)
        return contact

    # --- forgotten password -----------------------------------------------------------------------

    def start_reset(self, identifier: str, channel: Channel, *, ip: str, browser_id: str,
                    request_id: str = "") -> str:
        """Send a code to the account's verified phone or address; returns the browser's token."""
        kit = self.kit
        ident = normalise_login_input(identifier)
        if not ident:
            raise FormProblem([], {"identifiant": _(IDENTIFIER_MISSING)})
        with kit.uow() as uow:
            store = kit.stores(uow)
            kit.check_starts(store, ip, (RESET,))
            account = uow.accounts.by_identifier(ident)
            usable = account if account is not None and account.state is AccountState.ACTIVE else None
            destination = self._account_contact(usable, channel)
            token, tx = kit.new_transaction(
                store, RESET, browser_id, ip, account_id=usable.id if usable else None, channel=channel.value,
                destination=destination or "", request_id=self._pending(uow, request_id, browser_id),
                data={"identifier": ident, "pw": _password_mark(usable)})
            if usable is not None:
                store.cancel_account_transactions(usable.id, (RESET,), kit.clock.now(), except_id=tx.id)
            ttl = kit.limits.code_ttl if channel is Channel.SMS else kit.limits.email_code_ttl
            text = messages.reset_code
            sent = kit.send_code(uow, store, tx, purpose=RESET, channel=channel, destination=destination,
                                 limit_key_value=ident, ttl=ttl, text_for=lambda c, m: text(kit.product, c, m))
            kit.audit(uow, events.RECOVERY_STARTED, usable.id if usable else None, ident,
                      {"channel": channel.value, "sent": sent}, ip)
            uow.commit()
        kit.wake()
        return token

    def _account_contact(self, account: Account | None, channel: Channel) -> str | None:
        if account is None:
            return None
        if channel is Channel.SMS and account.phone_verified and account.phone:
            return sms_destination(account.phone, self.kit.limits.allowed_regions)
        if channel is Channel.MAIL and account.email_verified and account.email:
            return account.email
        return None

    def _pending(self, uow: UnitOfWork, request_id: str, browser_id: str) -> str:
        if not request_id or len(request_id) > 64:
            return ""
        request = uow.authn_requests.get(request_id, browser_hash(browser_id))
        return request.id if request is not None and request.completed_at is None else ""

    def view(self, token: str | None, browser_id: str) -> ResetView:
        """The state of a reset, for its pages."""
        kit = self.kit
        with kit.uow() as uow:
            store = kit.stores(uow)
            tx = kit.load(store, token, browser_id, RESET)
            channel = Channel(tx.channel)
            problem = tx.state is TxState.CODE_SENT and kit.delivery_problem(store, tx, channel)
            account = uow.accounts.get(tx.account_id) if tx.state is TxState.CODE_VERIFIED and tx.account_id else None
        proved = tx.state in (TxState.CODE_VERIFIED, TxState.DONE)  # the code proved it
        return ResetView(state=tx.state, channel=tx.channel, resend_wait=kit.resend_wait(tx),
                         delivery_problem=problem, request_id=tx.request_id,
                         identifier=tx.data.get("identifier", "") if proved else "",
                         avoid=self._accounts.password_context(account) if account else NO_CONTEXT)

    def resend(self, token: str | None, browser_id: str) -> None:
        """A new code (the old one dies), within the limits."""
        kit = self.kit
        with kit.uow() as uow:
            store = kit.stores(uow)
            tx = kit.load(store, token, browser_id, RESET)
            if tx.state is not TxState.CODE_SENT:
                raise StepNotAllowed()
            channel = Channel(tx.channel)
            ttl = kit.limits.code_ttl if channel is Channel.SMS else kit.limits.email_code_ttl
            text = messages.reset_code
            kit.send_code(uow, store, tx, purpose=RESET, channel=channel, destination=tx.destination or None,
                          limit_key_value=tx.data.get("identifier", ""), ttl=ttl,
                          text_for=lambda c, m: text(kit.product, c, m))
            uow.commit()
        kit.wake()

    def verify(self, token: str | None, browser_id: str, code: str) -> None:
        """Check the code (5 attempts, single use, bound to this reset)."""
        kit = self.kit
        with kit.uow() as uow:
            store = kit.stores(uow)
            tx = kit.load(store, token, browser_id, RESET)
            if tx.state is not TxState.CODE_SENT:
                raise StepNotAllowed()
            kit.check_code(uow, store, tx, code)
            if tx.account_id is None:
                raise StepNotAllowed()
            store.move(tx.id, [TxState.CODE_SENT], TxState.CODE_VERIFIED, kit.clock.now())
            kit.audit(uow, events.RECOVERY_CODE_VERIFIED, tx.account_id, "", {})
            uow.commit()

    def set_password(self, token: str | None, browser_id: str, password: str, confirmation: str, *,
                     ip: str) -> str:
        """Set the new password, end every session, notify on the other channel; returns the identifier."""
        kit = self.kit
        with kit.uow() as uow:
            store = kit.stores(uow)
            tx = kit.load(store, token, browser_id, RESET)
            if tx.state is not TxState.CODE_VERIFIED or tx.account_id is None:
                raise StepNotAllowed()
            account = uow.accounts.get(tx.account_id)
        if account is None or tx.data.get("pw") != _password_mark(account):
            raise StepNotAllowed()  # the password changed since the request: the reset is void (A15)
        if password != confirmation:
            raise FormProblem([_(MSG_MISMATCH)])
        try:
            self._accounts.check_new_password(password, self._accounts.password_context(account))
        except PasswordRejected as exc:
            raise FormProblem(exc.reasons) from None
        hashed = self._hasher.hash(password)
        with kit.uow() as uow:
            store = kit.stores(uow)
            now = kit.clock.now()
            if not store.move(tx.id, [TxState.CODE_VERIFIED], TxState.DONE, now):
                raise StepNotAllowed()
            uow.accounts.set_password_hash(account.id, hashed, now, changed=True)
            remember_language(uow, account)
            ended = uow.sessions.end_all(account.id, now)
            store.cancel_account_transactions(account.id, (RESET,), now)
            throttle.record_success(throttle.keys_for(account.identifier, ""), uow.throttle)
            notify_password_change(kit, uow, account, used=Channel(tx.channel))
            kit.audit(uow, events.RECOVERY_COMPLETED, account.id, account.identifier,
                      {"sessions_ended": len(ended)}, ip)
            uow.commit()
        kit.logout_hooks.run(ended)  # the same path as a logout: single logout, tokens revoked
        kit.wake()
        return account.identifier


def _password_mark(account: Account | None) -> str:
    """A fingerprint of the current password hash: any password change voids a pending reset."""
    if account is None or not account.password_hash:
        return ""
    return hashlib.sha256(account.password_hash.encode()).hexdigest()[:16]


def notify_password_change(kit: FlowKit, uow: UnitOfWork, account: Account, used: Channel | None) -> None:
    """A notice on the other channel than the one just used (or the only one there is) (W12, A15)."""
    store = kit.stores(uow)
    text = messages.password_changed(kit.product, account.identifier, kit.clock.now())
    phone = sms_destination(account.phone, kit.limits.allowed_regions) if account.phone_verified else None
    email = account.email if account.email_verified and account.email else None
    targets: list[tuple[Channel, str]] = []
    if email and used is not Channel.MAIL:
        targets.append((Channel.MAIL, email))
    if phone and used is not Channel.SMS:
        targets.append((Channel.SMS, phone))
    if not targets:
        targets = [(c, d) for c, d in ((Channel.SMS, phone), (Channel.MAIL, email)) if d]
    for channel, destination in targets[:1]:
        kit.queue(uow, store, channel, destination, text, purpose="notice", account_id=account.id,
                  subject=messages.password_changed_subject(kit.product), counted=False)


def notify_lockout(kit: FlowKit, account: Account) -> None:
    """Tell the holder that failed logins locked the account (A22), e-mail first, else SMS.

    Called once per lockout window (when a failure starts a lock); the per-recipient daily limit applies,
    so an attacker hammering an account cannot turn it into a flood of messages."""
    phone = sms_destination(account.phone, kit.limits.allowed_regions) if account.phone_verified else None
    email = account.email if account.email_verified and account.email else None
    channel, destination = (Channel.MAIL, email) if email else (Channel.SMS, phone)
    if not destination:
        return
    # Failed logins are not necessarily the holder's: the notice is in the language the holder reads.
    with in_account_language(kit.catalogues, account):
        text = messages.login_locked(kit.product, account.identifier, kit.clock.now())
        subject = messages.login_locked_subject(kit.product)
    with kit.uow() as uow:
        queued = kit.queue(uow, kit.stores(uow), channel, destination, text, purpose="lock_notice",
                           account_id=account.id, subject=subject)
        uow.commit()  # the message, or the audit line of its refusal
    if queued:
        kit.wake()
