"""Per-SP encryption policy (SECURITY S24) and ``RequestedAuthnContext`` (SAML Core 3.3.2.2.1), driven by
python3-saml and pysaml2 service providers and by the ``idp sp`` commands."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from sqlalchemy import update

from idp.saml import authn_context
from idp.storage.models import SsoSessionRow
from idp.storage.saml_store import SqlSamlStore
from tests.conftest import DEFAULT_PASSWORD
from tests.protocols.saml import forge
from tests.protocols.saml.conftest import OneLoginSp, autopost, login_through, path_of

PPT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
PASSWORD = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"
SMARTCARD = "urn:oasis:names:tc:SAML:2.0:ac:classes:Smartcard"
NO_AUTHN_CONTEXT = "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"


def _status_codes(page: str) -> list[str]:
    return [c.get("Value", "") for c in forge.response_xml(page).iter(f"{{{SAMLP}}}StatusCode")]


def _raw_response(page: str) -> str:
    return OneLogin_Saml2_Utils.b64decode(autopost(page)["SAMLResponse"]).decode()


# --- S24: an SP whose policy requires encrypted assertions ------------------------------------------------


@pytest.fixture
def clear_sp(sp_keypairs: Any, idp_cert: bytes, tmp_path: Path) -> tuple[OneLoginSp, Path]:
    """An SP whose metadata has a signing key only."""
    sp = OneLoginSp("sp1", sp_keypairs["sp1"], idp_cert)
    path = tmp_path / "clear.xml"
    path.write_text(sp.metadata())
    assert 'use="encryption"' not in path.read_text()
    return sp, path


@pytest.fixture
def encrypting_sp(sp_keypairs: Any, idp_cert: bytes, tmp_path: Path) -> tuple[OneLoginSp, Path]:
    """The same SP publishing an encryption key, and asking python3-saml to insist on encrypted assertions."""
    sp = OneLoginSp("sp1", sp_keypairs["sp1"], idp_cert, encrypted=True)
    path = tmp_path / "encrypting.xml"
    path.write_text(sp.metadata())
    assert 'use="encryption"' in path.read_text()
    return sp, path


def test_s24_registration_refused_without_an_encryption_key(runner: Any, services: Any,
                                                            clear_sp: tuple[OneLoginSp, Path]) -> None:
    sp, path = clear_sp
    refused = runner("sp", "add", str(path), "--require-encryption")
    assert refused.exit_code == 1
    assert "aucune clé de chiffrement" in refused.output
    with services.uow() as uow:
        assert SqlSamlStore(uow.session).get_sp(sp.entity_id) is None
    contradictory = runner("sp", "add", str(path), "--require-encryption", "--no-encrypt")
    assert contradictory.exit_code == 1 and "contradictoires" in contradictory.output


def test_s24_required_encryption_gives_only_encrypted_assertions(runner: Any, client: Any, login: Any,
                                                                 account_factory: Any,
                                                                 encrypting_sp: tuple[OneLoginSp, Path]) -> None:
    sp, path = encrypting_sp
    added = runner("sp", "add", str(path), "--require-encryption", "--name", "ENT chiffré")
    assert added.exit_code == 0, added.output
    assert "chiffrement=exigé" in runner("sp", "list").output
    account = account_factory()
    url, request_id = sp.login_url()
    page = login_through(client, login, url, account.identifier, DEFAULT_PASSWORD)
    raw = _raw_response(page)
    assert "EncryptedAssertion" in raw and "<saml:Assertion" not in raw and "Dupont" not in raw
    auth = sp.consume(page, request_id)
    assert auth.is_authenticated(), (auth.get_errors(), auth.get_last_error_reason())
    assert auth.get_attributes()["sn"] == ["Dupont"]


def test_s24_change_later_is_checked_against_the_stored_metadata(runner: Any, services: Any,
                                                                 clear_sp: tuple[OneLoginSp, Path],
                                                                 encrypting_sp: tuple[OneLoginSp, Path]) -> None:
    sp, clear_path = clear_sp
    assert runner("sp", "add", str(clear_path)).exit_code == 0
    refused = runner("sp", "set", sp.entity_id, "--require-encryption")
    assert refused.exit_code == 1 and "aucune clé de chiffrement" in refused.output
    _, encrypting_path = encrypting_sp
    assert runner("sp", "add", str(encrypting_path)).exit_code == 0
    assert runner("sp", "set", sp.entity_id, "--require-encryption").exit_code == 0
    assert runner("sp", "set", sp.entity_id, "--no-encrypt").exit_code == 1
    # New metadata without an encryption key is refused while the policy requires one; the old one stays.
    stale = runner("sp", "add", str(clear_path))
    assert stale.exit_code == 1 and "aucune clé de chiffrement" in stale.output
    with services.uow() as uow:
        row = SqlSamlStore(uow.session).get_sp(sp.entity_id)
    assert row is not None and row.require_encryption and 'use="encryption"' in row.metadata_xml
    assert runner("sp", "set", sp.entity_id, "--allow-clear").exit_code == 0
    assert runner("sp", "add", str(clear_path)).exit_code == 0


def test_s24_never_a_clear_assertion_even_if_the_policy_and_metadata_disagree(
        client: Any, login: Any, services: Any, account_factory: Any, clear_sp: tuple[OneLoginSp, Path]) -> None:
    """Defence in depth: a row changed behind the commands' back still gets a status, never an assertion."""
    from idp.saml import admin

    sp, path = clear_sp
    admin.register(services, str(path))
    with services.uow() as uow:
        SqlSamlStore(uow.session).set_policy(sp.entity_id, services.clock.now(), require_encryption=True)
        uow.commit()
    services.frontends["saml"]._sp_rows.clear()
    account = account_factory()
    url, request_id = sp.login_url()
    page = login_through(client, login, url, account.identifier, DEFAULT_PASSWORD)
    raw = _raw_response(page)
    assert "Assertion" not in raw and "Dupont" not in raw
    assert _status_codes(page) == ["urn:oasis:names:tc:SAML:2.0:status:Responder"]
    auth = sp.consume(page, request_id)
    assert not auth.is_authenticated()


# --- RequestedAuthnContext ---------------------------------------------------------------------------


def _with_context(sp: OneLoginSp, classes: list[str], comparison: str = "exact") -> OneLoginSp:
    sp.data["security"]["requestedAuthnContext"] = classes
    sp.data["security"]["requestedAuthnContextComparison"] = comparison
    # python3-saml checks the answered class by membership only, whatever the comparison.
    sp.data["security"]["failOnAuthnContextMismatch"] = comparison == "exact"
    return sp


@pytest.mark.parametrize(("classes", "comparison"), [([PPT], "exact"), ([PASSWORD], "minimum"),
                                                     ([SMARTCARD, PPT], "exact"), ([SMARTCARD], "maximum")])
def test_satisfiable_context_is_answered_with_it(client: Any, login: Any, account_factory: Any, sp1: OneLoginSp,
                                                 classes: list[str], comparison: str) -> None:
    sp = _with_context(sp1, classes, comparison)
    account = account_factory()
    url, request_id = sp.login_url()
    auth = sp.consume(login_through(client, login, url, account.identifier, DEFAULT_PASSWORD), request_id)
    assert auth.is_authenticated(), (auth.get_errors(), auth.get_last_error_reason())
    classes_in_answer = [e.text for e in etree.fromstring(auth.get_last_response_xml().encode()).iter(
        f"{{{SAML}}}AuthnContextClassRef")]
    assert classes_in_answer == [PPT]
    # The SSO session answers the next request with the same context, without the login page.
    url, request_id = sp.login_url()
    again = client.get(path_of(url))
    assert again.status_code == 200 and sp.consume(again.get_data(as_text=True), request_id).is_authenticated()


@pytest.mark.parametrize(("classes", "comparison"), [([SMARTCARD], "exact"), ([SMARTCARD], "minimum"),
                                                     ([PPT], "better"), ([PASSWORD], "maximum")])
def test_unsatisfiable_context_gets_no_authn_context(client: Any, login: Any, account_factory: Any,
                                                     sp1: OneLoginSp, classes: list[str], comparison: str) -> None:
    sp = _with_context(sp1, classes, comparison)
    account_factory()
    url, request_id = sp.login_url()
    answered = client.get(path_of(url))
    assert answered.status_code == 200, "no login page: the SP is answered at once"
    page = answered.get_data(as_text=True)
    assert _status_codes(page) == ["urn:oasis:names:tc:SAML:2.0:status:Responder", NO_AUTHN_CONTEXT]
    assert autopost(page)["action"] == sp.acs
    auth = sp.consume(page, request_id)
    assert not auth.is_authenticated() and "Responder" in (auth.get_last_error_reason() or "")


def test_unsatisfiable_context_with_an_sso_session(client: Any, login: Any, account_factory: Any,
                                                   sp1: OneLoginSp, sp2: OneLoginSp) -> None:
    account = account_factory()
    url, request_id = sp2.login_url()
    assert sp2.consume(login_through(client, login, url, account.identifier, DEFAULT_PASSWORD),
                       request_id).is_authenticated()
    url, request_id = _with_context(sp1, [SMARTCARD]).login_url()
    page = client.get(path_of(url)).get_data(as_text=True)
    assert _status_codes(page)[-1] == NO_AUTHN_CONTEXT


def test_session_of_another_class_asks_for_the_password_again(client: Any, login: Any, account_factory: Any,
                                                              services: Any, sp1: OneLoginSp,
                                                              sp2: OneLoginSp) -> None:
    """An SSO session opened by an SMS code (MobileOneFactorUnregistered) cannot answer "exact
    PasswordProtectedTransport": the password is asked, and the answer carries the new context."""
    account = account_factory()
    url, request_id = sp2.login_url()
    assert sp2.consume(login_through(client, login, url, account.identifier, DEFAULT_PASSWORD),
                       request_id).is_authenticated()
    with services.uow() as uow:
        uow.session.execute(update(SsoSessionRow).values(auth_method="sms"))
        uow.commit()
    url, request_id = sp2.login_url()
    page = client.get(path_of(url)).get_data(as_text=True)
    assert [e.text for e in forge.response_xml(page).iter(f"{{{SAML}}}AuthnContextClassRef")] == \
        [authn_context.MOBILE_ONE_FACTOR]
    sp = _with_context(sp1, [PPT])
    url, request_id = sp.login_url()
    auth = sp.consume(login_through(client, login, url, account.identifier, DEFAULT_PASSWORD), request_id)
    assert auth.is_authenticated(), (auth.get_errors(), auth.get_last_error_reason())


def test_malformed_requested_context(client: Any, clock: Any, sp2: OneLoginSp) -> None:
    root = forge.authn_request(sp2.entity_id, clock.now())
    requested = etree.SubElement(root, f"{{{SAMLP}}}RequestedAuthnContext", Comparison="strongest")
    etree.SubElement(requested, f"{{{SAML}}}AuthnContextClassRef").text = PPT
    page = forge.post(client, etree.tostring(root))
    assert _status_codes(page.get_data(as_text=True)) == ["urn:oasis:names:tc:SAML:2.0:status:Requester"]
    root = forge.authn_request(sp2.entity_id, clock.now())
    declared = etree.SubElement(root, f"{{{SAMLP}}}RequestedAuthnContext")
    etree.SubElement(declared, f"{{{SAML}}}AuthnContextDeclRef").text = "urn:example:decl"
    page = forge.post(client, etree.tostring(root))
    assert _status_codes(page.get_data(as_text=True))[-1] == NO_AUTHN_CONTEXT


XMLSEC1 = shutil.which("xmlsec1")


@pytest.mark.skipif(XMLSEC1 is None, reason="the xmlsec1 program (Debian xmlsec1) is not installed")
def test_pysaml2_sp_requested_context(client: Any, login: Any, account_factory: Any, services: Any,
                                      tmp_path: Path) -> None:
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.client import Saml2Client
    from saml2.config import SPConfig
    from saml2.metadata import entity_descriptor
    from saml2.response import StatusNoAuthnContext
    from saml2.saml import AuthnContextClassRef
    from saml2.samlp import RequestedAuthnContext

    from idp.saml import admin
    from tests.protocols.saml.conftest import make_keypair

    (tmp_path / "idp.xml").write_bytes(client.get("/saml/metadata").data)
    key, cert = make_keypair("pysp")
    (tmp_path / "sp.key").write_bytes(key)
    (tmp_path / "sp.crt").write_bytes(cert)
    conf = SPConfig().load({
        "entityid": "https://pysp.test/metadata", "key_file": str(tmp_path / "sp.key"),
        "cert_file": str(tmp_path / "sp.crt"), "xmlsec_binary": XMLSEC1,
        "metadata": {"local": [str(tmp_path / "idp.xml")]}, "accepted_time_diff": 60, "allow_unknown_attributes": True,
        "service": {"sp": {
            "endpoints": {"assertion_consumer_service": [("https://pysp.test/acs", BINDING_HTTP_POST)]},
            "authn_requests_signed": True, "want_assertions_signed": True, "want_response_signed": False,
            "allow_unsolicited": False,
        }},
    })
    (tmp_path / "sp.xml").write_text(str(entity_descriptor(conf)))
    admin.register(services, str(tmp_path / "sp.xml"), name="SP pysaml2")
    sp = Saml2Client(conf)
    rsa_sha256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"

    def request(cls: str, comparison: str) -> tuple[str, str]:
        context = RequestedAuthnContext(authn_context_class_ref=[AuthnContextClassRef(text=cls)],
                                        comparison=comparison)
        request_id, info = sp.prepare_for_authenticate(binding=BINDING_HTTP_REDIRECT, sigalg=rsa_sha256,
                                                       requested_authn_context=context)
        return request_id, dict(info["headers"])["Location"]

    account = account_factory()
    request_id, url = request(PASSWORD, "minimum")
    page = login_through(client, login, url, account.identifier, DEFAULT_PASSWORD)
    response = sp.parse_authn_request_response(autopost(page)["SAMLResponse"], BINDING_HTTP_POST,
                                               outstanding={request_id: "/"})
    assert response is not None and response.authn_info()[0][0] == PPT
    request_id, url = request(SMARTCARD, "exact")
    page = client.get(path_of(url)).get_data(as_text=True)
    with pytest.raises(StatusNoAuthnContext):
        sp.parse_authn_request_response(autopost(page)["SAMLResponse"], BINDING_HTTP_POST,
                                        outstanding={request_id: "/"})


def test_parked_post_request_expires(client: Any, clock: Any, sp2: OneLoginSp) -> None:
    """The handle of a POSTed request is single use and short-lived (``pending_ttl``)."""
    posted = forge.post(client, etree.tostring(forge.authn_request(sp2.entity_id, clock.now())))
    assert posted.status_code == 303
    clock.advance(minutes=6)
    late = client.get(posted.headers["Location"])
    assert late.status_code == 400 and "SAMLResponse" not in late.get_data(as_text=True)
