"""Unit tests of request checking, attribute naming and the failure mapping (no web client)."""

from __future__ import annotations

import datetime as dt
import zlib

import pytest

from idp.core.identity import Attr
from idp.errors import AuthnFailure
from idp.saml import binding, checks, crypto
from idp.saml.attributes import NAME_FORMAT_BASIC, NAME_FORMAT_URI, parse_attribute_list, saml_attributes
from idp.saml.errors import SamlInvalidRequest
from idp.saml.mapping import SAML_STATUS


def _deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def test_every_failure_has_a_saml_status() -> None:
    assert set(SAML_STATUS) == set(AuthnFailure)


def test_inflate_is_capped() -> None:
    assert binding.inflate_capped(_deflate(b"x" * 1000), 1000) == b"x" * 1000
    with pytest.raises(SamlInvalidRequest):
        binding.inflate_capped(_deflate(b"x" * 1001), 1000)
    with pytest.raises(SamlInvalidRequest):
        binding.inflate_capped(b"not deflate at all", 1000)


@pytest.mark.parametrize("document", [b"<!DOCTYPE a><a/>", b"<?xml version='1.0'?>\n<!doctype a []><a/>",
                                      b'<?xml version="1.0" encoding="ISO-8859-1"?><a/>', "<a/>".encode("utf-16"),
                                      b"<a><!ENTITY x 'y'></a>"])
def test_dtd_and_non_utf8_refused_before_parsing(document: bytes) -> None:
    with pytest.raises(crypto.UnsafeXml):
        crypto.refuse_doctype(document)


def test_redirect_query_keeps_the_signed_octets() -> None:
    raw = b"SAMLRequest=abc%2B&Signature=c2ln&RelayState=a+b%20c&SigAlg=alg&extra=1"
    parts = binding.split_redirect_query(raw, "SAMLRequest", 1024)
    assert parts.signed_octets == b"SAMLRequest=abc%2B&RelayState=a+b%20c&SigAlg=alg"
    assert parts.message == "abc+" and parts.relay_state == "a b c" and parts.signature == "c2ln"
    with pytest.raises(SamlInvalidRequest):
        binding.split_redirect_query(b"SAMLRequest=a&SAMLRequest=b", "SAMLRequest", 1024)
    with pytest.raises(SamlInvalidRequest):
        binding.split_redirect_query(b"RelayState=a", "SAMLRequest", 1024)


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-09-01T08:00:00Z", dt.datetime(2026, 9, 1, 8, tzinfo=dt.UTC)),
    ("2026-09-01T08:00:00.123456789Z", dt.datetime(2026, 9, 1, 8, 0, 0, 123456, tzinfo=dt.UTC)),
    ("2026-09-01T10:00:00+02:00", dt.datetime(2026, 9, 1, 8, tzinfo=dt.UTC)),
])
def test_instants(value: str, expected: dt.datetime) -> None:
    assert checks.parse_instant(value) == expected


def test_identifier_text_with_comment_refused() -> None:
    root = crypto.parse_xml(b'<r xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">'
                            b"<saml:Issuer>https://sp.test<!---->.evil.test</saml:Issuer></r>")
    with pytest.raises(SamlInvalidRequest):
        checks.issuer_of(root)


def test_attribute_names_basic_and_compat() -> None:
    released = {Attr.SN: ["Dupont"], Attr.FR_EDU_CT_ID: ["abc"], Attr.VECTEUR: ["1|DUPONT|Marie|x|0690026D"]}
    basic = {a.name: (a.name_format, a.values) for a in saml_attributes(released, compat_oid=False)}
    assert basic == {"sn": (NAME_FORMAT_BASIC, ("Dupont",)), "FrEduCtId": (NAME_FORMAT_BASIC, ("abc",)),
                     "FrEduVecteur": (NAME_FORMAT_BASIC, ("1|DUPONT|Marie|x|0690026D",))}
    compat = {a.name: (a.name_format, a.friendly_name) for a in saml_attributes(released, compat_oid=True)}
    assert compat == {"urn:oid:2.5.4.4": (NAME_FORMAT_URI, "sn"),
                      "urn:oid:1.3.6.1.4.1.20326.10.999.1.57": (NAME_FORMAT_URI, "FrEduCtId"),
                      "FrEduVecteur": (NAME_FORMAT_BASIC, None)}


def test_attribute_list_parsing() -> None:
    assert parse_attribute_list("sn, GIVENNAME,,FrEduCtId") == {Attr.SN, Attr.GIVEN_NAME, Attr.FR_EDU_CT_ID}
    with pytest.raises(ValueError, match="attribut inconnu"):
        parse_attribute_list("sn,password")


# --- RequestedAuthnContext ---------------------------------------------------------------------------


def test_requested_authn_context_comparisons() -> None:
    from idp.saml import authn_context as ac

    ppt, sms, previous = ac.PASSWORD_PROTECTED_TRANSPORT, ac.MOBILE_ONE_FACTOR, ac.PREVIOUS_SESSION
    assert ac.acceptable_classes(None, (ppt,), False) == (ppt,)
    assert ac.acceptable_classes("exact", (ppt, sms), False) == (ppt, sms)
    assert ac.acceptable_classes("minimum", (ac.PASSWORD,), False) == (ppt, sms)
    assert ac.acceptable_classes("minimum", (ac.UNSPECIFIED,), False) == (ppt, sms, previous)
    assert ac.acceptable_classes("maximum", (ac.PASSWORD,), False) == (previous,)
    assert ac.acceptable_classes("better", (ac.PASSWORD,), False) == (ppt, sms)
    for comparison, refs in (("exact", (ac.CLASSES + "Smartcard",)), ("minimum", (ac.CLASSES + "X509",)),
                             ("better", (ppt,)), ("minimum", ("urn:example:unknown",)),
                             ("exact", ("urn:example:unknown",))):
        with pytest.raises(ac.AuthnContextRefused) as refused:
            ac.acceptable_classes(comparison, refs, False)
        assert refused.value.sub_status == "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext"
    with pytest.raises(ac.AuthnContextRefused) as malformed:
        ac.acceptable_classes("strongest", (ppt,), False)
    assert malformed.value.status == "urn:oasis:names:tc:SAML:2.0:status:Requester"
