"""The in-process backend against pysaml2's ``xmlsec1`` program backend: signatures made by either verify
under the other, and the in-process backend works when installed on pysaml2's SecurityContext."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest
from saml2 import BINDING_HTTP_POST
from saml2.config import IdPConfig, SPConfig
from saml2.server import Server
from saml2.sigver import CryptoBackendXmlSec1, SignatureError, pre_signature_part

from idp.saml.crypto import XmlSecBackend
from tests.protocols.saml.conftest import ENTITY_ID, make_keypair

XMLSEC1 = shutil.which("xmlsec1")
pytestmark = pytest.mark.skipif(XMLSEC1 is None, reason="the xmlsec1 program (Debian xmlsec1) is not installed")
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"


@pytest.fixture(scope="module")
def keyfiles(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, bytes]:
    directory = tmp_path_factory.mktemp("xb")
    key, cert = make_keypair("cross")
    (directory / "k.pem").write_bytes(key)
    (directory / "c.pem").write_bytes(cert)
    return str(directory / "k.pem"), str(directory / "c.pem"), cert


def _assertion_template(cert: bytes) -> tuple[str, str]:
    from saml2 import saml

    body = "".join(cert.decode().strip().splitlines()[1:-1])
    assertion = saml.Assertion(id="_a1b2c3", version="2.0", issue_instant="2026-01-01T00:00:00Z",
                               issuer=saml.Issuer(text=ENTITY_ID))
    assertion.signature = pre_signature_part("_a1b2c3", body, sign_alg=RSA_SHA256, digest_alg=SHA256)
    return str(assertion), "_a1b2c3"


def test_in_process_signature_verifies_under_xmlsec1(keyfiles: tuple[str, str, bytes]) -> None:
    key_file, cert_file, cert = keyfiles
    template, node_id = _assertion_template(cert)
    signed = XmlSecBackend().sign_statement(template, ASSERTION, key_file, node_id)
    program = CryptoBackendXmlSec1(XMLSEC1)
    assert program.validate_signature(signed, cert_file, "pem", ASSERTION, node_id)


def test_xmlsec1_signature_verifies_in_process(keyfiles: tuple[str, str, bytes]) -> None:
    key_file, cert_file, cert = keyfiles
    template, node_id = _assertion_template(cert)
    signed = CryptoBackendXmlSec1(XMLSEC1).sign_statement(template, ASSERTION, key_file, node_id)
    assert XmlSecBackend().validate_signature(signed, cert_file, "pem", ASSERTION, node_id)


def test_tampered_document_fails_in_both(keyfiles: tuple[str, str, bytes]) -> None:
    key_file, cert_file, cert = keyfiles
    template, node_id = _assertion_template(cert)
    signed = XmlSecBackend().sign_statement(template, ASSERTION, key_file, node_id)
    tampered = signed.replace(ENTITY_ID, "https://evil.test/")
    with pytest.raises(SignatureError):
        XmlSecBackend().validate_signature(tampered, cert_file, "pem", ASSERTION, node_id)
    with pytest.raises(Exception):  # noqa: B017 - pysaml2 raises XmlsecError from the program
        assert not CryptoBackendXmlSec1(XMLSEC1).validate_signature(tampered, cert_file, "pem", ASSERTION, node_id)


def test_keyinfo_certificate_is_never_trusted(keyfiles: tuple[str, str, bytes]) -> None:
    key_file, cert_file, cert = keyfiles
    other_key, other_cert = make_keypair("other")
    template, node_id = _assertion_template(other_cert)
    path = Path(key_file).with_name("other.pem")
    path.write_bytes(other_key)
    signed = XmlSecBackend().sign_statement(template, ASSERTION, str(path), node_id)
    with pytest.raises(SignatureError):
        XmlSecBackend().validate_signature(signed, cert_file, "pem", ASSERTION, node_id)


def test_backend_installed_on_pysaml2_server_checks_signed_requests(keyfiles: tuple[str, str, bytes],
                                                                  tmp_path: Path) -> None:
    """pysaml2's own request parsing (its SecurityContext, temporary cert files) with our backend."""
    from saml2.client import Saml2Client
    from saml2.metadata import entity_descriptor

    idp_key, idp_cert, _ = keyfiles
    sp_key, sp_cert = make_keypair("pysp")
    (tmp_path / "sp.key").write_bytes(sp_key)
    (tmp_path / "sp.crt").write_bytes(sp_cert)
    sp_conf = SPConfig().load({
        "entityid": "https://pysp.test/metadata", "key_file": str(tmp_path / "sp.key"),
        "cert_file": str(tmp_path / "sp.crt"), "xmlsec_binary": XMLSEC1,
        "service": {"sp": {"endpoints": {"assertion_consumer_service": [("https://pysp.test/acs", BINDING_HTTP_POST)]},
                           "authn_requests_signed": True}},
    })
    sp_metadata = str(entity_descriptor(sp_conf))
    idp_conf = IdPConfig().load({
        "entityid": ENTITY_ID, "key_file": idp_key, "cert_file": idp_cert, "crypto_backend": "XMLSecurity",
        "metadata": {"inline": [sp_metadata]},
        "service": {"idp": {"endpoints": {"single_sign_on_service": [("https://idp.test/saml/sso/post",
                                                                      BINDING_HTTP_POST)]},
                            "want_authn_requests_signed": True}},
    })
    server = Server(config=idp_conf)
    server.sec.crypto = XmlSecBackend()
    client = Saml2Client(SPConfig().load({
        "entityid": "https://pysp.test/metadata", "key_file": str(tmp_path / "sp.key"),
        "cert_file": str(tmp_path / "sp.crt"), "xmlsec_binary": XMLSEC1,
        "metadata": {"inline": [str(entity_descriptor(idp_conf))]},
        "service": {"sp": {"endpoints": {"assertion_consumer_service": [("https://pysp.test/acs", BINDING_HTTP_POST)]},
                           "authn_requests_signed": True}},
    }))
    _, request = client.create_authn_request("https://idp.test/saml/sso/post", sign=True, sign_alg=RSA_SHA256,
                                             digest_alg=SHA256)
    parsed = server.parse_authn_request(base64.b64encode(str(request).encode()).decode(), BINDING_HTTP_POST)
    assert parsed.message.issuer.text == "https://pysp.test/metadata"
    tampered = str(request).replace("https://pysp.test/acs", "https://evil.test/acs")
    with pytest.raises(Exception):  # noqa: B017 - pysaml2 raises IncorrectlySigned
        server.parse_authn_request(base64.b64encode(tampered.encode()).decode(), BINDING_HTTP_POST)


def test_direct_signer_verifies_under_xmlsec1_and_in_process(keyfiles: tuple[str, str, bytes],
                                                            tmp_path: Path) -> None:
    """``sign_enveloped`` (lxml canonicalisation + OpenSSL through cryptography) makes the signature
    libxmlsec1 makes: it verifies under the ``xmlsec1`` program and in process, on an assertion nested in a
    response whose namespaces are declared above it, and any change breaks it."""
    import datetime as dt

    from lxml import etree

    from idp.keystore import RSA_CERT_FILE, RSA_KEY_FILE
    from idp.saml.keys import load_material
    from idp.saml.signing import sign_enveloped
    from idp.saml.xmlbuild import SAML, SAMLP

    key_file, cert_file, cert = keyfiles
    (tmp_path / RSA_KEY_FILE).write_bytes(Path(key_file).read_bytes())
    (tmp_path / RSA_CERT_FILE).write_bytes(cert)
    material = load_material(tmp_path)
    response = etree.Element(f"{{{SAMLP}}}Response", nsmap={"samlp": SAMLP, "saml": SAML}, ID="_r1")
    assertion = etree.SubElement(response, f"{{{SAML}}}Assertion", ID="_a1b2c3", Version="2.0",
                                 IssueInstant=dt.datetime(2026, 1, 1, tzinfo=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    etree.SubElement(assertion, f"{{{SAML}}}Issuer").text = ENTITY_ID
    etree.SubElement(assertion, f"{{{SAML}}}AttributeValue").text = "Élève <&> \"quoted\""
    sign_enveloped(assertion, material, 1)
    signed = etree.tostring(response).decode()
    assert CryptoBackendXmlSec1(XMLSEC1).validate_signature(signed, cert_file, "pem", ASSERTION, "_a1b2c3")
    assert XmlSecBackend().validate_signature(signed, cert_file, "pem", ASSERTION, "_a1b2c3")
    with pytest.raises(SignatureError):
        XmlSecBackend().validate_signature(signed.replace("quoted", "quotes"), cert_file, "pem", ASSERTION, "_a1b2c3")
    sign_enveloped(response, material, 0)
    both = etree.tostring(response).decode()
    assert XmlSecBackend().validate_signature(both, cert_file, "pem", "urn:oasis:names:tc:SAML:2.0:protocol:Response",
                                              "_r1")
