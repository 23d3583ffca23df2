"""Mail and SMS adapters (SMTP, HTTP gateway, development outbox, memory) and the delivery worker."""

from __future__ import annotations

from typing import Any

from idp.core.clock import Clock
from idp.core.delivery import Mailer, SmsSender
from idp.errors import ConfigurationError
from idp.settings import Settings
from idp.storage.activation_store import SqlOutbox


def build_mailer(settings: Settings, sessionmaker: Any, clock: Clock) -> Mailer:
    """The ``Mailer`` chosen by ``[mail] backend``."""
    m = settings.mail
    if m.backend == "smtp":
        from idp.delivery.smtp import SmtpMailer

        return SmtpMailer(m.host, m.port, security=m.security, username=m.username, password=settings.smtp_password,
                          from_address=m.from_address, timeout=m.timeout_seconds)
    if m.backend == "outbox":
        from idp.delivery.outbox import OutboxMailer

        return OutboxMailer(SqlOutbox(sessionmaker), clock)
    if m.backend == "memory":
        from idp.delivery.memory import MemoryMailer

        return MemoryMailer()
    raise ConfigurationError(f"[mail] backend inconnu {m.backend!r} (smtp, outbox ou memory)")


def build_sms_sender(settings: Settings, sessionmaker: Any, clock: Clock) -> SmsSender:
    """The ``SmsSender`` chosen by ``[sms] backend``."""
    s = settings.sms
    if s.backend == "http":
        from idp.delivery.http_sms import HttpSmsSender

        if not s.url:
            raise ConfigurationError("[sms] url manquante pour le backend http")
        return HttpSmsSender(s.url, settings.sms_token, timeout=s.timeout_seconds, retries=s.retries,
                             backoff=s.backoff_ms / 1000, sender=s.sender)
    if s.backend == "outbox":
        from idp.delivery.outbox import OutboxSmsSender

        return OutboxSmsSender(SqlOutbox(sessionmaker), clock)
    if s.backend == "memory":
        from idp.delivery.memory import MemorySmsSender

        return MemorySmsSender()
    raise ConfigurationError(f"[sms] backend inconnu {s.backend!r} (http, outbox ou memory)")
