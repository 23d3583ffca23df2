"""A login through pysaml2's own SP client (with the xmlsec1 program): it reads our signed metadata, signs
its Redirect request, and verifies our answer with the other backend."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor

from idp.saml import admin
from tests.conftest import DEFAULT_PASSWORD
from tests.protocols.saml.conftest import autopost, login_through, make_keypair

XMLSEC1 = shutil.which("xmlsec1")
pytestmark = pytest.mark.skipif(XMLSEC1 is None, reason="the xmlsec1 program (Debian xmlsec1) is not installed")
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


def test_pysaml2_sp_logs_in(client: Any, login: Any, account_factory: Any, services: Any, tmp_path: Path) -> None:
    metadata = client.get("/saml/metadata")
    assert metadata.status_code == 200
    (tmp_path / "idp.xml").write_bytes(metadata.data)
    key, cert = make_keypair("pysp")
    (tmp_path / "sp.key").write_bytes(key)
    (tmp_path / "sp.crt").write_bytes(cert)
    conf = SPConfig().load({
        "entityid": "https://pysp.test/metadata", "key_file": str(tmp_path / "sp.key"),
        "cert_file": str(tmp_path / "sp.crt"), "xmlsec_binary": XMLSEC1,
        "metadata": {"local": [str(tmp_path / "idp.xml")]}, "accepted_time_diff": 60, "allow_unknown_attributes": True,
        "service": {"sp": {
            "endpoints": {"assertion_consumer_service": [("https://pysp.test/acs", BINDING_HTTP_POST)],
                          "single_logout_service": [("https://pysp.test/sls", BINDING_HTTP_REDIRECT)]},
            "authn_requests_signed": True, "want_assertions_signed": True, "want_response_signed": False,
            "allow_unsolicited": False,
        }},
    })
    (tmp_path / "sp.xml").write_text(str(entity_descriptor(conf)))
    admin.register(services, str(tmp_path / "sp.xml"), name="SP pysaml2")
    sp = Saml2Client(conf)
    request_id, info = sp.prepare_for_authenticate(binding=BINDING_HTTP_REDIRECT, sigalg=RSA_SHA256)
    url = dict(info["headers"])["Location"]
    account = account_factory("Léa", "Martin")
    page = login_through(client, login, url, account.identifier, DEFAULT_PASSWORD)
    response = sp.parse_authn_request_response(autopost(page)["SAMLResponse"], BINDING_HTTP_POST,
                                               outstanding={request_id: "/"})
    assert response is not None
    assert response.ava["sn"] == ["Martin"] and response.ava["givenName"] == ["Léa"]
    assert response.name_id.format == "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
