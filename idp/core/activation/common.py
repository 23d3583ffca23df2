"""What every code-based flow shares: transactions bound to a browser, codes, limits, the delivery queue.

A transaction is created by the first step and moved forward by conditional updates only, so no step can be
skipped or replayed (SECURITY A09). Codes are counted, expired and consumed in the database, never in the
worker's memory (A04, R07). Messages are queued in the same transaction and sent after the answer (A01).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from typing import Any

from idp import metrics
from idp.core.activation import codes, events, messages
from idp.core.activation.errors import (
    TOO_MANY_STARTS,
    CodeExpired,
    CodeRejected,
    FlowExpired,
    SendLimited,
    TooManyAttempts,
)
from idp.core.activation.model import Channel, QueuedMessage, Transaction, TxState
from idp.core.activation.ports import ActivationStore, StoreFactory, Waker
from idp.core.audit import mask_identifier
from idp.core.authn.flow import browser_hash
from idp.core.authn.model import AuthnRequest, SsoSession
from idp.core.authn.sessions import LogoutHooks
from idp.core.clock import Clock
from idp.core.i18n import N_, Catalogues, SourceOnly, _, ngettext
from idp.core.ports import AuditEvent, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger("idp.activation")

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
#: Codes « Mon compte » sends to a new number or address the account holder typed. They have their own hourly
#: SMS budget and their own count per destination, so changes made from an account (which chooses where the
#: code goes) never starve the codes that let families in: activation, recovery, FranceConnect confirmation,
#: lockout notices (issue 21, SECURITY A03).
ACCOUNT_PURPOSES = ("change_phone", "change_email")
CODE_MISSING = N_("Indiquez le code reçu : 6 caractères, lettres et chiffres.")


@dataclass(frozen=True)
class Limits:
    """Lifetimes and limits of codes and sends (SECURITY defaults table; settings ``[activation]``)."""

    code_ttl: dt.timedelta = dt.timedelta(minutes=30)
    email_code_ttl: dt.timedelta = dt.timedelta(minutes=15)
    code_attempts: int = 5
    sends_per_transaction: int = 3
    resend_cooldown: dt.timedelta = dt.timedelta(seconds=60)
    per_recipient_per_day: int = 5
    starts_per_ip_per_hour: int = 10
    sms_hourly_budget: int = 500
    account_sms_hourly_budget: int = 100
    contact_codes_per_account_per_day: int = 5
    transaction_ttl: dt.timedelta = dt.timedelta(minutes=60)
    birthdate_failures: int = 3
    provisional_valid: dt.timedelta = dt.timedelta(days=92)
    email_link_ttl: dt.timedelta = dt.timedelta(hours=24)
    allowed_regions: tuple[str, ...] = ("FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF")
    default_region: str = "FR"


@dataclass(frozen=True)
class Completion:
    """A flow ended with the person logged in (``token`` is the new SSO cookie; None on a repeated POST)."""

    identifier: str
    token: str | None = None
    session: SsoSession | None = None
    request: AuthnRequest | None = None


@dataclass
class FlowKit:
    """Shared machinery, built once per process by the wiring."""

    uow: UnitOfWorkFactory
    stores: StoreFactory
    clock: Clock
    limits: Limits
    secret: str
    product: str
    waker: Waker | None = None
    #: Run for every session a flow ends (password reset or change, "end this session"), after the commit.
    logout_hooks: LogoutHooks = field(default_factory=LogoutHooks)
    #: Every language's texts, for messages written in the account's language rather than the page's.
    catalogues: Catalogues = field(default_factory=SourceOnly)

    # --- keys -------------------------------------------------------------------------------------

    def ip_key(self, ip: str) -> str:
        """Limits are kept per IP without storing the IP itself."""
        return codes.keyed_hash(self.secret, "ip", ip)

    def recipient_key(self, channel: str, destination: str) -> str:
        """Limits per phone number or address, keyed by an HMAC of it."""
        return codes.keyed_hash(self.secret, "to", channel, destination.lower())

    # --- transactions -----------------------------------------------------------------------------

    def new_transaction(self, store: ActivationStore, kind: str, browser_id: str, ip: str, *,
                        state: TxState = TxState.CODE_SENT, **values: Any) -> tuple[str, Transaction]:
        """Create a transaction; returns the browser's token and the stored value."""
        now = self.clock.now()
        token = codes.new_token()
        tx = Transaction(id=codes.token_id(token), kind=kind, state=state, browser_hash=browser_hash(browser_id),
                         ip_key=self.ip_key(ip), created_at=now, expires_at=now + self.limits.transaction_ttl,
                         **values)
        store.add_transaction(tx)
        return token, tx

    def load(self, store: ActivationStore, token: str | None, browser_id: str, kind: str) -> Transaction:
        """The live transaction behind a token, in this browser, of this kind; else ``FlowExpired``."""
        if not token or len(token) > 100:
            raise FlowExpired()
        tx = store.get_transaction(codes.token_id(token))
        if tx is None or tx.kind != kind or not hmac.compare_digest(tx.browser_hash, browser_hash(browser_id)):
            raise FlowExpired()
        if self.clock.now() >= tx.expires_at:
            raise FlowExpired()
        return tx

    def check_starts(self, store: ActivationStore, ip: str, kinds: tuple[str, ...]) -> None:
        """At most N new transactions per IP and hour (A03, A18); the answer does not depend on the register."""
        if self.starts_exceeded(store, ip, kinds):
            raise SendLimited(3600, _(TOO_MANY_STARTS))

    def starts_exceeded(self, store: ActivationStore, ip: str, kinds: tuple[str, ...]) -> bool:
        """Whether this address has started its N transactions of these kinds in the last hour."""
        since = self.clock.now() - HOUR
        return store.count_starts(self.ip_key(ip), kinds, since) >= self.limits.starts_per_ip_per_hour

    # --- codes ------------------------------------------------------------------------------------

    def send_code(self, uow: UnitOfWork, store: ActivationStore, tx: Transaction, *, purpose: str,
                  channel: Channel, destination: str | None, limit_key_value: str, text_for: Any,
                  ttl: dt.timedelta | None = None) -> bool:
        """Issue a new code for the transaction (the previous one dies) and queue it when there is somewhere
        to send it. The same queries run whether or not there is: the answer's timing tells nothing (A01).
        Returns whether a message was queued."""
        now = self.clock.now()
        ttl = ttl or self.limits.code_ttl
        if not store.count_send(tx.id, self.limits.sends_per_transaction, now - self.limits.resend_cooldown, now):
            raise self._send_refusal(store, tx)
        code = codes.new_code()
        store.add_code(tx.id, purpose, codes.code_hash(self.secret, purpose, tx.id, code), now, now + ttl)
        store.cancel_messages(tx.id, now)
        minutes = int(ttl.total_seconds() // 60)
        subject = messages.code_subject(self.product) if channel is Channel.MAIL else ""
        return self.queue(uow, store, channel, destination, text_for(code, minutes), purpose=purpose,
                          transaction_id=tx.id, limit_key_value=limit_key_value, account_id=tx.account_id,
                          subject=subject)

    def queue(self, uow: UnitOfWork, store: ActivationStore, channel: Channel, destination: str | None, text: str,
              *, purpose: str, transaction_id: str = "", limit_key_value: str = "", subject: str = "",
              account_id: int | None = None, counted: bool = True) -> bool:
        """Queue a message within the limits per recipient and the SMS budget of its kind (A03)."""
        now = self.clock.now()
        key = self.recipient_key(channel.value, destination or limit_key_value)
        if counted:
            limit = self.limit_reached(store, channel, key, purpose)
            if destination and limit:
                event = events.SMS_BUDGET_EXCEEDED if limit == "budget" else events.SMS_LIMITED
                self.refused(uow, event, account_id, {"channel": channel.value, "purpose": purpose})
                return False
        if not destination:
            return False
        store.enqueue(QueuedMessage(channel=channel.value, to=destination, text=text, recipient_key=key,
                                    subject=subject, purpose=purpose, transaction_id=transaction_id), now)
        return True

    def limit_reached(self, store: ActivationStore, channel: Channel, key: str, purpose: str) -> str:
        """The send limit one more message would break: ``recipient`` (this destination's messages of the same
        kind in 24 h), ``budget`` (the hourly SMS budget of its kind: account changes, or the codes that let
        families in), or ``""``. Both counts always run, so the time taken tells nothing (A01)."""
        now = self.clock.now()
        store.serialise(key)
        only, other_than, budget = self._kind_of(purpose)
        recent = store.count_messages(channel.value, now - DAY, key, purposes=only, other_than=other_than)
        used = store.count_messages(channel.value, now - HOUR, purposes=only, other_than=other_than) \
            if channel is Channel.SMS else 0
        if recent >= self.limits.per_recipient_per_day:
            return "recipient"
        return "budget" if channel is Channel.SMS and used >= budget else ""

    def _kind_of(self, purpose: str) -> tuple[tuple[str, ...], tuple[str, ...], int]:
        """Which messages a message is counted with (``purposes``, ``other_than``: account changes, or all the
        others) and their hourly SMS budget."""
        if purpose in ACCOUNT_PURPOSES:
            return ACCOUNT_PURPOSES, (), self.limits.account_sms_hourly_budget
        return (), ACCOUNT_PURPOSES, self.limits.sms_hourly_budget

    def refused(self, uow: UnitOfWork, event: str, account_id: int | None, details: dict[str, Any],
                ip: str = "", subject: str = "") -> None:
        """Every refused send is recorded here, and only here: audited and logged (the place a metrics counter
        of refusals, by event, belongs)."""
        log.warning("message refused: %s %s", event, details)
        metrics.SENDS_REFUSED.labels(event=event, reason=str(details.get("reason", ""))).inc()
        self.audit(uow, event, account_id, subject, details, ip)

    def _send_refusal(self, store: ActivationStore, tx: Transaction) -> SendLimited:
        current = store.get_transaction(tx.id) or tx
        if current.sends >= self.limits.sends_per_transaction:
            return SendLimited(3600, _("Vous avez demandé trop de codes pour cette démarche. "
                                       "Recommencez la démarche depuis le début plus tard."))
        last = current.last_send_at or self.clock.now()
        wait = max(1, int((last + self.limits.resend_cooldown - self.clock.now()).total_seconds()))
        return SendLimited(wait, ngettext("Vous pourrez demander un nouveau code dans %(n)s seconde.",
                                          "Vous pourrez demander un nouveau code dans %(n)s secondes.", wait))

    def check_code(self, uow: UnitOfWork, store: ActivationStore, tx: Transaction, typed: str) -> None:
        """Count the attempt, then compare; a right code is consumed once (A04, A05, A06, R04).

        The attempt is counted by a conditional update in the database, so 20 parallel wrong guesses count
        exactly five; the fifth wrong one cancels the transaction. Commits in every case.
        """
        if not typed.strip():
            raise CodeRejected(_(CODE_MISSING))  # nothing typed: no attempt counted
        now = self.clock.now()
        code = store.active_code(tx.id)
        if code is None:
            raise CodeExpired()
        attempts = store.count_attempt(code.id, self.limits.code_attempts)
        if attempts is None:
            self.cancel(uow, store, tx, "attempts")
            raise TooManyAttempts()
        if now >= code.expires_at:
            self.audit(uow, events.ACTIVATION_CODE_EXPIRED, tx.account_id, "", {"kind": tx.kind,
                                                                                 "about": records_of(tx)})
            uow.commit()
            raise CodeExpired()
        if not codes.same_code(self.secret, code.purpose, tx.id, typed, code.code_hash):
            self.audit(uow, events.ACTIVATION_CODE_FAILED, tx.account_id, "", {"kind": tx.kind, "attempt": attempts,
                                                                                "about": records_of(tx)})
            if attempts >= self.limits.code_attempts:
                self.cancel(uow, store, tx, "attempts")
                raise TooManyAttempts()
            uow.commit()
            left = self.limits.code_attempts - attempts
            raise CodeRejected(ngettext("Code incorrect. Il vous reste %(n)s essai.",
                                        "Code incorrect. Il vous reste %(n)s essais.", left))
        if not store.use_code(code.id, now):
            uow.commit()
            raise CodeExpired()

    def cancel(self, uow: UnitOfWork, store: ActivationStore, tx: Transaction, reason: str) -> None:
        """End the transaction for good and commit."""
        store.move(tx.id, [s for s in TxState if s not in (TxState.DONE, TxState.CANCELLED)], TxState.CANCELLED,
                   self.clock.now(), data={**tx.data, "cancel_reason": reason})
        store.cancel_messages(tx.id, self.clock.now())
        self.audit(uow, events.ACTIVATION_CANCELLED, tx.account_id, "", {"kind": tx.kind, "reason": reason,
                                                                          "about": records_of(tx)})
        uow.commit()

    def delivery_problem(self, store: ActivationStore, tx: Transaction, channel: Channel) -> bool:
        """Whether to say "Envoi … impossible pour le moment" (A20): this transaction's message failed, or the
        channel is failing for everyone (so the message itself does not tell whether a message was sent)."""
        if store.delivery_status(tx.id) == "failed":
            return True
        if channel is Channel.SMS and tx.last_send_at and self.budget_spent(store, tx.kind, tx.last_send_at):
            return True  # the last code was asked while the SMS budget of its kind was spent: it waits
        return store.channel_failing(channel.value, self.clock.now() - dt.timedelta(minutes=10))

    def budget_spent(self, store: ActivationStore, purpose: str, at: dt.datetime) -> bool:
        """Whether the hourly SMS budget of this kind of message was spent just before ``at`` (everyone's
        messages counted, so the answer is the same whether or not this one had somewhere to go, A01)."""
        only, other_than, budget = self._kind_of(purpose)
        return store.count_messages(Channel.SMS.value, at - HOUR, purposes=only, other_than=other_than,
                                    before=at) >= budget

    def delivery_delayed(self, store: ActivationStore, tx: Transaction) -> bool:
        """Whether to say "the SMS is delayed": this transaction's message failed once and waits for another
        attempt (the delivery worker retries it; a resend would only add a second code)."""
        return store.delivery_status(tx.id) == "retrying"

    def resend_wait(self, tx: Transaction) -> int:
        """Seconds before a resend is allowed (0 when allowed now)."""
        if tx.last_send_at is None:
            return 0
        left = (tx.last_send_at + self.limits.resend_cooldown - self.clock.now()).total_seconds()
        return max(0, int(left) + (1 if left > int(left) else 0))

    # --- audit and wake-up ------------------------------------------------------------------------

    def audit(self, uow: UnitOfWork, event: str, account_id: int | None, subject: str, details: dict[str, Any],
              ip: str = "") -> None:
        """Record an audit event (identifiers masked; never a code, a password or a full number)."""
        uow.audit.record(AuditEvent(event=event, at=self.clock.now(), account_id=account_id,
                                    subject=mask_identifier(subject) if subject else "", ip=ip, details=details))

    def wake(self) -> None:
        """Ask the delivery worker to send what was just queued (after the answer)."""
        if self.waker is not None:
            self.waker.kick()


def records_of(tx: Transaction) -> list[str]:
    """The register records a transaction is about (``rep:<id>``), for the staff console's family history."""
    return [f"rep:{r}" for r in tx.data.get("reps", [])]


def fingerprint(*parts: str) -> str:
    """A short stable hash for audit details (never the value itself)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:12]
