"""Enveloped XML signatures on the messages we emit: RSA-SHA256 over exclusive canonicalisation (SAML Core 5.4).

The same construction libxmlsec1 makes from a template (``XmlSecBackend.sign_node``), done directly: the
reference digest is taken over the element *before* its ``ds:Signature`` is inserted, which is exactly what
the enveloped-signature transform gives the verifier (the signature is inserted without any whitespace
around it), then ``SignedInfo`` is canonicalised in place and signed with the key loaded once
(``KeyMaterial``). libxml2 does both canonicalisations (through lxml) and OpenSSL the RSA signature (through
``cryptography``); libxmlsec1's transform chain, key matching and ``KeyInfo`` processing, about a third of
its signing time, are skipped. Every signature is checked by independent verifiers in the tests (libxmlsec1
in process, python3-saml, pysaml2 with the ``xmlsec1`` program).
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from idp.saml.keys import KeyMaterial
from idp.saml.xmlbuild import signature_template


def _c14n(element: etree._Element) -> bytes:
    """Exclusive XML canonicalisation without comments and without an InclusiveNamespaces prefix list."""
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)  # type: ignore[no-any-return]


def sign_enveloped(node: etree._Element, material: KeyMaterial, position: int) -> etree._Element:
    """Insert a complete enveloped ``ds:Signature`` as child ``position`` of ``node`` (which has an ``ID``)."""
    node_id = node.get("ID")
    if not node_id:
        raise ValueError("the signed element needs an ID")
    if node.find("{http://www.w3.org/2000/09/xmldsig#}Signature") is not None:
        raise ValueError("the element is already signed")
    digest = hashlib.sha256(_c14n(node)).digest()
    signature = signature_template(node, node_id, material.cert_b64, position)
    signed_info, signature_value = signature[0], signature[1]
    signed_info[2][2].text = base64.b64encode(digest).decode("ascii")  # Reference / DigestValue
    value = material.private_key.sign(_c14n(signed_info), padding.PKCS1v15(), hashes.SHA256())
    signature_value.text = base64.b64encode(value).decode("ascii")
    return signature
