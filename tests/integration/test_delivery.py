"""Delivery adapters against real local servers: SMTP (aiosmtpd: STARTTLS, implicit TLS, AUTH) and an HTTP
SMS gateway (http.server: 5xx then success, timeouts, final 4xx). No mocks of the network."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from idp.core.delivery import DeliveryFailed, MailMessage
from idp.delivery.http_sms import HttpSmsSender
from idp.delivery.smtp import SmtpMailer
from idp.storage.activation_store import PayloadCipher

USER, SECRET = "idp", "s3cret-smtp"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, envelope.content.decode("utf-8")))
        return "250 OK"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() and \
        auth_data.password == SECRET.encode()
    return AuthResult(success=ok, handled=False)


def _server_context(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls_files)
    return context


def _client_context(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_files[0]))


@pytest.fixture
def starttls_server(tls_files: tuple[Path, Path]) -> Iterator[tuple[Controller, Inbox]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port(), tls_context=_server_context(tls_files),
                            require_starttls=True, authenticator=_authenticator, auth_required=True,
                            auth_require_tls=True)
    controller.start()
    yield controller, inbox
    controller.stop()


def test_smtp_starttls_with_authentication(starttls_server: tuple[Controller, Inbox],
                                           tls_files: tuple[Path, Path]) -> None:
    controller, inbox = starttls_server
    mailer = SmtpMailer("127.0.0.1", controller.port, security="starttls", username=USER, password=SECRET,
                        from_address="Compte scolaire <ne-pas-repondre@idp.test>", timeout=5,
                        ssl_context=_client_context(tls_files))
    mailer.send(MailMessage(to="parent@example.fr", subject="Votre code", body="Votre code : K7XQ2M. Élève é"))
    assert len(inbox.messages) == 1
    sender, rcpts, content = inbox.messages[0]
    assert sender == "ne-pas-repondre@idp.test" and rcpts == ["parent@example.fr"]
    assert "Subject: Votre code" in content and "Message-ID:" in content


def test_smtp_wrong_password_or_untrusted_certificate_fails(starttls_server: tuple[Controller, Inbox],
                                                            tls_files: tuple[Path, Path]) -> None:
    controller, inbox = starttls_server
    wrong = SmtpMailer("127.0.0.1", controller.port, username=USER, password="nope",
                       from_address="a@idp.test", timeout=5, ssl_context=_client_context(tls_files))
    with pytest.raises(DeliveryFailed):
        wrong.send(MailMessage("p@example.fr", "s", "b"))
    untrusted = SmtpMailer("127.0.0.1", controller.port, username=USER, password=SECRET, from_address="a@idp.test",
                           timeout=5)
    with pytest.raises(DeliveryFailed):
        untrusted.send(MailMessage("p@example.fr", "s", "b"))
    assert inbox.messages == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_implicit_tls(tls_files: tuple[Path, Path]) -> None:
    inbox = Inbox()
    # The whole connection is TLS here; aiosmtpd only tracks STARTTLS, hence auth_require_tls=False.
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port(), ssl_context=_server_context(tls_files),
                            authenticator=_authenticator, auth_required=True, auth_require_tls=False)
    controller.start()
    try:
        mailer = SmtpMailer("127.0.0.1", controller.port, security="tls", username=USER, password=SECRET,
                            from_address="a@idp.test", timeout=5, ssl_context=_client_context(tls_files))
        mailer.send(MailMessage("p@example.fr", "Sujet", "Corps"))
    finally:
        controller.stop()
    assert len(inbox.messages) == 1


def test_smtp_refused_connection_and_silent_server_time_out() -> None:
    port = _free_port()
    with pytest.raises(DeliveryFailed):
        SmtpMailer("127.0.0.1", port, security="none", from_address="a@idp.test", timeout=1).send(
            MailMessage("p@example.fr", "s", "b"))
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        started = time.monotonic()
        with pytest.raises(DeliveryFailed):
            SmtpMailer("127.0.0.1", silent.getsockname()[1], security="none", from_address="a@idp.test",
                       timeout=0.5).send(MailMessage("p@example.fr", "s", "b"))
        assert time.monotonic() - started < 3


# --- HTTP SMS gateway ------------------------------------------------------------------------------------


class Gateway:
    """A local SMS gateway that answers from a script of (status, delay) and records what it got."""

    def __init__(self, script: list[tuple[int, float]]) -> None:
        self.script = script
        self.calls: list[tuple[dict[str, Any], str]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's hook
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                gateway.calls.append((body, self.headers.get("Authorization", "")))
                status, delay = gateway.script[min(len(gateway.calls), len(gateway.script)) - 1]
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # the client gave up (timeout test): nothing to report

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Gateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_http_sms_retries_5xx_with_backoff_then_succeeds() -> None:
    waits: list[float] = []
    with Gateway([(503, 0), (502, 0), (200, 0)]) as gateway:
        sender = HttpSmsSender(gateway.url, "tok-123", timeout=2, retries=2, backoff=0.25, sender="EDU",
                               sleep=waits.append)
        sender.send("+33612345678", "Votre code est K7XQ2M")
    assert len(gateway.calls) == 3 and waits == [0.25, 0.5]
    body, auth = gateway.calls[-1]
    assert body == {"to": "+33612345678", "text": "Votre code est K7XQ2M", "sender": "EDU"}
    assert auth == "Bearer tok-123"


def test_http_sms_bounded_retries_then_failure() -> None:
    with Gateway([(500, 0)]) as gateway:
        sender = HttpSmsSender(gateway.url, "t", timeout=2, retries=2, backoff=0, sleep=lambda s: None)
        with pytest.raises(DeliveryFailed) as err:
            sender.send("+33612345678", "x")
    assert len(gateway.calls) == 3 and "HTTP 500" in err.value.reason


def test_http_sms_timeout_is_retried_and_bounded() -> None:
    with Gateway([(200, 1.5), (200, 0)]) as gateway:
        sender = HttpSmsSender(gateway.url, "t", timeout=0.3, retries=1, backoff=0, sleep=lambda s: None)
        started = time.monotonic()
        sender.send("+33612345678", "x")
        assert time.monotonic() - started < 1.5
    with Gateway([(200, 1.0)]) as gateway:
        sender = HttpSmsSender(gateway.url, "t", timeout=0.3, retries=1, backoff=0, sleep=lambda s: None)
        with pytest.raises(DeliveryFailed) as err:
            sender.send("+33612345678", "x")
    assert "Timeout" in err.value.reason or "URLError" in err.value.reason


def test_http_sms_client_error_is_not_retried() -> None:
    with Gateway([(400, 0)]) as gateway:
        sender = HttpSmsSender(gateway.url, "t", retries=3, backoff=0, sleep=lambda s: None)
        with pytest.raises(DeliveryFailed):
            sender.send("+33612345678", "x")
    assert len(gateway.calls) == 1


def test_queued_payloads_are_encrypted() -> None:
    cipher = PayloadCipher("k" * 48)
    sealed = cipher.seal({"to": "+33612345678", "text": "code K7XQ2M"})
    assert "K7XQ2M" not in sealed and "33612345678" not in sealed
    assert cipher.open(sealed)["text"] == "code K7XQ2M"
    with pytest.raises(Exception):  # noqa: B017 - another key cannot read it
        PayloadCipher("other" * 10).open(sealed)
