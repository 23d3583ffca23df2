"""Delivery ports: how the core hands a message to the outside (SMTP, an SMS gateway, the dev outbox)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class MailMessage:
    """A short plain-text French e-mail."""

    to: str
    subject: str
    body: str


@dataclass(frozen=True)
class SmsMessage:
    """A short plain-text SMS (what the delivery queue holds for the SMS channel)."""

    to: str
    text: str


class DeliveryFailed(Exception):
    """The message could not be handed over (gateway down, refused, timed out); ``reason`` has no secret."""

    def __init__(self, reason: str, *, transient: bool = True) -> None:
        self.reason = reason
        #: Worth trying again later (timeouts, 5xx, 429); False when the gateway refused the message itself.
        self.transient = transient
        super().__init__(reason)


class Mailer(Protocol):
    """Sends one e-mail or raises ``DeliveryFailed``."""

    def send(self, message: MailMessage) -> None: ...


class SmsSender(Protocol):
    """Sends one SMS to an E.164 number or raises ``DeliveryFailed``; ``key`` names the message for the
    gateway's deduplication (the same key sent twice, after a timeout, is delivered once)."""

    def send(self, to: str, text: str, *, key: str = "") -> None: ...
