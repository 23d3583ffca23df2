"""``SmtpMailer``: e-mail through an SMTP server, with implicit TLS or STARTTLS, authentication and timeouts."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

from idp.core.delivery import DeliveryFailed, MailMessage

SECURITY = ("starttls", "tls", "none")


class SmtpMailer:
    """``Mailer`` on ``smtplib``: a connection per message (messages are rare and sent off the request path)."""

    def __init__(self, host: str, port: int, *, security: str = "starttls", username: str = "", password: str = "",
                 from_address: str, timeout: float = 10.0, ssl_context: ssl.SSLContext | None = None) -> None:
        if security not in SECURITY:
            raise ValueError(f"security must be one of {SECURITY}")
        self.host, self.port, self.security = host, port, security
        self.username, self._password = username, password
        self.from_address, self.timeout = from_address, timeout
        self._context = ssl_context or ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._context)
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.security == "starttls":
            smtp.starttls(context=self._context)
        return smtp

    def send(self, message: MailMessage) -> None:
        """Send one message; any SMTP, TLS or network failure becomes ``DeliveryFailed``."""
        mail = EmailMessage()
        mail["From"] = self.from_address
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail["Message-ID"] = make_msgid(domain=self.from_address.rpartition("@")[2].strip(">") or None)
        mail.set_content(message.body)
        try:
            with self._connect() as smtp:
                if self.username:
                    smtp.login(self.username, self._password)
                smtp.send_message(mail)
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise DeliveryFailed(f"smtp: {type(exc).__name__}") from exc
