"""Verifying JWTs others send us (client assertions, ``id_token_hint``), closed against known JOSE attacks.

SECURITY O09: a compact JWS of at most 8 KiB; the header is read first and refused when it names an
algorithm outside the one pinned for this use (so ``none`` and HS256 keyed with our public key never reach
a verifier), carries ``crit`` (we understand no extension), points to keys of its own (``jwk``, ``jku``,
``x5u``, ``x5c``) or asks for compression (``zip``). Only then does joserfc check the signature, with the
algorithms pinned again.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey

MAX_JWT_BYTES = 8192
#: Header members that would let the sender choose the verification key or the processing.
FORBIDDEN_HEADERS = frozenset({"crit", "jwk", "jku", "x5u", "x5c", "zip"})
#: Asymmetric signatures we accept from others; never ``none`` nor HMAC.
ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})


class JwtRejected(Exception):
    """The JWT is malformed, uses a forbidden header or algorithm, or its signature does not verify."""


def _b64(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError) as exc:
        raise JwtRejected("bad base64url") from exc


def read_header(token: str) -> dict[str, Any]:
    """The protected header of a compact JWS, after the size and shape checks."""
    if not isinstance(token, str) or len(token) > MAX_JWT_BYTES:
        raise JwtRejected("token too large")
    parts = token.split(".")
    if len(parts) != 3:
        raise JwtRejected("not a compact JWS")  # a 5-part JWE is refused here too
    try:
        header = json.loads(_b64(parts[0]))
    except ValueError as exc:
        raise JwtRejected("bad header") from exc
    if not isinstance(header, dict):
        raise JwtRejected("bad header")
    if FORBIDDEN_HEADERS & header.keys():
        raise JwtRejected(f"forbidden header {sorted(FORBIDDEN_HEADERS & header.keys())[0]}")
    return header


def verify(token: str, keys: KeySet | RSAKey | ECKey, algorithms: Collection[str]) -> dict[str, Any]:
    """Check header hygiene, then the signature with ``algorithms`` pinned; return the claims."""
    header = read_header(token)
    alg = header.get("alg")
    if alg not in algorithms or alg not in ASYMMETRIC:
        raise JwtRejected(f"algorithm {alg!r} not accepted here")
    try:
        decoded = jwt.decode(token, keys, algorithms=list(algorithms))
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise JwtRejected(f"signature: {type(exc).__name__}") from exc
    claims = decoded.claims
    if not isinstance(claims, dict):
        raise JwtRejected("claims are not an object")
    return claims


def import_client_keys(jwks_json: str) -> KeySet:
    """A client's registered public JWKS (private members and symmetric keys are refused)."""
    try:
        data = json.loads(jwks_json)
    except ValueError as exc:
        raise JwtRejected("JWKS invalide") from exc
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not keys:
        raise JwtRejected("JWKS invalide")
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC") or "d" in key:
            raise JwtRejected("JWKS invalide : seules des clés publiques RSA ou EC sont acceptées")
    try:
        return KeySet.import_key_set({"keys": keys})
    except (JoseError, ValueError, TypeError) as exc:
        raise JwtRejected("JWKS invalide") from exc


# --- signing what we issue -------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@lru_cache(maxsize=64)
def _header_segment(alg: str, kid: str, typ: str) -> str:
    return _b64url(json.dumps({"alg": alg, "kid": kid, "typ": typ}, separators=(",", ":")).encode())


def sign_compact(claims: dict[str, Any], key: RSAKey | ECKey, kid: str, alg: str, typ: str = "JWT") -> str:
    """A compact JWS of ``claims`` (RFC 7515 §7.1) with our own key: RS256 (PKCS#1 v1.5) or ES256 (r || s).

    The same bytes joserfc produces, without its per-call header and key-usage checks: the header is built
    once per key, the claims are ours (never caller-chosen members), the key was checked when it was loaded.
    """
    if alg not in ("RS256", "ES256"):
        raise ValueError(f"unsupported signing algorithm {alg}")
    signing_input = (_header_segment(alg, kid, typ) + "."
                     + _b64url(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())).encode()
    private = key.private_key
    if alg == "RS256" and isinstance(private, rsa.RSAPrivateKey):
        signature = private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "ES256" and isinstance(private, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        raise ValueError(f"the {alg} key is not a private key of the right type")
    return signing_input.decode("ascii") + "." + _b64url(signature)
