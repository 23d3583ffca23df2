"""Small helpers to build SAML XML with lxml (a serializer escapes every text: SECURITY S16)."""

from __future__ import annotations

import datetime as dt
import secrets

from lxml import etree

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
XS = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NSMAP = {"samlp": SAMLP, "saml": SAML}

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


def new_id() -> str:
    """A message ID: starts with a letter (xs:ID is an NCName), 160 random bits (SAML Core 1.3.4)."""
    return "_" + secrets.token_hex(20)


def instant(moment: dt.datetime) -> str:
    """``xs:dateTime`` in UTC with a ``Z`` (SAML Core 1.3.3), to the second."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sub(parent: etree._Element, ns: str, tag: str, text: str | None = None, **attrs: str | None) -> etree._Element:
    """Append a child element; text and attribute values go through the serializer (never concatenated)."""
    element = etree.SubElement(parent, f"{{{ns}}}{tag}", {k: v for k, v in attrs.items() if v is not None})
    if text is not None:
        element.text = text
    return element


def signature_template(parent: etree._Element, ref_id: str, cert_b64: str, position: int) -> etree._Element:
    """An enveloped ``ds:Signature`` template (RSA-SHA256, exc-c14n) inserted at ``position`` in ``parent``."""
    sig = etree.Element(f"{{{DS}}}Signature", nsmap={"ds": DS})
    info = etree.SubElement(sig, f"{{{DS}}}SignedInfo")
    etree.SubElement(info, f"{{{DS}}}CanonicalizationMethod", Algorithm=EXC_C14N)
    etree.SubElement(info, f"{{{DS}}}SignatureMethod", Algorithm=RSA_SHA256)
    ref = etree.SubElement(info, f"{{{DS}}}Reference", URI=f"#{ref_id}")
    transforms = etree.SubElement(ref, f"{{{DS}}}Transforms")
    etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm=ENVELOPED)
    etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm=EXC_C14N)
    etree.SubElement(ref, f"{{{DS}}}DigestMethod", Algorithm=SHA256)
    etree.SubElement(ref, f"{{{DS}}}DigestValue")
    etree.SubElement(sig, f"{{{DS}}}SignatureValue")
    key_info = etree.SubElement(sig, f"{{{DS}}}KeyInfo")
    x509 = etree.SubElement(etree.SubElement(key_info, f"{{{DS}}}X509Data"), f"{{{DS}}}X509Certificate")
    x509.text = cert_b64
    parent.insert(position, sig)
    return sig
