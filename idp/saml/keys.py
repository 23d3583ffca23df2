"""The IdP's signing keys, read once from the keys directory and re-read only after a rotation.

``idp keys rotate`` changes the files; each worker notices at most ``key_check_interval_seconds`` later
(one ``stat`` call), so no restart is needed and no request ever reads a key file.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import xmlsec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from idp import keystore


@dataclass(frozen=True)
class KeyMaterial:
    """The current signing key (for XML and for query-string signatures) and the certificates to announce."""

    xml_key: xmlsec.Key
    private_key: rsa.RSAPrivateKey
    cert_pem: bytes
    announced: tuple[bytes, ...]
    stamp: tuple[float, ...]

    def sign_bytes(self, data: bytes) -> bytes:
        """RSA-SHA256 over raw bytes (HTTP-Redirect binding, SAML Bindings 3.4.4.1)."""
        return self.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    @property
    def cert_b64(self) -> str:
        """The current certificate's base64 body (for ``ds:X509Certificate``)."""
        return "".join(self.cert_pem.decode("ascii").strip().splitlines()[1:-1])


def _stamp(directory: Path) -> tuple[float, ...]:
    out = []
    for name in (keystore.RSA_CERT_FILE, keystore.NEXT_RSA_CERT_FILE, keystore.PREVIOUS_RSA_CERT_FILE):
        try:
            out.append((directory / name).stat().st_mtime_ns)
        except FileNotFoundError:
            out.append(0)
    return tuple(out)


def load_material(directory: Path) -> KeyMaterial:
    """Read the current key pair and announced certificates; fails closed on a missing or weak key (R12)."""
    stamp = _stamp(directory)
    keystore.check_rsa_certificate(directory / keystore.RSA_CERT_FILE)
    key_pem = (directory / keystore.RSA_KEY_FILE).read_bytes()
    cert_pem = (directory / keystore.RSA_CERT_FILE).read_bytes()
    private = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(private, rsa.RSAPrivateKey) or private.key_size < keystore.MIN_RSA_BITS:
        raise keystore.KeyStoreError(f"clé de signature RSA invalide ou trop faible : {directory}")
    # No certificate attached: the templates carry it already, and a bare key is cheaper to copy per signature.
    xml_key = xmlsec.Key.from_memory(key_pem, xmlsec.constants.KeyDataFormatPem)
    announced = tuple(p.read_bytes() for p in keystore.announced_rsa_certificates(directory))
    return KeyMaterial(xml_key=xml_key, private_key=private, cert_pem=cert_pem, announced=announced, stamp=stamp)


class SigningKeys:
    """The current ``KeyMaterial``, refreshed when the key files change."""

    def __init__(self, directory: Path, check_interval: float = 10.0) -> None:
        self.directory = directory
        self._interval = check_interval
        self._material = load_material(directory)
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    def current(self) -> KeyMaterial:
        """The key material to sign with now."""
        now = time.monotonic()
        if now - self._checked >= self._interval:
            self._checked = now
            if _stamp(self.directory) != self._material.stamp:
                with self._lock:
                    self._material = load_material(self.directory)
        return self._material

    def reload(self) -> KeyMaterial:
        """Re-read the files at once (after a rotation in this process)."""
        with self._lock:
            self._material = load_material(self.directory)
            self._checked = time.monotonic()
        return self._material
