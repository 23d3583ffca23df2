"""Development backends: messages are "sent" into the ``outbox_messages`` table, where ``idp outbox``, the
development page /dev/outbox and the tests read them. Never for production: messages are kept in clear."""

from __future__ import annotations

from idp.core.clock import Clock
from idp.core.delivery import MailMessage
from idp.storage.activation_store import SqlOutbox


class OutboxMailer:
    """``Mailer`` writing to the outbox table."""

    def __init__(self, outbox: SqlOutbox, clock: Clock) -> None:
        self._outbox, self._clock = outbox, clock

    def send(self, message: MailMessage) -> None:
        self._outbox.add("mail", message.to, message.subject, message.body, self._clock.now())


class OutboxSmsSender:
    """``SmsSender`` writing to the outbox table."""

    def __init__(self, outbox: SqlOutbox, clock: Clock) -> None:
        self._outbox, self._clock = outbox, clock

    def send(self, to: str, text: str, *, key: str = "") -> None:
        self._outbox.add("sms", to, "", text, self._clock.now())
