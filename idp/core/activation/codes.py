"""One-time codes and tokens: generated with the CSPRNG, stored as HMAC-SHA256 with the secret key.

The alphabet has 31 symbols without look-alikes (no 0/O, 1/I/L), so a code read on a phone screen is typed
right the first time; six of them give 31⁶ ≈ 887 million values against 5 attempts (SECURITY A04).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 6
MAX_CODE_INPUT = 32
_NOISE = re.compile(r"[\s\-.]+")

assert len(ALPHABET) == 31 and not set("01ILO") & set(ALPHABET)


def new_code(length: int = CODE_LENGTH) -> str:
    """A fresh random code, e.g. ``K7XQ2M``."""
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def normalise_code(typed: str) -> str:
    """What a person typed as a code: NFKC, upper case, spaces and dashes removed."""
    return _NOISE.sub("", unicodedata.normalize("NFKC", typed[:MAX_CODE_INPUT])).upper()


def keyed_hash(secret: str, *parts: str) -> str:
    """HMAC-SHA256 (hex) of the parts, separated so that no two different lists give the same input."""
    message = "\x1f".join(parts).encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def code_hash(secret: str, purpose: str, transaction_id: str, code: str) -> str:
    """The stored form of a code: bound to its purpose and transaction (SECURITY A06, A07)."""
    return keyed_hash(secret, "code", purpose, transaction_id, code)


def same_code(secret: str, purpose: str, transaction_id: str, typed: str, stored_hash: str) -> bool:
    """Compare a typed code with the stored hash in constant time."""
    candidate = code_hash(secret, purpose, transaction_id, normalise_code(typed))
    return hmac.compare_digest(candidate, stored_hash)


def new_token() -> str:
    """A 256-bit random token for a browser or a link."""
    return secrets.token_urlsafe(32)


def token_id(token: str) -> str:
    """The stored id of a transaction token (SHA-256: the token itself is already 256 random bits)."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()
