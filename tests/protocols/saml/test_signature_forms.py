"""Which signature counts on which binding (SECURITY S30, SAML Bindings 3.4.4.1 and 3.5.4): on HTTP-Redirect the
query signature (``SigAlg`` + ``Signature``), never an enveloped ``<ds:Signature>``; on HTTP-POST the enveloped
signature, never query-style fields. AuthnRequest and LogoutRequest from the outside, LogoutResponse through
the one check (``checks.verify_signature``)."""

from __future__ import annotations

import base64
import datetime as dt
import zlib
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from idp.saml import binding, checks, crypto, registry
from idp.saml.config import SamlConfig
from idp.saml.errors import SamlUnsigned
from tests.conftest import DEFAULT_PASSWORD
from tests.protocols.saml import forge
from tests.protocols.saml.conftest import OneLoginSp, login_through

SLO_REDIRECT = "https://idp.test/saml/slo/redirect"


def _refused_unsigned(response: Any) -> None:
    body = response.get_data(as_text=True)
    assert response.status_code == 403, body[:800]
    assert "Requête SAML non signée" in body and "SAMLResponse" not in body


def _redirect_request(sp: OneLoginSp, now: dt.datetime) -> etree._Element:
    return forge.authn_request(sp.entity_id, now, destination=forge.SSO_REDIRECT)


# --- AuthnRequest ------------------------------------------------------------------------------------------


def test_redirect_with_only_an_enveloped_signature_is_unsigned(client: Any, clock: Any, sp1: OneLoginSp) -> None:
    """sp1 must sign: a valid enveloped signature on the Redirect binding does not count (3.4.4.1)."""
    signed = forge.sign(_redirect_request(sp1, clock.now()), sp1.key, sp1.cert)
    _refused_unsigned(forge.redirect(client, signed))
    _refused_unsigned(forge.redirect(client, signed, relay_state="x"))


def test_redirect_query_signature_counts_whatever_the_xml_carries(client: Any, clock: Any, sp1: OneLoginSp) -> None:
    plain = etree.tostring(_redirect_request(sp1, clock.now()))
    assert forge.redirect(client, plain, key=sp1.key).status_code == 303
    enveloped = forge.sign(_redirect_request(sp1, clock.now()), sp1.key, sp1.cert)
    assert forge.redirect(client, enveloped, key=sp1.key).status_code == 303


def test_redirect_enveloped_signature_is_not_even_read(client: Any, clock: Any, sp1: OneLoginSp,
                                                      sp2: OneLoginSp) -> None:
    """sp2 need not sign: an enveloped signature by another key on the Redirect binding is simply ignored
    (the message is unsigned, and answered as such), never taken for a signed one."""
    wrong = forge.sign(_redirect_request(sp2, clock.now()), sp1.key, sp1.cert)
    assert forge.redirect(client, wrong).status_code == 303


def test_post_needs_the_enveloped_signature(client: Any, clock: Any, sp1: OneLoginSp) -> None:
    """Query-style SigAlg/Signature fields (in the body or the URL) do not sign an HTTP-POST message."""
    xml = etree.tostring(forge.authn_request(sp1.entity_id, clock.now()))
    encoded = base64.b64encode(xml).decode()
    octets = f"SAMLRequest={quote_plus(encoded)}&SigAlg={quote_plus(forge.RSA_SHA256)}"
    key = serialization.load_pem_private_key(sp1.key, password=None)
    signature = base64.b64encode(key.sign(octets.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()  # type: ignore[union-attr]
    fields = {"SAMLRequest": encoded, "SigAlg": forge.RSA_SHA256, "Signature": signature}
    _refused_unsigned(client.post("/saml/sso/post", data=fields))
    query = f"SigAlg={quote_plus(forge.RSA_SHA256)}&Signature={quote_plus(signature)}"
    _refused_unsigned(client.post(f"/saml/sso/post?{query}", data={"SAMLRequest": encoded}))
    signed = forge.sign(forge.authn_request(sp1.entity_id, clock.now()), sp1.key, sp1.cert)
    assert forge.post(client, signed).status_code == 303


# --- LogoutRequest -----------------------------------------------------------------------------------------


def _logged_in(client: Any, login: Any, account_factory: Any, sp: OneLoginSp) -> Any:
    account = account_factory()
    url, request_id = sp.login_url()
    page = login_through(client, login, url, account.identifier, DEFAULT_PASSWORD)
    return sp.consume(page, request_id)


def _logout_xml(sp: OneLoginSp, auth: Any) -> bytes:
    url = sp.auth().logout(name_id=auth.get_nameid(), session_index=auth.get_session_index())
    return zlib.decompress(base64.b64decode(parse_qs(urlsplit(url).query)["SAMLRequest"][0]), -15)


def test_logout_request_on_redirect_with_only_an_enveloped_signature(client: Any, login: Any,
                                                                     account_factory: Any, sp1: OneLoginSp) -> None:
    auth = _logged_in(client, login, account_factory, sp1)
    signed = forge.sign(etree.fromstring(_logout_xml(sp1, auth)), sp1.key, sp1.cert)
    _refused_unsigned(client.get("/saml/slo/redirect?" + forge.redirect_query(signed)))
    url, _ = sp1.login_url()
    assert client.get(urlsplit(url).path + "?" + urlsplit(url).query).status_code == 200  # session untouched
    answered = client.get("/saml/slo/redirect?" + forge.redirect_query(signed, key=sp1.key))
    assert answered.status_code in (302, 303), answered.get_data(as_text=True)[:800]


# --- the one check, for every message kind ----------------------------------------------------------------


@pytest.fixture
def sp1_metadata(sp1: OneLoginSp) -> registry.SpMetadata:
    metadata = registry.parse_metadata(sp1.metadata().encode(), now=dt.datetime.now(dt.UTC))[0]
    metadata.signing_keys.extend(crypto.KeyCache().certificate(c) for c in metadata.signing_certs)
    return metadata


@pytest.mark.parametrize("kind", ["AuthnRequest", "LogoutRequest", "LogoutResponse"])
def test_verify_signature_form_per_binding(sp1: OneLoginSp, sp1_metadata: registry.SpMetadata, kind: str) -> None:
    root = forge.authn_request(sp1.entity_id, dt.datetime.now(dt.UTC), destination=SLO_REDIRECT)
    root.tag = f"{{{checks.SAMLP}}}{kind}"
    enveloped = forge.sign(root, sp1.key, sp1.cert)
    config = SamlConfig(base_url="https://idp.test")
    redirect_enveloped = binding.decode_redirect(forge.redirect_query(enveloped, param="SAMLRequest").encode(),
                                                 "SAMLRequest", config)
    with pytest.raises(SamlUnsigned):
        checks.verify_signature(redirect_enveloped, sp1_metadata, required=True)
    assert checks.verify_signature(redirect_enveloped, sp1_metadata, required=False) is False
    redirect_query = binding.decode_redirect(
        forge.redirect_query(etree.tostring(root), key=sp1.key).encode(), "SAMLRequest", config)
    assert checks.verify_signature(redirect_query, sp1_metadata, required=True) is True
    post = binding.decode_post(base64.b64encode(enveloped).decode(), None)
    assert checks.verify_signature(post, sp1_metadata, required=True) is True
    with pytest.raises(SamlUnsigned):
        checks.verify_signature(binding.decode_post(base64.b64encode(etree.tostring(root)).decode(), None),
                                sp1_metadata, required=True)
