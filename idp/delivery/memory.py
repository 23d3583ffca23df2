"""``MemoryMailer`` and ``MemorySmsSender``: keep messages in a list (unit tests); can be told to fail."""

from __future__ import annotations

import threading

from idp.core.delivery import DeliveryFailed, MailMessage, SmsMessage


class MemoryMailer:
    """``Mailer`` that records messages."""

    def __init__(self) -> None:
        self.sent: list[MailMessage] = []
        self.failing = False
        self._lock = threading.Lock()

    def send(self, message: MailMessage) -> None:
        if self.failing:
            raise DeliveryFailed("memory mailer told to fail")
        with self._lock:
            self.sent.append(message)


class MemorySmsSender:
    """``SmsSender`` that records messages."""

    def __init__(self) -> None:
        self.sent: list[SmsMessage] = []
        self.failing = False
        self._lock = threading.Lock()

    def send(self, to: str, text: str, *, key: str = "") -> None:
        if self.failing:
            raise DeliveryFailed("memory sms sender told to fail")
        with self._lock:
            self.sent.append(SmsMessage(to=to, text=text))
