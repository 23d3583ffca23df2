"""WSGI app for the SAML HTTP benchmark: the normal app, or (``BENCH_SAML_SIGNER=xmlsec1``) the same app
signing its answers through pysaml2's stock backend, which runs the ``xmlsec1`` program once per signature."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lxml import etree
from saml2.sigver import CryptoBackendXmlSec1

from idp import create_app
from idp.keystore import RSA_KEY_FILE

app = create_app()

if os.environ.get("BENCH_SAML_SIGNER") == "xmlsec1":
    from idp.saml import responses
    from idp.saml.keys import KeyMaterial
    from idp.saml.xmlbuild import signature_template

    services = app.extensions["idp"]
    program = CryptoBackendXmlSec1(shutil.which("xmlsec1") or "xmlsec1")
    key_file = str(Path(services.settings.path(services.settings.keys.directory)) / RSA_KEY_FILE)

    def sign_with_program(node: etree._Element, material: KeyMaterial, position: int) -> etree._Element:
        signature_template(node, node.get("ID", ""), material.cert_b64, position)
        root = node.getroottree().getroot()
        qname = etree.QName(node)
        signed = program.sign_statement(etree.tostring(root).decode(), f"{qname.namespace}:{qname.localname}",
                                        key_file, node.get("ID"))
        signed_root = etree.fromstring(signed.encode())
        signed_node = signed_root if signed_root.get("ID") == node.get("ID") else \
            next(e for e in signed_root.iter() if e.get("ID") == node.get("ID"))
        old = node.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
        new = signed_node.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
        node.replace(old, new)
        return new

    responses.sign_enveloped = sign_with_program  # type: ignore[assignment]
