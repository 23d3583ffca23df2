"""Our IdP metadata (SAML Metadata 2.4.3): signed, with ``validUntil``/``cacheDuration``, current and next
signing certificates during a rollover (SECURITY S25, R11); ``WantAuthnRequestsSigned="true"`` tells the truth:
every SP must sign its AuthnRequests unless the operator exempted it (``idp sp set --allow-unsigned-requests``).
"""

from __future__ import annotations

import datetime as dt
import threading

from lxml import etree
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT

from idp.saml.config import SamlConfig
from idp.saml.crypto import XmlSecBackend
from idp.saml.keys import KeyMaterial, SigningKeys
from idp.saml.signing import sign_enveloped
from idp.saml.xmlbuild import DS, MD, instant, new_id, sub

SSO_PATHS = {BINDING_HTTP_REDIRECT: "/saml/sso/redirect", BINDING_HTTP_POST: "/saml/sso/post"}
SLO_PATHS = {BINDING_HTTP_REDIRECT: "/saml/slo/redirect", BINDING_HTTP_POST: "/saml/slo/post"}


def _cert_body(pem: bytes) -> str:
    return "".join(pem.decode("ascii").strip().splitlines()[1:-1])


def build_metadata(config: SamlConfig, material: KeyMaterial, backend: XmlSecBackend, now: dt.datetime) -> bytes:
    """The signed ``EntityDescriptor`` of this identity provider."""
    doc_id = new_id()
    root = etree.Element(f"{{{MD}}}EntityDescriptor", nsmap={"md": MD, "ds": DS},
                         entityID=config.entity_id, ID=doc_id, validUntil=instant(now + config.metadata_valid_for),
                         cacheDuration=config.metadata_cache_duration)
    idp = sub(root, MD, "IDPSSODescriptor", protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol",
              WantAuthnRequestsSigned="true")  # the default for every SP (``checks.signature_required``)
    for pem in material.announced:
        key_descriptor = sub(idp, MD, "KeyDescriptor", use="signing")
        x509 = sub(sub(sub(key_descriptor, DS, "KeyInfo"), DS, "X509Data"), DS, "X509Certificate")
        x509.text = _cert_body(pem)
    for binding, path in SLO_PATHS.items():
        sub(idp, MD, "SingleLogoutService", Binding=binding, Location=config.url(path))
    for name_format in (NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT):
        sub(idp, MD, "NameIDFormat", name_format)
    for binding, path in SSO_PATHS.items():
        sub(idp, MD, "SingleSignOnService", Binding=binding, Location=config.url(path))
    sign_enveloped(root, material, 0)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")  # type: ignore[no-any-return]


class MetadataPublisher:
    """Serves the signed metadata, rebuilt when keys change or a tenth of its validity has passed."""

    def __init__(self, config: SamlConfig, keys: SigningKeys, backend: XmlSecBackend) -> None:
        self._config, self._keys, self._backend = config, keys, backend
        self._cached: tuple[tuple[float, ...], dt.datetime, bytes] | None = None
        self._lock = threading.Lock()

    def document(self, now: dt.datetime) -> bytes:
        """The current signed metadata document."""
        material = self._keys.current()
        cached = self._cached
        if cached is None or cached[0] != material.stamp or now - cached[1] > self._config.metadata_valid_for / 10 \
                or now < cached[1]:
            with self._lock:
                self._cached = cached = (material.stamp, now, build_metadata(self._config, material, self._backend, now))
        return cached[2]
