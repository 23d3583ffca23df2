"""In-process XML signatures and encryption on libxmlsec1 (the ``xmlsec`` package), as a pysaml2 backend.

Stock pysaml2 starts the ``xmlsec1`` program two or three times per message. ``XmlSecBackend`` does the same
work inside the process and keeps every check of the program path (pysaml2 ``CryptoBackendXmlSec1`` runs it
with ``--enabled-reference-uris empty,same-doc``, ``--enabled-key-data raw-x509-cert`` and ``--id-attr``):

- one ``Reference`` only, a same-document ``#ID`` pointing at the element being verified, whose ID is unique
  in the document (XML Signature Wrapping, CVE-2021-21238);
- the key is the certificate the caller trusts (the SP metadata); ``KeyInfo`` is never read (CVE-2021-21239);
- allow-lists of signature, digest, canonicalisation and transform algorithms, checked before any
  verification and enforced again inside libxmlsec1 (no XSLT/XPath/XPointer: SECURITY S06, S08);
- a document with a DOCTYPE is refused before libxml2 builds anything (SECURITY S07).

Signing keys are read once and kept as ``xmlsec.Key`` objects.
"""

from __future__ import annotations

import threading
from pathlib import Path

import xmlsec
from lxml import etree
from saml2.sigver import CryptoBackend, EncryptError, SignatureError

DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
XENC_NS = "http://www.w3.org/2001/04/xmlenc#"
NS = {"ds": DSIG_NS, "xenc": XENC_NS}

C = xmlsec.constants
SIGNATURE_ALGORITHMS = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": C.TransformRsaSha256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": C.TransformRsaSha384,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": C.TransformRsaSha512,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": C.TransformEcdsaSha256,
}
DIGEST_ALGORITHMS = {
    "http://www.w3.org/2001/04/xmlenc#sha256": C.TransformSha256,
    "http://www.w3.org/2001/04/xmldsig-more#sha384": C.TransformSha384,
    "http://www.w3.org/2001/04/xmlenc#sha512": C.TransformSha512,
}
C14N_ALGORITHMS = {
    "http://www.w3.org/2001/10/xml-exc-c14n#": C.TransformExclC14N,
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments": C.TransformExclC14NWithComments,
}
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
REFERENCE_TRANSFORMS = {ENVELOPED: C.TransformEnveloped, **C14N_ALGORITHMS}

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"

MAX_DOCUMENT_BYTES = 512 * 1024


class UnsafeXml(ValueError):
    """The document carries a DOCTYPE, entities, or is not plain UTF-8 XML: refused before parsing."""


def refuse_doctype(data: bytes) -> None:
    """Refuse any DTD before a parser sees the bytes (billion laughs, external entities: SECURITY S07).

    Only UTF-8 (or ASCII) documents are accepted, so a DOCTYPE cannot hide behind UTF-16 bytes.
    """
    if len(data) > MAX_DOCUMENT_BYTES:
        raise UnsafeXml("document too large")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data:
        raise UnsafeXml("not UTF-8")
    upper = data.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper or b"<!ELEMENT" in upper or b"<!ATTLIST" in upper:
        raise UnsafeXml("DTD refused")
    head = data[:200].lower()
    if head.startswith((b"<?xml", b"\xef\xbb\xbf<?xml")) and b"encoding" in head.split(b"?>", 1)[0]:
        decl = head.split(b"?>", 1)[0]
        if b"utf-8" not in decl and b"utf8" not in decl and b"ascii" not in decl:
            raise UnsafeXml("only UTF-8 documents are accepted")


_PARSER = threading.local()


def _parser() -> etree.XMLParser:
    parser = getattr(_PARSER, "parser", None)
    if parser is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                                 huge_tree=False, remove_blank_text=False, collect_ids=False)
        _PARSER.parser = parser
    return parser


def parse_xml(data: bytes | str) -> etree._Element:
    """Parse untrusted XML after the DOCTYPE check, with entity expansion and network access off."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    refuse_doctype(data)
    root = etree.fromstring(data, parser=_parser())
    if root.getroottree().docinfo.doctype:
        raise UnsafeXml("DTD refused")
    return root


def _read_pem(source: str | bytes) -> bytes:
    """A PEM certificate given inline or as a file name (pysaml2 passes temporary files)."""
    if isinstance(source, bytes):
        return source
    if "-----BEGIN" in source:
        return source.encode("ascii")
    return Path(source).read_bytes()


def _as_bytes(statement: object) -> bytes:
    """pysaml2 hands documents as ``str``, ``bytes`` or ``SamlBase`` objects."""
    if isinstance(statement, bytes):
        return statement
    if hasattr(statement, "to_string"):
        return statement.to_string()  # type: ignore[no-any-return]
    return str(statement).encode("utf-8")


def _split_node_name(node_name: str) -> tuple[str, str]:
    namespace, _, local = node_name.rpartition(":")
    return namespace, local


def elements_with_id(root: etree._Element, value: str) -> list[etree._Element]:
    """Every element whose ``ID``, ``Id`` or ``id`` attribute equals ``value`` (duplicates mean wrapping)."""
    return [el for el in root.iter() if isinstance(el.tag, str)
            and value in (el.get("ID"), el.get("Id"), el.get("id"))]


def check_signature_shape(signature: etree._Element, node_id: str) -> None:
    """SAML Core 5.4: one Reference, ``URI="#<ID of the parent>"``, allowed algorithms and transforms only."""
    signed_info = signature.find("ds:SignedInfo", NS)
    if signed_info is None:
        raise SignatureError("no SignedInfo")
    if signature.find("ds:Object", NS) is not None:
        raise SignatureError("ds:Object is not allowed")
    c14n = signed_info.find("ds:CanonicalizationMethod", NS)
    if c14n is None or c14n.get("Algorithm") not in C14N_ALGORITHMS or len(c14n):
        raise SignatureError("canonicalisation method not allowed")
    method = signed_info.find("ds:SignatureMethod", NS)
    if method is None or method.get("Algorithm") not in SIGNATURE_ALGORITHMS or len(method):
        raise SignatureError("signature algorithm not allowed")
    references = signed_info.findall("ds:Reference", NS)
    if len(references) != 1:
        raise SignatureError("exactly one Reference is required")
    reference = references[0]
    if reference.get("URI") != f"#{node_id}":
        raise SignatureError("the Reference does not point at the signed element")
    transforms = reference.findall("ds:Transforms/ds:Transform", NS)
    algorithms = [t.get("Algorithm") for t in transforms]
    if not 1 <= len(algorithms) <= 2 or ENVELOPED not in algorithms \
            or any(a not in REFERENCE_TRANSFORMS for a in algorithms):
        raise SignatureError("transform not allowed")
    for transform in transforms:
        for child in transform:
            if not (isinstance(child.tag, str) and child.tag == f"{{{C14N_EXC_NS}}}InclusiveNamespaces"):
                raise SignatureError("transform parameters not allowed")
    digest = reference.find("ds:DigestMethod", NS)
    if digest is None or digest.get("Algorithm") not in DIGEST_ALGORITHMS:
        raise SignatureError("digest algorithm not allowed")


C14N_EXC_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"


def _verification_context(key: xmlsec.Key) -> xmlsec.SignatureContext:
    ctx = xmlsec.SignatureContext()
    ctx.key = key
    # The trusted key is preset; KeyInfo content (certificates, HMAC keys, retrieval methods) is never used.
    ctx.set_enabled_key_data([])
    for transform in SIGNATURE_ALGORITHMS.values():
        ctx.enable_signature_transform(transform)
    for transform in C14N_ALGORITHMS.values():
        ctx.enable_signature_transform(transform)
    for transform in REFERENCE_TRANSFORMS.values():
        ctx.enable_reference_transform(transform)
    for transform in DIGEST_ALGORITHMS.values():
        ctx.enable_reference_transform(transform)
    return ctx


class KeyCache:
    """``xmlsec.Key`` objects read once per file or PEM text (private keys and trusted certificates)."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, bytes | str], xmlsec.Key] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    def private(self, source: str | bytes, cert: bytes | None = None) -> xmlsec.Key:
        """The private key in a PEM file (or PEM bytes); cached for the life of the process."""
        cache_key = ("private", source)
        key = self._keys.get(cache_key)
        if key is None:
            data = source if isinstance(source, bytes) else Path(source).read_bytes()
            key = xmlsec.Key.from_memory(data, C.KeyDataFormatPem)
            if cert is not None:
                key.load_cert_from_memory(cert, C.KeyDataFormatCertPem)
            with self._lock:
                self._keys[cache_key] = key
        return key

    def encryption_manager(self, cert: bytes) -> xmlsec.KeysManager:
        """A keys manager holding one recipient's public key, per thread (creating one costs ~30 ms)."""
        managers = getattr(self._local, "managers", None)
        if managers is None:
            managers = self._local.managers = {}
        manager = managers.get(cert)
        if manager is None:
            if len(managers) > 200:
                managers.clear()
            manager = managers[cert] = xmlsec.KeysManager()
            manager.add_key(self.certificate(cert))
        return manager

    def certificate(self, source: str | bytes) -> xmlsec.Key:
        """The public key of a PEM certificate (inline or file), cached by content."""
        pem = _read_pem(source)
        cache_key = ("cert", pem)
        key = self._keys.get(cache_key)
        if key is None:
            key = xmlsec.Key.from_memory(pem, C.KeyDataFormatCertPem)
            with self._lock:
                if len(self._keys) > 1000:
                    self._keys.clear()
                self._keys[cache_key] = key
        return key


def _find_signed_node(root: etree._Element, node_name: str, node_id: str) -> etree._Element:
    namespace, local = _split_node_name(node_name)
    matches = elements_with_id(root, node_id)
    if len(matches) != 1:
        raise SignatureError("the signed ID must appear exactly once")
    node = matches[0]
    if etree.QName(node).localname != local or (namespace and etree.QName(node).namespace != namespace):
        raise SignatureError("the signed element is not the expected one")
    return node


def verify_element(root: etree._Element, node: etree._Element, key: xmlsec.Key) -> None:
    """Verify the enveloped signature of ``node`` (a direct ``ds:Signature`` child) with ``key``, or raise."""
    node_id = node.get("ID") or ""
    if not node_id or len(elements_with_id(root, node_id)) != 1:
        raise SignatureError("the signed ID must appear exactly once")
    signatures = node.findall("ds:Signature", NS)
    if len(signatures) != 1:
        raise SignatureError("exactly one enveloped signature is required")
    check_signature_shape(signatures[0], node_id)
    ctx = _verification_context(key)
    ctx.register_id(node, "ID")
    try:
        ctx.verify(signatures[0])
    except xmlsec.Error as exc:
        raise SignatureError(f"signature verification failed: {exc}") from None


class XmlSecBackend(CryptoBackend):
    """A pysaml2 ``CryptoBackend`` on libxmlsec1 in the process (install on ``server.sec.crypto``)."""

    def __init__(self) -> None:
        self.keys = KeyCache()

    @property
    def version(self) -> str:
        return ".".join(str(n) for n in xmlsec.get_libxmlsec_version())

    # --- signing ---------------------------------------------------------------------------------

    def sign_statement(self, statement: object, node_name: str, key_file: str, node_id: str) -> str:
        """Sign the element ``node_name`` with ID ``node_id`` in ``statement`` (its Signature template)."""
        root = etree.fromstring(_as_bytes(statement), parser=_parser())
        node = _find_signed_node(root, node_name, node_id)
        self.sign_node(node, self.keys.private(key_file))
        return etree.tostring(root, encoding="unicode")

    def sign_node(self, node: etree._Element, key: xmlsec.Key) -> None:
        """Fill in the ``ds:Signature`` template that is a direct child of ``node``."""
        template = node.find("ds:Signature", NS)
        if template is None:
            raise SignatureError("no signature template")
        ctx = xmlsec.SignatureContext()
        ctx.key = key
        ctx.register_id(node, "ID")
        try:
            ctx.sign(template)
        except xmlsec.Error as exc:
            raise SignatureError(f"signing failed: {exc}") from None

    # --- verifying -------------------------------------------------------------------------------

    def validate_signature(self, signedtext: str | bytes, cert_file: str | bytes, cert_type: str,
                           node_name: str, node_id: str) -> bool:
        """Verify the signature of the element ``node_id`` with the trusted certificate only."""
        if cert_type != "pem":
            raise SignatureError("only PEM certificates are supported")
        try:
            root = parse_xml(signedtext)
        except (UnsafeXml, etree.XMLSyntaxError) as exc:
            raise SignatureError(f"unparsable document: {exc}") from None
        node = _find_signed_node(root, node_name, node_id)
        verify_element(root, node, self.keys.certificate(cert_file))
        return True

    # --- encryption ------------------------------------------------------------------------------

    def encrypt_assertion(self, statement: object, enc_key: str, template: object, key_type: str = "",
                          node_xpath: str | None = None, node_id: str | None = None) -> str:
        """Replace the assertion inside ``EncryptedAssertion`` by its encryption (AES-256-GCM, RSA-OAEP).

        pysaml2 hands a response whose ``EncryptedAssertion`` wraps the plain assertion; its template and
        session-key type are ignored so that the algorithms are always the modern ones (SECURITY S24).
        """
        root = etree.fromstring(_as_bytes(statement), parser=_parser())
        wrappers = root.findall(".//{urn:oasis:names:tc:SAML:2.0:assertion}EncryptedAssertion")
        if not wrappers:
            raise EncryptError("no EncryptedAssertion to fill")
        for wrapper in wrappers:
            assertion = wrapper.find("{urn:oasis:names:tc:SAML:2.0:assertion}Assertion")
            if assertion is not None:
                encrypt_element(assertion, _read_pem(enc_key), self.keys)
        return etree.tostring(root, encoding="unicode")

    def encrypt(self, text: str, recv_key: str, template: str, key_type: str) -> str:
        raise EncryptError("only assertion encryption is supported")

    def decrypt(self, enctext: str, key_file: str) -> str:
        """Decrypt every ``EncryptedData`` in ``enctext`` with the private key in ``key_file``."""
        root = parse_xml(enctext)
        manager = xmlsec.KeysManager()
        manager.add_key(self.keys.private(key_file))
        for enc_data in root.findall(".//xenc:EncryptedData", NS):
            ctx = xmlsec.EncryptionContext(manager)
            try:
                ctx.decrypt(enc_data)
            except xmlsec.Error as exc:
                raise EncryptError(f"decryption failed: {exc}") from None
        return etree.tostring(root, encoding="unicode")


def encrypt_element(element: etree._Element, recipient_cert: bytes, keys: KeyCache) -> etree._Element:
    """Replace ``element`` by its ``xenc:EncryptedData`` for the holder of ``recipient_cert`` (XML Enc 1.1)."""
    doc_root = element.getroottree().getroot()
    enc_data = xmlsec.template.encrypted_data_create(doc_root, C.TransformAes256Gcm, type=C.TypeEncElement,
                                                     ns="xenc")
    xmlsec.template.encrypted_data_ensure_cipher_value(enc_data)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(enc_data, ns="ds")
    enc_key = xmlsec.template.add_encrypted_key(key_info, C.TransformRsaOaep)
    xmlsec.template.encrypted_data_ensure_cipher_value(enc_key)
    ctx = xmlsec.EncryptionContext(keys.encryption_manager(recipient_cert))
    ctx.key = xmlsec.Key.generate(C.KeyDataAes, 256, C.KeyDataTypeSession)
    try:
        return ctx.encrypt_xml(enc_data, element)
    except xmlsec.Error as exc:
        raise EncryptError(f"encryption failed: {exc}") from None
