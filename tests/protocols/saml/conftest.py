"""SAML fixtures: the protocol enabled, signing keys made here (never keys/), and service providers built
on OneLogin's python3-saml (independent of pysaml2) registered exactly as an operator would."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import profile_of
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask.testing import FlaskClient
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.settings import OneLogin_Saml2_Settings

from idp.core.clock import FrozenClock
from idp.keystore import RSA_CERT_FILE, RSA_KEY_FILE, self_signed_certificate
from idp.saml import admin
from idp.settings import KeySettings, ProtocolSettings, Settings
from idp.wiring import Services

IDP = "https://idp.test"
ENTITY_ID = f"{IDP}/saml/metadata"


def make_keypair(common_name: str, bits: int = 2048) -> tuple[bytes, bytes]:
    """A private key and self-signed certificate (PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return pem, self_signed_certificate(key, common_name)


@pytest.fixture(scope="session")
def saml_keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("saml-keys")
    key, cert = make_keypair("idp.test")
    (directory / RSA_KEY_FILE).write_bytes(key)
    (directory / RSA_CERT_FILE).write_bytes(cert)
    return directory


@pytest.fixture(scope="session")
def sp_keypairs() -> dict[str, tuple[bytes, bytes]]:
    return {name: make_keypair(name) for name in ("sp1", "sp2", "attacker")}


@pytest.fixture
def settings(base_settings: Settings, saml_keys_dir: Path) -> Settings:
    return dataclasses.replace(base_settings, protocols=ProtocolSettings(enabled=("saml",)),
                               keys=KeySettings(directory=str(saml_keys_dir)))


@pytest.fixture
def clock() -> FrozenClock:
    # python3-saml checks times against the real clock: start the frozen clock at the real time.
    return FrozenClock(dt.datetime.now(dt.UTC).replace(microsecond=0))


def _b64_body(pem: bytes) -> str:
    return "".join(pem.decode().strip().splitlines()[1:-1])


class OneLoginSp:
    """A service provider on python3-saml, driven with fake request dicts."""

    def __init__(self, name: str, keypair: tuple[bytes, bytes], idp_cert: bytes, *, sign_requests: bool = True,
                 encrypted: bool = False, want_response_signed: bool = False) -> None:
        self.name = name
        self.host = f"{name}.test"
        self.entity_id = f"https://{self.host}/metadata"
        self.acs = f"https://{self.host}/acs"
        self.sls = f"https://{self.host}/sls"
        self.key, self.cert = keypair
        self.data: dict[str, Any] = {
            "strict": True,
            "sp": {
                "entityId": self.entity_id,
                "assertionConsumerService": {"url": self.acs,
                                             "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"},
                "singleLogoutService": {"url": self.sls,
                                        "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"},
                "NameIDFormat": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
                "x509cert": _b64_body(self.cert),
                "privateKey": "".join(self.key.decode().strip().splitlines()[1:-1]),
            },
            "idp": {
                "entityId": ENTITY_ID,
                "singleSignOnService": {"url": f"{IDP}/saml/sso/redirect",
                                        "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"},
                "singleLogoutService": {"url": f"{IDP}/saml/slo/redirect",
                                        "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"},
                "x509cert": _b64_body(idp_cert),
            },
            "security": {
                "authnRequestsSigned": sign_requests, "logoutRequestSigned": True, "logoutResponseSigned": True,
                "wantAssertionsSigned": True, "wantMessagesSigned": want_response_signed,
                "wantAssertionsEncrypted": encrypted, "wantNameId": True, "rejectDeprecatedAlgorithm": True,
                "signatureAlgorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                "digestAlgorithm": "http://www.w3.org/2001/04/xmlenc#sha256",
                "requestedAuthnContext": False,
            },
        }
        self.settings = OneLogin_Saml2_Settings(self.data, sp_validation_only=True)

    def metadata(self) -> str:
        return self.settings.get_sp_metadata().decode() if isinstance(self.settings.get_sp_metadata(), bytes) \
            else self.settings.get_sp_metadata()

    def auth(self, path: str = "/", get: dict[str, str] | None = None, post: dict[str, str] | None = None,
             query_string: str = "") -> OneLogin_Saml2_Auth:
        request = {"https": "on", "http_host": self.host, "script_name": path,
                   "get_data": get or {}, "post_data": post or {}, "query_string": query_string}
        return OneLogin_Saml2_Auth(request, self.data)

    def login_url(self, **kwargs: Any) -> tuple[str, str]:
        """The redirect URL to our SSO endpoint and the request ID."""
        auth = self.auth()
        url = auth.login(**kwargs)
        return url, auth.get_last_request_id()

    def consume(self, page: str, request_id: str | None) -> OneLogin_Saml2_Auth:
        """Process the autopost page we rendered, as the SP's ACS would."""
        form = autopost(page)
        assert form["action"] == self.acs, form["action"]
        post = {"SAMLResponse": form["SAMLResponse"]}
        if "RelayState" in form:
            post["RelayState"] = form["RelayState"]
        auth = self.auth("/acs", post=post)
        auth.process_response(request_id=request_id)
        return auth


INPUT_RE = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
ACTION_RE = re.compile(r'<form method="post" action="([^"]+)"')


def autopost(page: str) -> dict[str, str]:
    """The fields of our autopost form (HTML-unescaped)."""
    action = ACTION_RE.search(page)
    assert action, page[:2000]
    fields = {name: html.unescape(value) for name, value in INPUT_RE.findall(page)}
    fields["action"] = html.unescape(action.group(1))
    return fields


def path_of(url: str) -> str:
    """Path and query of an absolute URL, for the Flask test client."""
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.fixture
def idp_cert(saml_keys_dir: Path) -> bytes:
    return (saml_keys_dir / RSA_CERT_FILE).read_bytes()


@pytest.fixture
def register_sp(services: Services, tmp_path: Path) -> Iterator[Any]:
    def _register(sp: OneLoginSp, **policy: Any) -> None:
        path = tmp_path / f"{sp.name}.xml"
        path.write_text(sp.metadata())
        admin.register(services, str(path), **policy)

    yield _register


@pytest.fixture
def sp1(sp_keypairs: dict[str, tuple[bytes, bytes]], idp_cert: bytes, register_sp: Any) -> OneLoginSp:
    sp = OneLoginSp("sp1", sp_keypairs["sp1"], idp_cert)
    register_sp(sp, name="ENT de test", home_url="https://sp1.test/")
    return sp


@pytest.fixture
def sp2(sp_keypairs: dict[str, tuple[bytes, bytes]], idp_cert: bytes, register_sp: Any) -> OneLoginSp:
    sp = OneLoginSp("sp2", sp_keypairs["sp2"], idp_cert, sign_requests=False)
    register_sp(sp, name="Téléservices", allow_unsigned_requests=True)  # a legacy SP the operator exempted
    return sp


def login_through(client: FlaskClient, login: Any, url: str, identifier: str, password: str) -> str:
    """Follow an SSO URL through the login page; return the autopost page."""
    first = client.get(path_of(url))
    assert first.status_code == 303, first.get_data(as_text=True)[:1500]
    form_url = first.headers["Location"]
    if "profil=" not in form_url:
        profile = profile_of(client.application.extensions["idp"], identifier)
        form_url += ("&" if "?" in form_url else "?") + f"profil={profile}"
    done = login.submit(form_url, identifier, password)
    assert done.status_code == 303, done.get_data(as_text=True)[:1500]
    page = client.get(done.headers["Location"])
    assert page.status_code == 200, page.get_data(as_text=True)[:1500]
    return page.get_data(as_text=True)
