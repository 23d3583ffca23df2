"""Our metadata (S25) and the three-stage signing-key rollover (R11, R12)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from idp import create_app, keystore
from idp.saml.crypto import KeyCache, verify_element
from idp.settings import KeySettings
from idp.wiring import build_services
from tests.conftest import DEFAULT_PASSWORD
from tests.protocols.saml.conftest import OneLoginSp, login_through, make_keypair

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"


def _certs(document: bytes) -> list[str]:
    root = etree.fromstring(document)
    return [c.text for c in root.iter(f"{{{DS}}}X509Certificate")
            if c.getparent().getparent().getparent().tag == f"{{{MD}}}KeyDescriptor"]


def test_s25_metadata_is_signed_and_tells_the_truth(client: Any, idp_cert: bytes) -> None:
    response = client.get("/saml/metadata")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/samlmetadata+xml"
    root = etree.fromstring(response.data)
    assert root.get("entityID") == "https://idp.test/saml/metadata"
    assert root.get("validUntil") and root.get("cacheDuration") == "PT6H"
    verify_element(root, root, KeyCache().certificate(idp_cert))
    descriptor = root.find(f"{{{MD}}}IDPSSODescriptor")
    assert descriptor.get("WantAuthnRequestsSigned") == "true"  # every SP signs unless the operator exempts it
    sso = {e.get("Binding").rsplit(":", 1)[1]: e.get("Location") for e in descriptor.findall(f"{{{MD}}}SingleSignOnService")}
    assert sso == {"HTTP-Redirect": "https://idp.test/saml/sso/redirect", "HTTP-POST": "https://idp.test/saml/sso/post"}
    assert len(descriptor.findall(f"{{{MD}}}SingleLogoutService")) == 2
    assert len(_certs(response.data)) == 1


def test_metadata_verifies_under_xmlsec1(client: Any, idp_cert: bytes, tmp_path: Path) -> None:
    if shutil.which("xmlsec1") is None:
        pytest.skip("xmlsec1 not installed")
    from saml2.sigver import CryptoBackendXmlSec1

    document = client.get("/saml/metadata").data
    (tmp_path / "c.pem").write_bytes(idp_cert)
    root = etree.fromstring(document)
    assert CryptoBackendXmlSec1(shutil.which("xmlsec1")).validate_signature(
        document, str(tmp_path / "c.pem"), "pem", f"{MD}:EntityDescriptor", root.get("ID"))


def test_r11_rollover_publish_promote_retire(settings: Any, clean_db: Any, clock: Any, tmp_path: Path,
                                             runner: Any, monkeypatch: Any, account_factory: Any,
                                             sp_keypairs: Any) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    key, cert = make_keypair("idp.test")
    (keys / keystore.RSA_KEY_FILE).write_bytes(key)
    (keys / keystore.RSA_CERT_FILE).write_bytes(cert)
    services = build_services(dataclasses.replace(settings, keys=KeySettings(directory=str(keys))), clock=clock,
                              db=clean_db)
    app = create_app(services.settings, services)
    client = app.test_client()
    idp = services.frontends["saml"]
    sp = OneLoginSp("sp1", sp_keypairs["sp1"], cert)
    path = tmp_path / "sp1.xml"
    path.write_text(sp.metadata())
    from idp.saml import admin

    admin.register(services, str(path))
    monkeypatch.setenv("IDP_KEYS__DIRECTORY", str(keys))
    monkeypatch.setenv("IDP_KEYS__RSA_BITS", "2048")

    def metadata_certs() -> list[str]:
        idp.keys.reload()
        clock.advance(seconds=1)
        return _certs(client.get("/saml/metadata").data)

    assert len(metadata_certs()) == 1
    assert runner("keys", "rotate", "publish-next").exit_code == 0
    announced = metadata_certs()
    assert len(announced) == 2
    from tests.conftest import LoginHelper

    login = LoginHelper(client)
    account = account_factory()
    url, request_id = sp.login_url()
    old_signed = sp.consume(login_through(client, login, url, account.identifier, DEFAULT_PASSWORD), request_id)
    assert old_signed.is_authenticated(), old_signed.get_errors()  # the old key still signs
    assert runner("keys", "rotate", "promote").exit_code == 0
    promoted = metadata_certs()
    assert len(promoted) == 2 and promoted[0] == announced[1]
    new_cert = (keys / keystore.RSA_CERT_FILE).read_bytes()
    sp_new = OneLoginSp("sp1", sp_keypairs["sp1"], new_cert)
    url, request_id = sp_new.login_url()
    page = client.get("/saml/sso/redirect?" + url.split("?", 1)[1]).get_data(as_text=True)
    assert sp_new.consume(page, request_id).is_authenticated()
    assert runner("keys", "rotate", "retire").exit_code == 0
    assert metadata_certs() == [announced[1]]
    refused = runner("keys", "rotate", "promote")
    assert refused.exit_code == 1 and "aucune clé suivante" in refused.output


def test_r12_missing_or_weak_key_fails_closed(settings: Any, clean_db: Any, clock: Any, tmp_path: Path) -> None:
    from idp.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        build_services(dataclasses.replace(settings, keys=KeySettings(directory=str(tmp_path))), clock=clock,
                       db=clean_db)
    key, cert = make_keypair("weak", bits=1024)
    (tmp_path / keystore.RSA_KEY_FILE).write_bytes(key)
    (tmp_path / keystore.RSA_CERT_FILE).write_bytes(cert)
    with pytest.raises(ConfigurationError, match="trop faible"):
        build_services(dataclasses.replace(settings, keys=KeySettings(directory=str(tmp_path))), clock=clock,
                       db=clean_db)
