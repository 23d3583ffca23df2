"""The ENT's SAML 2.0 service provider, on pysaml2's SP side (``Saml2Client``).

Its key and certificate are generated once in the data directory; its metadata (``/saml/metadata``) is what
the operator registers with ``idp sp add``. The identity provider's metadata is fetched from
``<idp>/saml/metadata`` at first use and kept in the data directory (delete the file to fetch it again).
AuthnRequests and LogoutRequests are signed (HTTP-Redirect, RSA-SHA256); assertions must be signed; the
identity provider's LogoutRequests must carry a valid Redirect-binding signature.
"""

from __future__ import annotations

import datetime as dt
import shutil
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor
from saml2.response import AuthnResponse
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID, name_id_from_string
from saml2.samlp import STATUS_SUCCESS
from saml2.sigver import verify_redirect_signature

from sp_adapters.common.app import AdapterConfig

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


class SamlFailure(Exception):
    """A SAML message this SP refuses (bad signature, unknown request, wrong audience…)."""


def _keypair(directory: Path, common_name: str) -> tuple[Path, Path]:
    key_path, cert_path = directory / "ent-saml.key", directory / "ent-saml.crt"
    if key_path.exists() and cert_path.exists():
        return key_path, cert_path
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650)).sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    key_path.touch(mode=0o600)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


class EntServiceProvider:
    """Build requests, read answers; one ``Saml2Client`` per process, built on first use."""

    def __init__(self, config: AdapterConfig) -> None:
        self.config = config
        self.entity_id = f"{config.public_url}/saml/metadata"
        self.acs_url = f"{config.public_url}/saml/acs"
        self.sls_url = f"{config.public_url}/saml/sls"
        self.idp_metadata_url = f"{config.idp_url}/saml/metadata"
        self.key_file, self.cert_file = _keypair(config.data_dir, urlsplit(config.public_url).netloc or "ent")
        self._client: Saml2Client | None = None
        self._lock = threading.Lock()

    def _sp_config(self, idp_metadata: Path | None) -> SPConfig:
        xmlsec = shutil.which("xmlsec1")
        if xmlsec is None:
            raise RuntimeError("le programme xmlsec1 est introuvable (paquet Debian xmlsec1)")
        return SPConfig().load({
            "entityid": self.entity_id, "key_file": str(self.key_file), "cert_file": str(self.cert_file),
            "xmlsec_binary": xmlsec, "metadata": {"local": [str(idp_metadata)]} if idp_metadata else {},
            "accepted_time_diff": 60, "allow_unknown_attributes": True,
            "service": {"sp": {
                "name": "ENT de démonstration",
                "endpoints": {"assertion_consumer_service": [(self.acs_url, BINDING_HTTP_POST)],
                              "single_logout_service": [(self.sls_url, BINDING_HTTP_REDIRECT)]},
                "name_id_format": [NAMEID_FORMAT_PERSISTENT], "name_id_format_allow_create": True,
                "authn_requests_signed": True, "logout_requests_signed": True,
                "want_assertions_signed": True, "want_response_signed": False,
                "allow_unsolicited": True,  # the IdP-initiated entry ("Mes services" of the identity provider)
                "signing_algorithm": RSA_SHA256, "digest_algorithm": SHA256,
            }},
        })

    def metadata(self) -> str:
        """Our metadata, for the operator of the identity provider."""
        return str(entity_descriptor(self._sp_config(None)))

    def client(self) -> Saml2Client:
        with self._lock:
            if self._client is None:
                path = self.config.data_dir / "idp-metadata.xml"
                if not path.exists():
                    answer = requests.get(self.idp_metadata_url, timeout=10)
                    answer.raise_for_status()
                    path.write_bytes(answer.content)
                self._client = Saml2Client(self._sp_config(path))
            return self._client

    def idp_entity_id(self) -> str:
        return self.idp_metadata_url

    # --- login -------------------------------------------------------------------------------------------

    def login_redirect(self, relay_state: str) -> tuple[str, str]:
        """A signed AuthnRequest (HTTP-Redirect): its id and the URL to send the browser to."""
        request_id, info = self.client().prepare_for_authenticate(
            entityid=self.idp_entity_id(), relay_state=relay_state, binding=BINDING_HTTP_REDIRECT,
            sigalg=RSA_SHA256, nameid_format=NAMEID_FORMAT_PERSISTENT)
        return str(request_id), dict(info["headers"])["Location"]

    def read_response(self, saml_response: str, outstanding: dict[str, str]) -> AuthnResponse:
        """Check the signed answer (signature, audience, destination, time, InResponseTo) and return it."""
        try:
            response = self.client().parse_authn_request_response(saml_response, BINDING_HTTP_POST,
                                                                  outstanding=outstanding)
        except Exception as exc:  # pysaml2 raises many exception types, all of them a refusal here
            raise SamlFailure(f"{type(exc).__name__}: {exc}") from exc
        if response is None or response.assertion is None:
            raise SamlFailure("réponse vide")
        return response

    # --- logout ------------------------------------------------------------------------------------------

    def _idp_slo(self) -> str:
        services = self.client().metadata.single_logout_service(self.idp_entity_id(), BINDING_HTTP_REDIRECT, "idpsso")
        if not services:
            raise SamlFailure("le fournisseur d'identité ne publie pas d'adresse de déconnexion")
        return str(services[0]["location"])

    def logout_redirect(self, name_id: str, session_index: str, relay_state: str) -> tuple[str, str]:
        """A signed LogoutRequest for this person's IdP session: its id and the URL."""
        client = self.client()
        destination = self._idp_slo()
        request_id, request = client.create_logout_request(
            destination, self.idp_entity_id(), name_id=name_id_from_string(name_id),
            session_indexes=[session_index] if session_index else None, sign=False,
            expire=None)
        info = client.apply_binding(BINDING_HTTP_REDIRECT, str(request), destination, relay_state,
                                    sign=True, sigalg=RSA_SHA256)
        return str(request_id), dict(info["headers"])["Location"]

    def read_logout_response(self, saml_response: str) -> bool:
        """Whether the identity provider confirmed our LogoutRequest."""
        try:
            response = self.client().parse_logout_request_response(saml_response, BINDING_HTTP_REDIRECT)
        except Exception as exc:
            raise SamlFailure(f"{type(exc).__name__}: {exc}") from exc
        return bool(response and response.response.status.status_code.value == STATUS_SUCCESS)

    def read_logout_request(self, args: dict[str, str]) -> tuple[Any, str, list[str]]:
        """The identity provider asks us to log someone out (front channel): check its query signature.

        Returns the parsed request, the NameID (as stored at login) and the session indexes."""
        client = self.client()
        if not args.get("Signature") or not args.get("SigAlg"):
            raise SamlFailure("demande de déconnexion non signée")
        try:
            parsed = client.parse_logout_request(args["SAMLRequest"], BINDING_HTTP_REDIRECT)
        except Exception as exc:
            raise SamlFailure(f"{type(exc).__name__}: {exc}") from exc
        if parsed is None:
            raise SamlFailure("demande de déconnexion illisible")
        message = parsed.message
        issuer = message.issuer.text if message.issuer is not None else ""
        if issuer != self.idp_entity_id():
            raise SamlFailure("émetteur inconnu")
        signed = {k: args[k] for k in ("SAMLRequest", "RelayState", "SigAlg", "Signature") if k in args}
        certs = client.metadata.certs(issuer, "any", "signing")
        if not any(verify_redirect_signature(signed, client.sec.sec_backend, cert) for _, cert in certs):
            raise SamlFailure("signature de la demande de déconnexion invalide")
        name_id: NameID | None = message.name_id
        indexes = [si.text for si in (message.session_index or [])]
        return parsed, str(name_id) if name_id is not None else "", indexes

    def logout_answer(self, parsed: Any, relay_state: str | None) -> str:
        """Our signed LogoutResponse (HTTP-Redirect) to the identity provider's request."""
        client = self.client()
        response = client.create_logout_response(parsed.message, [BINDING_HTTP_REDIRECT], sign=False)
        destination = self._idp_slo()
        info = client.apply_binding(BINDING_HTTP_REDIRECT, str(response), destination, relay_state or "",
                                    response=True, sign=True, sigalg=RSA_SHA256)
        return str(dict(info["headers"])["Location"])
