"""Hand-made SAML requests for the attack tests: built with lxml, signed with python3-saml's signer (xmlsec)
or with ``cryptography`` for query signatures, so every field can be bent."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import zlib
from typing import Any
from urllib.parse import quote_plus

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
SSO_POST = "https://idp.test/saml/sso/post"
SSO_REDIRECT = "https://idp.test/saml/sso/redirect"


def instant(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def authn_request(issuer: str, now: dt.datetime, *, request_id: str | None = None, destination: str | None = SSO_POST,
                  acs: str | None = None, binding: str | None = POST, index: str | None = None,
                  nameid_format: str | None = None, allow_create: str | None = None, force: bool = False,
                  passive: bool = False) -> etree._Element:
    """An AuthnRequest element with the given fields (None leaves an attribute out)."""
    attrs = {"ID": request_id or "_" + secrets.token_hex(16), "Version": "2.0", "IssueInstant": instant(now)}
    for name, value in (("Destination", destination), ("AssertionConsumerServiceURL", acs),
                        ("ProtocolBinding", binding), ("AssertionConsumerServiceIndex", index)):
        if value is not None:
            attrs[name] = value
    if force:
        attrs["ForceAuthn"] = "true"
    if passive:
        attrs["IsPassive"] = "true"
    root = etree.Element(f"{{{SAMLP}}}AuthnRequest", attrs, nsmap={"samlp": SAMLP, "saml": SAML})
    etree.SubElement(root, f"{{{SAML}}}Issuer").text = issuer
    if nameid_format or allow_create:
        policy = etree.SubElement(root, f"{{{SAMLP}}}NameIDPolicy")
        if nameid_format:
            policy.set("Format", nameid_format)
        if allow_create:
            policy.set("AllowCreate", allow_create)
    return root


def sign(root: etree._Element, key: bytes, cert: bytes, *, alg: str = RSA_SHA256, digest: str = SHA256) -> bytes:
    """An enveloped signature over the root (python3-saml's signer)."""
    signed = OneLogin_Saml2_Utils.add_sign(etree.tostring(root), key.decode(), cert.decode(),
                                           sign_algorithm=alg, digest_algorithm=digest)
    return signed if isinstance(signed, bytes) else signed.encode()


def post(client: Any, xml: bytes, relay_state: str | None = None) -> Any:
    data = {"SAMLRequest": base64.b64encode(xml).decode()}
    if relay_state is not None:
        data["RelayState"] = relay_state
    return client.post("/saml/sso/post", data=data)


def deflate(xml: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(xml) + compressor.flush()


def redirect_query(xml: bytes, *, relay_state: str | None = None, key: bytes | None = None,
                   sig_alg: str = RSA_SHA256, param: str = "SAMLRequest") -> str:
    """A Redirect-binding query string, signed over its exact octets when ``key`` is given."""
    query = f"{param}={quote_plus(base64.b64encode(deflate(xml)).decode())}"
    if relay_state is not None:
        query += f"&RelayState={quote_plus(relay_state)}"
    if key is not None:
        query += f"&SigAlg={quote_plus(sig_alg)}"
        private = serialization.load_pem_private_key(key, password=None)
        digest = hashes.SHA1() if sig_alg.endswith("sha1") else hashes.SHA256()  # noqa: S303 - attack test
        signature = private.sign(query.encode(), padding.PKCS1v15(), digest)  # type: ignore[union-attr]
        query += f"&Signature={quote_plus(base64.b64encode(signature).decode())}"
    return query


def redirect(client: Any, xml: bytes, **kwargs: Any) -> Any:
    return client.get("/saml/sso/redirect?" + redirect_query(xml, **kwargs))


def response_xml(page: str) -> etree._Element:
    """The Response in our autopost page, parsed with the standard library's parser (independent of lxml)."""
    from tests.protocols.saml.conftest import autopost

    return etree.fromstring(base64.b64decode(autopost(page)["SAMLResponse"]))
