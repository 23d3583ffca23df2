"""Keys on disk: the secret key and the signing keys, generated once by ``idp init`` with 0600 permissions.

Keys are never regenerated silently: start-up with a missing or weak configured key fails (SECURITY R12).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

SECRET_FILE = "secret.key"
PAIRWISE_FILE = "pairwise.key"
RSA_KEY_FILE = "signing-rsa.key"
RSA_CERT_FILE = "signing-rsa.crt"
EC_KEY_FILE = "signing-ec.key"
MIN_RSA_BITS = 2048


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def self_signed_certificate(key: rsa.RSAPrivateKey, common_name: str, years: int = 10) -> bytes:
    """A self-signed certificate carrying the SAML signing key (SAML trusts the key, not a CA)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365 * years)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def ensure_keys(directory: Path, common_name: str, rsa_bits: int = 3072) -> list[str]:
    """Create whatever key is missing in ``directory``; return the names of the files created."""
    if rsa_bits < MIN_RSA_BITS:
        raise ValueError(f"RSA keys must have at least {MIN_RSA_BITS} bits")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    created: list[str] = []
    if not (directory / SECRET_FILE).exists():
        _write_private(directory / SECRET_FILE, secrets.token_urlsafe(48).encode())
        created.append(SECRET_FILE)
    if not (directory / PAIRWISE_FILE).exists():
        # Pairwise subject ids derive from this salt: it must never change (unlike the secret key).
        _write_private(directory / PAIRWISE_FILE, secrets.token_urlsafe(48).encode())
        created.append(PAIRWISE_FILE)
    if not (directory / RSA_KEY_FILE).exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
        _write_private(directory / RSA_KEY_FILE, _pem(key))
        (directory / RSA_CERT_FILE).write_bytes(self_signed_certificate(key, common_name))
        created += [RSA_KEY_FILE, RSA_CERT_FILE]
    if not (directory / EC_KEY_FILE).exists():
        _write_private(directory / EC_KEY_FILE, _pem(ec.generate_private_key(ec.SECP256R1())))
        created.append(EC_KEY_FILE)
    return created
