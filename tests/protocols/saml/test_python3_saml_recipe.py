"""Signed requests interoperate with python3-saml's default recipe (issue 16 item 4).

The integrator follows python3-saml's README: our metadata fetched and parsed with
``OneLogin_Saml2_IdPMetadataParser.parse_remote``, merged into the SP's settings with ``merge_settings`` (which
takes ``security.authnRequestsSigned`` from our ``WantAuthnRequestsSigned``), then ``OneLogin_Saml2_Auth.login()``
and ``process_response()``. Our metadata says ``true``, so the SP signs, and its signed request is accepted.
An SP that does not sign is refused unless the operator exempted it (``idp sp set --allow-unsigned-requests``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from lxml import etree
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.settings import OneLogin_Saml2_Settings

from idp.saml import admin
from tests.conftest import DEFAULT_PASSWORD
from tests.protocols.saml.conftest import ENTITY_ID, autopost, login_through, path_of

HOST = "recette-ent.test"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"


@pytest.fixture
def idp_url(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Our app on a real socket, so that ``parse_remote`` fetches the metadata over HTTP as in production."""
    from werkzeug.serving import make_server

    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def sp_settings(keypair: tuple[bytes, bytes]) -> dict[str, Any]:
    """An SP's own settings as python3-saml's README starts them: nothing about the IdP, no signing choice."""
    key, cert = keypair
    return {
        "strict": True,
        "sp": {
            "entityId": f"https://{HOST}/metadata",
            "assertionConsumerService": {"url": f"https://{HOST}/acs",
                                         "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"},
            "NameIDFormat": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
            "x509cert": "".join(cert.decode().strip().splitlines()[1:-1]),
            "privateKey": "".join(key.decode().strip().splitlines()[1:-1]),
        },
        "security": {"wantAssertionsSigned": True,
                     "signatureAlgorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                     "digestAlgorithm": "http://www.w3.org/2001/04/xmlenc#sha256"},
    }


def request_data(path: str, post: dict[str, str] | None = None) -> dict[str, Any]:
    return {"https": "on", "http_host": HOST, "script_name": path, "get_data": {}, "post_data": post or {}}


def register(services: Any, tmp_path: Path, settings: dict[str, Any], **policy: Any) -> None:
    """The SP's metadata registered as ``idp sp add FILE`` does."""
    path = tmp_path / "recette-ent.xml"
    path.write_text(OneLogin_Saml2_Settings(settings, sp_validation_only=True).get_sp_metadata().decode())
    admin.register(services, str(path), name="ENT de recette", **policy)


def test_our_metadata_asks_for_signed_requests(client: Any) -> None:
    root = etree.fromstring(client.get("/saml/metadata").data)
    assert root.find(f"{{{MD}}}IDPSSODescriptor").get("WantAuthnRequestsSigned") == "true"


def test_the_readme_recipe_signs_and_logs_in(client: Any, login: Any, services: Any, account_factory: Any,
                                             idp_url: str, sp_keypairs: dict[str, tuple[bytes, bytes]],
                                             tmp_path: Path) -> None:
    idp_data = OneLogin_Saml2_IdPMetadataParser.parse_remote(f"{idp_url}/saml/metadata")
    settings = OneLogin_Saml2_IdPMetadataParser.merge_settings(sp_settings(sp_keypairs["sp1"]), idp_data)
    assert settings["idp"]["entityId"] == ENTITY_ID and settings["security"]["authnRequestsSigned"] is True
    register(services, tmp_path, settings)
    account = account_factory("Sandrine", "Dupuis")

    auth = OneLogin_Saml2_Auth(request_data("/login"), settings)
    url = auth.login(return_to=f"https://{HOST}/accueil")
    assert "Signature=" in url and "SigAlg=" in url  # the request is signed (HTTP-Redirect, query signature)
    page = login_through(client, login, url, account.identifier, DEFAULT_PASSWORD)
    form = autopost(page)
    assert form["action"] == f"https://{HOST}/acs" and form["RelayState"] == f"https://{HOST}/accueil"

    acs = OneLogin_Saml2_Auth(request_data("/acs", {"SAMLResponse": form["SAMLResponse"]}), settings)
    acs.process_response(request_id=auth.get_last_request_id())
    assert acs.get_errors() == [], acs.get_last_error_reason()
    assert acs.is_authenticated()
    assert acs.get_attribute("sn") == ["Dupuis"]


def test_an_sp_that_does_not_sign_is_refused_unless_exempted(client: Any, login: Any, services: Any, runner: Any,
                                                             account_factory: Any, idp_url: str,
                                                             sp_keypairs: dict[str, tuple[bytes, bytes]],
                                                             tmp_path: Path) -> None:
    """A legacy SP overriding the recipe (``authnRequestsSigned`` false): 403 page, nothing sent to its ACS;
    once the operator exempts it, its unsigned request logs in."""
    idp_data = OneLogin_Saml2_IdPMetadataParser.parse_remote(f"{idp_url}/saml/metadata")
    settings = OneLogin_Saml2_IdPMetadataParser.merge_settings(sp_settings(sp_keypairs["sp2"]), idp_data)
    settings["security"]["authnRequestsSigned"] = False
    register(services, tmp_path, settings)
    account = account_factory()

    auth = OneLogin_Saml2_Auth(request_data("/login"), settings)
    refused = client.get(path_of(auth.login()))
    body = refused.get_data(as_text=True)
    assert refused.status_code == 403 and "Requête SAML non signée" in body and "SAMLResponse" not in body

    entity_id = settings["sp"]["entityId"]
    assert runner("sp", "set", entity_id, "--allow-unsigned-requests").exit_code == 0
    assert "requêtes=non-signées-acceptées" in runner("sp", "list").output
    services.frontends["saml"]._sp_rows.clear()  # what sp_cache_seconds would do within 5 s
    auth = OneLogin_Saml2_Auth(request_data("/login"), settings)
    page = login_through(client, login, auth.login(), account.identifier, DEFAULT_PASSWORD)
    acs = OneLogin_Saml2_Auth(request_data("/acs", {"SAMLResponse": autopost(page)["SAMLResponse"]}), settings)
    acs.process_response(request_id=auth.get_last_request_id())
    assert acs.is_authenticated() and acs.get_errors() == []

    assert runner("sp", "set", entity_id, "--require-signed-requests").exit_code == 0
    services.frontends["saml"]._sp_rows.clear()
    assert client.get(path_of(OneLogin_Saml2_Auth(request_data("/login"), settings).login())).status_code == 403
