"""Everything an incoming SAML message goes through before anything is shown or sent.

Order matters (SECURITY S01–S14): size caps and a capped inflate on the raw bytes, then a DOCTYPE refusal,
then one hardened parse (lxml; the same tree is checked and read, so no parser differential), then the
issuer's metadata, the signature (required unless the operator exempted that SP, see ``signature_required``;
raw query bytes for HTTP-Redirect; only the metadata keys; only the root element counts), ``Destination``, the ACS from metadata, freshness with clock
skew, and the replay cache shared by every worker in the database.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from lxml import etree
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT, NAMEID_FORMAT_UNSPECIFIED
from saml2.samlp import STATUS_INVALID_NAMEID_POLICY, STATUS_REQUEST_DENIED, STATUS_REQUESTER
from saml2.sigver import SignatureError

from idp.core import urls
from idp.core.i18n import N_
from idp.saml import authn_context, crypto
from idp.saml.binding import Inbound, RedirectParts, b64decode_strict
from idp.saml.config import SamlConfig
from idp.saml.errors import (
    RELAY_STATE_TOO_LONG,
    SamlBadSignature,
    SamlInvalidRequest,
    SamlReplay,
    SamlRequestDenied,
    SamlUnknownServiceProvider,
    SamlUnsigned,
    SamlUntrustedEndpoint,
)
from idp.saml.registry import Endpoint, SpMetadata
from idp.saml.xmlbuild import SAML, SAMLP

NS = {"samlp": SAMLP, "saml": SAML, "ds": crypto.DSIG_NS}
SUPPORTED_NAMEID = (NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT, NAMEID_FORMAT_UNSPECIFIED)
QUERY_SIG_ALGS: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": hashes.SHA512,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": hashes.SHA256,
}
#: IDs are echoed, never interpreted (S27): any printable value without spaces, up to 256 characters.
ID_RE = re.compile(r"^[^\s\x00-\x1f\x7f]{1,256}$")
FRACTION_RE = re.compile(r"(\.\d{1,6})\d*")


@dataclass(frozen=True)
class CheckedAuthnRequest:
    """An AuthnRequest that passed every check: what the answer needs (JSON-serialisable via ``payload``)."""

    sp: str
    request_id: str
    acs_url: str
    relay_state: str | None
    force_authn: bool
    passive: bool
    nameid_format: str | None
    allow_create: bool
    signed: bool
    #: Replay-cache key, consumed when the request is answered or parked for the login page ("" = done).
    replay_key: str = ""
    #: ``AuthnContextClassRef`` values that satisfy the request's ``RequestedAuthnContext`` (empty: any).
    authn_classes: tuple[str, ...] = ()

    def payload(self) -> dict[str, object]:
        """The state kept with the common login's authentication request."""
        return {"sp": self.sp, "id": self.request_id, "acs": self.acs_url, "rs": self.relay_state,
                "fmt": self.nameid_format, "create": self.allow_create, "force": self.force_authn,
                "passive": self.passive, "signed": self.signed, "rk": self.replay_key,
                "acx": list(self.authn_classes)}

    @classmethod
    def from_payload(cls, data: dict[str, object]) -> CheckedAuthnRequest:
        """Back from ``payload()``."""
        return cls(sp=str(data["sp"]), request_id=str(data["id"] or ""), acs_url=str(data["acs"]),
                   relay_state=data.get("rs") if isinstance(data.get("rs"), str) else None,  # type: ignore[arg-type]
                   force_authn=bool(data.get("force")), passive=bool(data.get("passive")),
                   nameid_format=data.get("fmt") if isinstance(data.get("fmt"), str) else None,  # type: ignore[arg-type]
                   allow_create=bool(data.get("create", True)), signed=bool(data.get("signed")),
                   replay_key=str(data.get("rk") or ""),
                   authn_classes=tuple(str(c) for c in data.get("acx") or ()))  # type: ignore[attr-defined]


# --- reading the verified tree -----------------------------------------------------------------------------


def text_of(element: etree._Element | None) -> str:
    """The text of an identifier element; comments or children inside it are refused (CVE-2017-11427)."""
    if element is None:
        return ""
    if len(element):
        raise SamlInvalidRequest()
    return (element.text or "").strip()


def issuer_of(root: etree._Element) -> str:
    """The ``saml:Issuer`` child of the message root."""
    return text_of(root.find("saml:Issuer", NS))


def parse_instant(value: str | None) -> dt.datetime:
    """``xs:dateTime`` (fractions of any length, ``Z`` or offset) as an aware UTC datetime."""
    if not value:
        raise SamlInvalidRequest()
    try:
        parsed = dt.datetime.fromisoformat(FRACTION_RE.sub(r"\1", value.strip()).replace("Z", "+00:00"))
    except ValueError:
        raise SamlInvalidRequest() from None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def message_id(root: etree._Element) -> str:
    """The message ``ID`` (an NCName of reasonable length)."""
    value = root.get("ID", "")
    if not ID_RE.match(value):
        raise SamlInvalidRequest()
    return value


# --- signatures ------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _public_key(pem: bytes) -> object:
    return x509.load_pem_x509_certificate(pem).public_key()


def _verify_query(parts: RedirectParts, sp: SpMetadata) -> None:
    algorithm = QUERY_SIG_ALGS.get(parts.sig_alg or "")
    if algorithm is None or not parts.signature:
        raise SamlBadSignature()
    try:
        signature = b64decode_strict(parts.signature)
    except SamlInvalidRequest:
        raise SamlBadSignature() from None
    for pem in sp.signing_certs:
        key = _public_key(pem)
        try:
            if isinstance(key, rsa.RSAPublicKey) and "rsa-" in (parts.sig_alg or ""):
                key.verify(signature, parts.signed_octets, padding.PKCS1v15(), algorithm())
                return
            if isinstance(key, ec.EllipticCurvePublicKey) and "ecdsa-" in (parts.sig_alg or ""):
                key.verify(signature, parts.signed_octets, ec.ECDSA(algorithm()))
                return
        except InvalidSignature:
            continue
    raise SamlBadSignature()


def _verify_enveloped(root: etree._Element, sp: SpMetadata) -> None:
    if not sp.signing_keys:
        raise SamlBadSignature()
    for key in sp.signing_keys:
        try:
            crypto.verify_element(root, root, key)  # type: ignore[arg-type]
            return
        except SignatureError:
            continue
    raise SamlBadSignature()


def verify_signature(inbound: Inbound, sp: SpMetadata, required: bool) -> bool:
    """Check the message signature with the SP's metadata keys; True when signed, raise when bad or missing.

    Which form counts depends on the binding the message came by (SECURITY S30): on HTTP-Redirect only the
    query signature (``SigAlg`` and ``Signature`` over the raw octets, Bindings 3.4.4.1, which also requires
    any ``<ds:Signature>`` to be removed before encoding), so a Redirect message carrying only an enveloped
    XML signature is unsigned; on HTTP-POST only the enveloped signature over the root element (Bindings
    3.5.4; a signed element anywhere else, XSW, does not make the message signed, and the fields are read
    from the root only). Whether a signature is *required* is the caller's decision (``required``); this is the
    one place that decides which form satisfies it, for AuthnRequest, LogoutRequest and LogoutResponse alike.
    """
    if inbound.binding == BINDING_HTTP_REDIRECT:
        parts = inbound.redirect
        if parts is not None and (parts.signature or parts.sig_alg):
            _verify_query(parts, sp)
            return True
    elif inbound.root.find("ds:Signature", NS) is not None:
        _verify_enveloped(inbound.root, sp)
        return True
    if required:
        raise SamlUnsigned()
    return False


def signature_required(sp: SpMetadata, allow_unsigned: bool) -> bool:
    """Whether an AuthnRequest from ``sp`` must be signed: always, unless the operator exempted this SP
    (``idp sp set --allow-unsigned-requests``) and its own metadata does not promise signed requests.

    Our metadata says ``WantAuthnRequestsSigned="true"`` (SAML Metadata 2.4.3), which SP libraries read to
    decide whether to sign (python3-saml's ``merge_settings``); an SP whose metadata says
    ``AuthnRequestsSigned="true"`` (Metadata 2.4.4) is held to it even when exempted, since an unsigned
    request in its name is then a forgery.
    """
    return sp.authn_requests_signed or not allow_unsigned


# --- AuthnRequest --------------------------------------------------------------------------------------


def _choose_acs(root: etree._Element, sp: SpMetadata) -> Endpoint:
    """The ACS from metadata (SAML Profiles 4.1.4.1): by URL, by index, or the default; HTTP-POST only."""
    url = root.get("AssertionConsumerServiceURL")
    index = root.get("AssertionConsumerServiceIndex")
    binding = root.get("ProtocolBinding")
    if url is not None and index is not None:
        raise SamlInvalidRequest()
    if binding is not None and binding != BINDING_HTTP_POST:
        raise SamlUntrustedEndpoint()
    if url is not None:
        if not urls.is_safe(url):  # dot-segments, encoded slashes… (SECURITY C15), before any comparison
            raise SamlUntrustedEndpoint()
        for endpoint in sp.acs:
            if endpoint.location == url and endpoint.binding == BINDING_HTTP_POST:
                return endpoint
        raise SamlUntrustedEndpoint()
    if index is not None:
        for endpoint in sp.acs:
            if endpoint.index is not None and str(endpoint.index) == index.strip():
                if endpoint.binding != BINDING_HTTP_POST:
                    raise SamlUntrustedEndpoint()
                return endpoint
        raise SamlUntrustedEndpoint()
    default = sp.default_acs()
    if default is None:
        raise SamlUntrustedEndpoint()
    return default


def check_destination(root: etree._Element, expected: str, signed: bool) -> None:
    """``Destination`` must name the endpoint that received the message; required when signed (S12)."""
    destination = root.get("Destination")
    if destination is None:
        if signed:
            raise SamlInvalidRequest(N_(
                "Requête invalide : la demande signée ne précise pas son destinataire. Retournez sur le service et "
                "signalez-lui ce problème."))
        return
    if destination != expected:
        raise SamlInvalidRequest(N_("Requête invalide : la demande était destinée à un autre serveur. Retournez "
                                    "sur le service et signalez-lui ce problème."))


def check_fresh(root: etree._Element, config: SamlConfig, now: dt.datetime) -> None:
    """``IssueInstant`` within message lifetime + skew in the past, skew in the future (S13)."""
    issued = parse_instant(root.get("IssueInstant"))
    if issued > now + config.clock_skew or issued < now - config.message_lifetime - config.clock_skew:
        raise SamlRequestDenied(STATUS_REQUESTER, STATUS_REQUEST_DENIED, "IssueInstant hors délai")


def replay_key(issuer: str, request_id: str) -> str:
    """The replay-cache key of a message: a hash of issuer and ID."""
    return hashlib.sha256(f"{issuer}\x00{request_id}".encode()).hexdigest()


def _nameid_policy(root: etree._Element) -> tuple[str | None, bool]:
    policy = root.find("samlp:NameIDPolicy", NS)
    if policy is None:
        return None, True
    fmt = policy.get("Format")
    if fmt is not None and fmt not in SUPPORTED_NAMEID:
        raise SamlRequestDenied(STATUS_REQUESTER, STATUS_INVALID_NAMEID_POLICY, "format non pris en charge")
    allow = policy.get("AllowCreate", "true").strip().lower() in ("true", "1")
    return (None if fmt == NAMEID_FORMAT_UNSPECIFIED else fmt), allow


def _requested_authn_context(root: etree._Element) -> tuple[str, ...]:
    """The classes that satisfy ``RequestedAuthnContext`` (empty when absent); ``SamlRequestDenied`` if none."""
    requested = root.find("samlp:RequestedAuthnContext", NS)
    if requested is None:
        return ()
    class_refs = tuple(text_of(el) for el in requested.findall("saml:AuthnContextClassRef", NS))
    has_decls = requested.find("saml:AuthnContextDeclRef", NS) is not None
    try:
        return authn_context.acceptable_classes(requested.get("Comparison"), class_refs, has_decls)
    except authn_context.AuthnContextRefused as refused:
        raise SamlRequestDenied(refused.status, refused.sub_status, refused.message) from None


@dataclass
class AuthnRequestChecker:
    """Checks an AuthnRequest against the issuer's metadata; ``lookup`` finds an SP.

    ``consume`` records the request ID in the replay cache at once; when it is None the caller consumes
    ``replay_key`` in the transaction that answers or parks the request (one database round trip less).
    """

    config: SamlConfig
    lookup: Callable[[str], SpMetadata | None]
    consume: Callable[[str, dt.datetime], bool] | None = None
    #: Whether the operator exempted an SP (by entity id) from signing its requests; none is by default.
    allows_unsigned: Callable[[str], bool] = lambda entity_id: False

    def check(self, inbound: Inbound, endpoint_url: str, now: dt.datetime) -> tuple[CheckedAuthnRequest, SpMetadata]:
        """Run every check in order; raises a page error (untrusted) or ``SamlRequestDenied`` (to the ACS).

        ``SamlRequestDenied`` carries ``acs``/``sp``/``request_id`` so the caller can answer the SP.
        """
        root = inbound.root
        if etree.QName(root).text != f"{{{SAMLP}}}AuthnRequest" or root.get("Version") != "2.0":
            raise SamlInvalidRequest()
        request_id = message_id(root)
        issuer = issuer_of(root)
        sp = self.lookup(issuer) if issuer else None
        if sp is None:
            raise SamlUnknownServiceProvider()
        signed = verify_signature(inbound, sp, signature_required(sp, self.allows_unsigned(sp.entity_id)))
        check_destination(root, endpoint_url, signed)
        acs = _choose_acs(root, sp)
        relay_state = inbound.relay_state
        if relay_state is not None and len(relay_state.encode("utf-8")) > self.config.relay_state_max_bytes:
            raise SamlInvalidRequest(RELAY_STATE_TOO_LONG)
        try:
            check_fresh(root, self.config, now)
            key = replay_key(issuer, request_id)
            if self.consume is not None and not self.consume(key, now + self.config.replay_ttl):
                raise SamlReplay()
            fmt, allow_create = _nameid_policy(root)
            classes = _requested_authn_context(root)
        except SamlRequestDenied as denied:
            denied.acs, denied.sp, denied.request_id, denied.relay_state = acs.location, sp, request_id, relay_state  # type: ignore[attr-defined]
            raise
        truthy = ("true", "1")
        checked = CheckedAuthnRequest(
            sp=sp.entity_id, request_id=request_id, acs_url=acs.location, relay_state=relay_state,
            force_authn=root.get("ForceAuthn", "").strip().lower() in truthy,
            passive=root.get("IsPassive", "").strip().lower() in truthy,
            nameid_format=fmt, allow_create=allow_create, signed=signed,
            replay_key="" if self.consume is not None else key, authn_classes=classes,
        )
        return checked, sp
