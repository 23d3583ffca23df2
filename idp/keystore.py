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


def ensure_keys(directory: Path, common_name: str, rsa_bits: int = 2048) -> list[str]:
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


# --- signing-key rollover (SECURITY R10, R11): publish the next key, promote it, retire the old one --------

NEXT_RSA_KEY_FILE = "signing-rsa-next.key"
NEXT_RSA_CERT_FILE = "signing-rsa-next.crt"
PREVIOUS_RSA_KEY_FILE = "signing-rsa-previous.key"
PREVIOUS_RSA_CERT_FILE = "signing-rsa-previous.crt"


class KeyStoreError(Exception):
    """A key file is missing, weak or in the wrong rollover stage (the message is French, for operators)."""


def check_rsa_certificate(path: Path) -> x509.Certificate:
    """Load a signing certificate; refuse RSA keys shorter than ``MIN_RSA_BITS`` (SECURITY R12)."""
    if not path.exists():
        raise KeyStoreError(f"clé de signature absente : {path} (lancez « idp init »)")
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    public = cert.public_key()
    if isinstance(public, rsa.RSAPublicKey) and public.key_size < MIN_RSA_BITS:
        raise KeyStoreError(f"clé de signature trop faible ({public.key_size} bits) : {path}")
    return cert


def rollover_stage(directory: Path) -> str:
    """``stable`` (one key), ``next-published`` (next key announced), ``promoted`` (old key still announced)."""
    if (directory / NEXT_RSA_CERT_FILE).exists():
        return "next-published"
    if (directory / PREVIOUS_RSA_CERT_FILE).exists():
        return "promoted"
    return "stable"


def publish_next(directory: Path, common_name: str, rsa_bits: int = 2048) -> list[str]:
    """Stage 1: create the next signing key; it is announced (metadata, JWKS) but does not sign yet."""
    if rollover_stage(directory) != "stable":
        raise KeyStoreError("une rotation est déjà en cours : terminez-la (promote, puis retire)")
    if rsa_bits < MIN_RSA_BITS:
        raise KeyStoreError(f"les clés RSA doivent avoir au moins {MIN_RSA_BITS} bits")
    check_rsa_certificate(directory / RSA_CERT_FILE)
    key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    _write_private(directory / NEXT_RSA_KEY_FILE, _pem(key))
    (directory / NEXT_RSA_CERT_FILE).write_bytes(self_signed_certificate(key, common_name))
    return [NEXT_RSA_KEY_FILE, NEXT_RSA_CERT_FILE]


def promote_next(directory: Path) -> None:
    """Stage 2: the next key signs from now on; the old one stays announced until it is retired."""
    if rollover_stage(directory) != "next-published":
        raise KeyStoreError("aucune clé suivante publiée : lancez d'abord « idp keys rotate publish-next »")
    check_rsa_certificate(directory / NEXT_RSA_CERT_FILE)
    os.replace(directory / RSA_KEY_FILE, directory / PREVIOUS_RSA_KEY_FILE)
    os.replace(directory / RSA_CERT_FILE, directory / PREVIOUS_RSA_CERT_FILE)
    os.replace(directory / NEXT_RSA_KEY_FILE, directory / RSA_KEY_FILE)
    os.replace(directory / NEXT_RSA_CERT_FILE, directory / RSA_CERT_FILE)


def retire_previous(directory: Path) -> None:
    """Stage 3: stop announcing the old key (once every partner has refreshed) and delete it."""
    if rollover_stage(directory) != "promoted":
        raise KeyStoreError("aucune ancienne clé à retirer : lancez d'abord « idp keys rotate promote »")
    (directory / PREVIOUS_RSA_KEY_FILE).unlink(missing_ok=True)
    (directory / PREVIOUS_RSA_CERT_FILE).unlink()


def announced_rsa_certificates(directory: Path) -> list[Path]:
    """The signing certificates to publish: the current one first, then the next or the previous one."""
    paths = [directory / RSA_CERT_FILE]
    for name in (NEXT_RSA_CERT_FILE, PREVIOUS_RSA_CERT_FILE):
        if (directory / name).exists():
            paths.append(directory / name)
    return paths
