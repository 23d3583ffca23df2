"""Second factors of staff accounts: TOTP (RFC 6238, with pyotp) and passkeys (WebAuthn Level 2, with the
``webauthn`` package). Only public keys and a sealed TOTP secret are stored; challenges are single use."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import pyotp
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from idp.core.staff.errors import SecondFactorRejected

#: RFC 6238 §5.2: one step either side for clock drift (a code lives at most 90 s).
TOTP_DRIFT_STEPS = 1
TOTP_ISSUER = "Console établissement"


class Sealer(Protocol):
    """Encrypts small documents under a key derived from the secret key (AES-GCM in storage)."""

    def seal(self, data: dict[str, str]) -> str: ...
    def open(self, token: str) -> dict[str, str]: ...


def new_totp_secret() -> str:
    """A random base32 secret of 160 bits (RFC 4226 §4 recommends at least 128)."""
    return pyotp.random_base32(32)


def totp_uri(secret: str, email: str, product: str) -> str:
    """The ``otpauth://`` address authenticator apps read (Key Uri Format)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=f"{product} – {TOTP_ISSUER}")


def totp_step(secret: str, code: str, now_epoch: float) -> int | None:
    """The time step a 6-digit code belongs to (within the allowed drift), or None (RFC 6238 §4)."""
    cleaned = "".join(c for c in code if c.isdigit())
    if len(cleaned) != 6:
        return None
    totp = pyotp.TOTP(secret)
    step = int(now_epoch // totp.interval)
    for candidate in range(step - TOTP_DRIFT_STEPS, step + TOTP_DRIFT_STEPS + 1):
        if totp.verify(cleaned, for_time=candidate * totp.interval, valid_window=0):
            return candidate
    return None


@dataclass(frozen=True)
class RelyingParty:
    """Our WebAuthn relying party: its id is the host of the public base URL, its origin that URL's origin."""

    id: str
    origin: str
    name: str

    @property
    def usable(self) -> bool:
        """WebAuthn §5.1.3 forbids an IP address as RP id: an instance served at 127.0.0.1 offers TOTP only."""
        return not all(part.isdigit() for part in self.id.split(".")) and ":" not in self.id

    @classmethod
    def from_base_url(cls, base_url: str, name: str) -> RelyingParty:
        """WebAuthn §5.1.3: the RP id is a registrable suffix of the origin's host; we use the host itself."""
        parts = urlsplit(base_url)
        return cls(id=parts.hostname or "localhost", origin=f"{parts.scheme}://{parts.netloc}", name=name)


def registration_options(rp: RelyingParty, staff_id: int, email: str, name: str,
                         existing: list[str]) -> tuple[str, str]:
    """WebAuthn §5.4: the creation options (JSON for the browser) and the challenge to keep (base64url)."""
    options = generate_registration_options(
        rp_id=rp.id, rp_name=rp.name, user_name=email, user_id=f"staff-{staff_id}".encode(),
        user_display_name=name,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.PREFERRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(c)) for c in existing])
    return options_to_json(options), bytes_to_base64url(options.challenge)


def verify_registration(rp: RelyingParty, credential: str, challenge: str) -> tuple[str, str, int]:
    """WebAuthn §7.1: check the attestation against the kept challenge; (credential id, public key, count)."""
    try:
        verified = verify_registration_response(credential=_parsed(credential),
                                                expected_challenge=base64url_to_bytes(challenge),
                                                expected_rp_id=rp.id, expected_origin=rp.origin)
    except (InvalidRegistrationResponse, ValueError, KeyError, TypeError) as exc:
        raise SecondFactorRejected() from exc
    return (bytes_to_base64url(verified.credential_id), bytes_to_base64url(verified.credential_public_key),
            verified.sign_count)


def authentication_options(rp: RelyingParty, credential_ids: list[str]) -> tuple[str, str]:
    """WebAuthn §5.5: the request options for the member's passkeys, and the challenge to keep."""
    options = generate_authentication_options(
        rp_id=rp.id, allow_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(c))
                                        for c in credential_ids],
        user_verification=UserVerificationRequirement.PREFERRED)
    return options_to_json(options), bytes_to_base64url(options.challenge)


def credential_id_of(credential: str) -> str:
    """The credential id a browser's answer names (to find its public key)."""
    value = _parsed(credential).get("id", "")
    if not isinstance(value, str) or not value or len(value) > 400:
        raise SecondFactorRejected()
    return value


def verify_authentication(rp: RelyingParty, credential: str, challenge: str, public_key: str,
                          sign_count: int) -> int:
    """WebAuthn §7.2: check the assertion's signature, challenge, origin and RP id; returns the new count."""
    try:
        verified = verify_authentication_response(
            credential=_parsed(credential), expected_challenge=base64url_to_bytes(challenge), expected_rp_id=rp.id,
            expected_origin=rp.origin, credential_public_key=base64url_to_bytes(public_key),
            credential_current_sign_count=sign_count)
    except (InvalidAuthenticationResponse, ValueError, KeyError, TypeError) as exc:
        raise SecondFactorRejected() from exc
    return int(verified.new_sign_count)


def _parsed(credential: str) -> dict[str, Any]:
    if not credential or len(credential) > 16384:
        raise SecondFactorRejected()
    try:
        value = json.loads(credential)
    except ValueError as exc:
        raise SecondFactorRejected() from exc
    if not isinstance(value, dict):
        raise SecondFactorRejected()
    return value


def b64(data: bytes) -> str:
    """Unpadded base64url (as WebAuthn writes binary values)."""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")
