"""CAS fixtures: the protocol enabled, registered services, the app on a real socket (for python-cas, which
speaks ``requests``), TLS test servers with a self-signed certificate (proxy callbacks, single logout), register
records behind accounts, and a browser-like login through the Flask test client.

Every CAS test runs twice: with the tickets in the database, and in Redis (``IDP_TEST_REDIS_URL``; that run is
skipped only when it is unset). The Redis store of a test gets its own key prefix, removed afterwards.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import os
import re
import secrets
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from conftest import profile_of
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from idp.cas.registry import registration_for
from idp.core.accounts.model import Account, Profile
from idp.settings import ProtocolSettings, Settings
from idp.storage.cas_store import CasServiceRecord, SqlCasStore
from idp.storage.cas_tickets import CasTicketStore
from idp.storage.models import RepresentativeRow, SchoolRow, StudentLinkRow, StudentRow
from idp.wiring import Services

SERVICE = "https://ent.example.fr/app/"
PASSWORD = "Velo-Rouge-Garonne-42"  # the password account_factory gives by default (tests/conftest.py)


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    return dataclasses.replace(base_settings, protocols=ProtocolSettings(enabled=("cas",)))


@pytest.fixture(autouse=True)
def _stop_slo(services: Services) -> Iterator[None]:
    yield
    services.extras["cas_slo"].shutdown()


REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "")
NO_REDIS = pytest.mark.skipif(not REDIS_URL, reason="set IDP_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15)")


@pytest.fixture(params=["database", pytest.param("redis", marks=NO_REDIS)])
def ticket_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def redis_tickets() -> Iterator[Callable[[], CasTicketStore]]:
    """Redis ticket stores with a key prefix of their own (parallel test runs share the Redis database)."""
    import redis

    from idp.storage.cas_redis import RedisCasTickets

    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"idp:test:{secrets.token_hex(8)}:cas:"

    def _make() -> CasTicketStore:
        return RedisCasTickets(client, attributes_ttl=dt.timedelta(hours=10), prefix=prefix)

    yield _make
    for key in client.scan_iter(match=prefix + "*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture(autouse=True)
def _ticket_store(services: Services, ticket_backend: str, request: pytest.FixtureRequest) -> None:
    """The CAS server of the test keeps its tickets in the database or in Redis."""
    if ticket_backend == "redis":
        services.extras["cas"].tickets = request.getfixturevalue("redis_tickets")()


# --- registry ------------------------------------------------------------------------------------


@pytest.fixture
def register(services: Services) -> Callable[..., CasServiceRecord]:
    """Register a CAS service exactly as ``idp cas add`` does."""

    def _register(pattern: str = SERVICE, service_id: str = "ent", *, match: str = "prefix", name: str = "",
                  **options: Any) -> CasServiceRecord:
        scheme, host, stored = registration_for(pattern, match, allow_http=services.settings.server.development)
        record = CasServiceRecord(service_id=service_id, name=name or service_id.upper(), match=match,
                                  pattern=stored, scheme=scheme, host=host, **options)
        with services.uow() as uow:
            SqlCasStore(uow.session).add_service(record, "", services.clock.now())
            uow.commit()
        return record

    return _register


# --- browser side --------------------------------------------------------------------------------


class CasBrowser:
    """A browser (the Flask test client) logging in to CAS services."""

    def __init__(self, client: FlaskClient, login: Any) -> None:
        self.client = client
        self.login = login

    def first_login(self, identifier: str, service: str = SERVICE, extra: str = "",
                    password: str = PASSWORD) -> str:
        """``/cas/login`` without a session: the common login form, then the ticket redirect; returns it."""
        form_url = self.login.start(f"/cas/login?service={quote(service)}{extra}")
        profile = profile_of(self.client.application.extensions["idp"], identifier)
        done = self.login.submit(f"{form_url}?profil={profile}", identifier, password)
        assert done.status_code == 303, done.status_code
        assert done.headers["Location"].startswith("/cas/resume/")
        return ticket_from(self.client.get(done.headers["Location"]))

    def sso(self, service: str = SERVICE, extra: str = "") -> Any:
        """``/cas/login`` with the SSO cookie already set: the answer (302 with a ticket, normally)."""
        return self.client.get(f"/cas/login?service={quote(service)}{extra}")


def quote(value: str) -> str:
    from urllib.parse import quote as _quote

    return _quote(value, safe="")


def csrf_of(response: Any) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))
    assert match, "no CSRF token in the page"
    return match.group(1)


def ticket_from(response: Any) -> str:
    assert response.status_code == 302, (response.status_code, response.get_data(as_text=True)[:300])
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert len(query["ticket"]) == 1
    return query["ticket"][0]


@pytest.fixture
def browser(client: FlaskClient, login: Any) -> CasBrowser:
    return CasBrowser(client, login)


# --- register records ----------------------------------------------------------------------------


@dataclasses.dataclass
class People:
    pupil: Account
    parent: Account


@pytest.fixture
def people(services: Services, account_factory: Any) -> People:
    """A pupil (collège 0690026D, born 2012-03-04, 69003) and her parent, linked through the register."""
    now = services.clock.now()
    pupil = account_factory("Léa", "Martin", profile=Profile.STUDENT)
    parent = account_factory("Marie", "Martin")
    with services.uow() as uow:
        s = uow.session
        s.add(SchoolRow(uai="0690026D", name="Collège Jean Moulin", kind="college", academie="Lyon", updated_at=now))
        s.flush()
        student = StudentRow(ine="123456789AB", uai="0690026D", external_id="E1", family_name="Martin",
                             given_names="Léa", birth_date=dt.date(2012, 3, 4), class_code="5A", level="5EME",
                             postal_code="69003", fingerprint="x", updated_at=now)
        rep = RepresentativeRow(uai="0690026D", external_id="R1", family_name="Martin", given_names="Marie",
                                postal_code="69003", fingerprint="x", updated_at=now)
        s.add_all([student, rep])
        s.flush()
        s.add(StudentLinkRow(student_id=student.id, representative_id=rep.id, relationship="mere",
                             fingerprint="x", updated_at=now))
        s.flush()
        uow.accounts.link_register(pupil.id, student_ines=["123456789AB"])
        uow.accounts.link_register(parent.id, representatives=[("0690026D", "R1")])
        uow.commit()
    return People(pupil=pupil, parent=parent)


# --- the app on a socket -------------------------------------------------------------------------


@pytest.fixture
def live(app: Flask) -> Iterator[str]:
    """The application served by werkzeug on 127.0.0.1 (threaded); yields the CAS base URL ``…/cas/``."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/cas/"
    server.shutdown()
    thread.join(5)


# --- TLS test servers ----------------------------------------------------------------------------


@dataclasses.dataclass
class Certificate:
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1 (also its own CA, for ``ca_file``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return Certificate(cert=folder / "cert.pem", key=folder / "key.pem")


@dataclasses.dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]


class TestService:
    """An https service on 127.0.0.1: records what it receives, answers ``status`` (or hangs)."""

    __test__ = False

    def __init__(self, certificate: Certificate, *, status: int = 200, hang: bool = False) -> None:
        self.status = status
        self.hang = hang
        self.received: list[Received] = []
        self.event = threading.Event()
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                parts = urlsplit(self.path)
                outer.received.append(Received(self.command, parts.path, parse_qs(parts.query), parse_qs(body)))
                outer.event.set()
                if outer.hang:
                    outer.release.wait(10)
                self.send_response(outer.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate.cert, certificate.key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.server.server_port}"

    def wait(self, timeout: float = 5.0) -> bool:
        return self.event.wait(timeout)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tls_service(certificate: Certificate) -> Iterator[Callable[..., TestService]]:
    started: list[TestService] = []

    def _start(**options: Any) -> TestService:
        started.append(TestService(certificate, **options))
        return started[-1]

    yield _start
    for service in started:
        service.close()


CAS_NS = {"cas": "http://www.yale.edu/tp/cas"}


def fetch(url: str, params: dict[str, str] | None = None) -> requests.Response:
    """A GET from a service's back end to the CAS server (what a CAS client library does)."""
    return requests.get(url, params=params, timeout=20)
TICKET_FORMAT = re.compile(r"^(ST|PT|PGT|PGTIOU)-[A-Za-z0-9-]+$")
