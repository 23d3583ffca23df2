"""Service providers from their SAML metadata: parse, check, fetch from a URL, and cache per process.

Metadata comes from a file (``idp sp add FILE`` or the instance's ``metadata/`` directory) or a URL (fetched,
its signature checked against a configured certificate, ``validUntil`` enforced). Everything the IdP needs
(ACS endpoints, SLO endpoints, certificates, ``AuthnRequestsSigned``) is read here once and kept in a
``SpMetadata`` value, cached by the metadata's hash so that any worker sees a change at its next request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field

from lxml import etree
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.sigver import SignatureError

from idp.core import urls
from idp.errors import IdpError
from idp.saml import crypto
from idp.storage.saml_store import SpRow

MD_NS = "urn:oasis:names:tc:SAML:2.0:metadata"
SAMLP_PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
NS = {"md": MD_NS, "ds": crypto.DSIG_NS}
MAX_METADATA_BYTES = 512 * 1024
FETCH_TIMEOUT_SECONDS = 10


class MetadataRejected(IdpError):
    """Service provider metadata that cannot be registered (unparsable, unsigned, expired, incomplete)."""

    code = "saml_metadata_rejected"
    description = "Les métadonnées SAML sont refusées."


@dataclass(frozen=True)
class Endpoint:
    """A metadata endpoint (SAML Metadata 2.2.2/2.2.3)."""

    binding: str
    location: str
    response_location: str = ""
    index: int | None = None
    is_default: bool = False


@dataclass(frozen=True)
class SpMetadata:
    """What one SP's metadata says, as the IdP uses it."""

    entity_id: str
    acs: tuple[Endpoint, ...]
    slo: tuple[Endpoint, ...] = ()
    signing_certs: tuple[bytes, ...] = ()
    encryption_certs: tuple[bytes, ...] = ()
    authn_requests_signed: bool = False
    want_assertions_signed: bool = True
    nameid_formats: tuple[str, ...] = ()
    valid_until: dt.datetime | None = None
    signing_keys: list[object] = field(default_factory=list, compare=False, repr=False)

    def default_acs(self) -> Endpoint | None:
        """The ACS used when the request names none: ``isDefault``, else the lowest index, HTTP-POST only."""
        posts = [a for a in self.acs if a.binding == BINDING_HTTP_POST]
        if not posts:
            return None
        for endpoint in posts:
            if endpoint.is_default:
                return endpoint
        return sorted(posts, key=lambda a: a.index if a.index is not None else 1 << 30)[0]

    def slo_endpoint(self) -> Endpoint | None:
        """The SP's single logout endpoint, HTTP-Redirect preferred, then HTTP-POST."""
        for binding in (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST):
            for endpoint in self.slo:
                if endpoint.binding == binding:
                    return endpoint
        return None


def _pem(b64: str) -> bytes:
    body = "".join(b64.split())
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return ("-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n").encode("ascii")


def _parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise MetadataRejected(f"validUntil illisible : {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _endpoints(descriptor: etree._Element, tag: str) -> tuple[Endpoint, ...]:
    out = []
    for el in descriptor.findall(f"md:{tag}", NS):
        index = el.get("index")
        out.append(Endpoint(binding=el.get("Binding", ""), location=el.get("Location", ""),
                            response_location=el.get("ResponseLocation", ""),
                            index=int(index) if index and index.isdigit() else None,
                            is_default=el.get("isDefault", "").lower() in ("true", "1")))
    return tuple(out)


def _certs(descriptor: etree._Element, use: str) -> tuple[bytes, ...]:
    found = []
    for kd in descriptor.findall("md:KeyDescriptor", NS):
        if kd.get("use") in (use, None):
            for cert in kd.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS):
                if cert.text and cert.text.strip():
                    found.append(_pem(cert.text))
    return tuple(found)


def _entity(entity: etree._Element, inherited_valid_until: dt.datetime | None) -> SpMetadata | None:
    descriptor = entity.find("md:SPSSODescriptor", NS)
    if descriptor is None:
        return None
    if SAMLP_PROTOCOL not in descriptor.get("protocolSupportEnumeration", ""):
        return None
    entity_id = entity.get("entityID", "")
    if not entity_id or len(entity_id) > 400:
        raise MetadataRejected("entityID absent ou trop long")
    valid_until = min(filter(None, [inherited_valid_until, _parse_time(entity.get("validUntil")),
                                    _parse_time(descriptor.get("validUntil"))]), default=None)
    acs = _endpoints(descriptor, "AssertionConsumerService")
    if not any(a.binding == BINDING_HTTP_POST for a in acs):
        raise MetadataRejected(f"{entity_id} : aucun AssertionConsumerService HTTP-POST")
    return SpMetadata(
        entity_id=entity_id, acs=acs, slo=_endpoints(descriptor, "SingleLogoutService"),
        signing_certs=_certs(descriptor, "signing"), encryption_certs=_certs(descriptor, "encryption"),
        authn_requests_signed=descriptor.get("AuthnRequestsSigned", "").lower() in ("true", "1"),
        want_assertions_signed=descriptor.get("WantAssertionsSigned", "true").lower() in ("true", "1"),
        nameid_formats=tuple((n.text or "").strip() for n in descriptor.findall("md:NameIDFormat", NS)),
        valid_until=valid_until,
    )


def check_endpoint_urls(sp: SpMetadata, *, development: bool) -> None:
    """Every ACS and SLO URL of an SP passes the one URL-safety parse and transport rule (``idp.core.urls``:
    SECURITY C15, S29) — the rule OIDC redirect URIs and CAS services follow: https, http only on a loopback
    host or in development (signed assertions are never posted in clear, Bindings 3.5.5.2)."""
    for tag, endpoints in (("AssertionConsumerService", sp.acs), ("SingleLogoutService", sp.slo)):
        for endpoint in endpoints:
            for location in filter(None, (endpoint.location, endpoint.response_location)):
                try:
                    url = urls.parse_url(location)
                except urls.UnsafeUrl as exc:
                    raise MetadataRejected(f"{sp.entity_id} : {tag} {location} refusé ({exc})") from None
                if not urls.transport_allowed(url, development=development):
                    raise MetadataRejected(
                        f"{sp.entity_id} : {tag} {location} refusé (http n'est accepté que sur la boucle locale, "
                        "127.0.0.1 ou localhost, hors mode développement : utilisez https)")
            if not endpoint.location:
                raise MetadataRejected(f"{sp.entity_id} : {tag} sans adresse (Location)")


def parse_metadata(data: bytes, *, now: dt.datetime, trusted_cert: bytes | None = None) -> list[SpMetadata]:
    """Every SP entity in a metadata document; checks its signature when ``trusted_cert`` is given."""
    if len(data) > MAX_METADATA_BYTES:
        raise MetadataRejected("métadonnées trop volumineuses")
    try:
        root = crypto.parse_xml(data)
    except (crypto.UnsafeXml, etree.XMLSyntaxError) as exc:
        raise MetadataRejected(f"métadonnées illisibles ({exc})") from None
    if trusted_cert is not None:
        try:
            crypto.verify_element(root, root, crypto.KeyCache().certificate(trusted_cert))
        except SignatureError as exc:
            raise MetadataRejected(f"signature des métadonnées invalide ({exc})") from None
    qname = etree.QName(root)
    if qname.namespace != MD_NS or qname.localname not in ("EntityDescriptor", "EntitiesDescriptor"):
        raise MetadataRejected("ce document n'est pas une métadonnée SAML")
    root_valid_until = _parse_time(root.get("validUntil"))
    entities = [root] if qname.localname == "EntityDescriptor" else root.iter(f"{{{MD_NS}}}EntityDescriptor")
    found = [sp for sp in (_entity(e, root_valid_until) for e in entities) if sp is not None]
    if not found:
        raise MetadataRejected("aucun fournisseur de service SAML (SPSSODescriptor) dans ces métadonnées")
    for sp in found:
        if sp.valid_until is not None and sp.valid_until <= now:
            raise MetadataRejected(f"{sp.entity_id} : métadonnées expirées (validUntil {sp.valid_until:%Y-%m-%d %H:%M})")
    return found


def entity_xml(data: bytes, entity_id: str) -> str:
    """The ``EntityDescriptor`` of one entity, as text (what is stored for it)."""
    root = crypto.parse_xml(data)
    if etree.QName(root).localname == "EntityDescriptor":
        return data.decode("utf-8")
    for entity in root.iter(f"{{{MD_NS}}}EntityDescriptor"):
        if entity.get("entityID") == entity_id:
            if entity.get("validUntil") is None and root.get("validUntil"):
                entity.set("validUntil", root.get("validUntil", ""))
            return etree.tostring(entity, encoding="unicode")
    raise MetadataRejected(f"{entity_id} absent des métadonnées")


def digest(text: str) -> str:
    """The hash a stored metadata document is cached under."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fetch(url: str) -> bytes:
    """Download metadata over https (size-capped, short timeout)."""
    if not url.startswith(("https://", "http://")):
        raise MetadataRejected(f"adresse de métadonnées invalide : {url}")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, headers={"Accept": "application/samlmetadata+xml, application/xml"})
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310
            data: bytes = response.read(MAX_METADATA_BYTES + 1)
    except OSError as exc:
        raise MetadataRejected(f"téléchargement impossible de {url} ({exc})") from None
    if len(data) > MAX_METADATA_BYTES:
        raise MetadataRejected("métadonnées trop volumineuses")
    return data


class MetadataCache:
    """Parsed metadata per entity, keyed by the stored document's hash (shared by the threads of a worker)."""

    def __init__(self, keys: crypto.KeyCache) -> None:
        self._keys = keys
        self._cache: dict[str, tuple[str, SpMetadata]] = {}
        self._lock = threading.Lock()

    def get(self, row: SpRow) -> SpMetadata:
        """The parsed metadata of a stored service provider (parsed once per version)."""
        cached = self._cache.get(row.entity_id)
        if cached is not None and cached[0] == row.metadata_hash:
            return cached[1]
        entities = parse_metadata(row.metadata_xml.encode("utf-8"), now=dt.datetime.min.replace(tzinfo=dt.UTC))
        metadata = next((e for e in entities if e.entity_id == row.entity_id), entities[0])
        metadata.signing_keys.extend(self._keys.certificate(c) for c in metadata.signing_certs)
        with self._lock:
            self._cache[row.entity_id] = (row.metadata_hash, metadata)
        return metadata


def certificates_pem(certs: Sequence[bytes]) -> list[str]:
    """Certificates as text (for listings)."""
    return [c.decode("ascii") for c in certs]
