"""Helpers of the staff console tests (no tests here): a register of two schools, staff enrolment and login
driven through the pages (TOTP with pyotp, passkeys with a small software authenticator)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import json
import os
import re
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2
import pyotp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "flows"))

from test_activation_support import add_parent, add_school, add_student, outbox  # noqa: E402

from idp.core.accounts.model import AccountState, NewAccount, Profile  # noqa: E402
from idp.core.clock import FrozenClock  # noqa: E402
from idp.core.staff.model import Role  # noqa: E402
from idp.wiring import Services  # noqa: E402

SCHOOL_A, SCHOOL_B = "0340011C", "0690026D"
STAFF_PASSWORD = "Registre-Chappe-2026!"
LINK_RE = re.compile(r"/etablissement/inscription/([A-Za-z0-9_-]{20,})")
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
OPTIONS_RE = re.compile(r'data-options="([^"]+)"')


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def csrf(page: Any) -> str:
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, "no CSRF token in the page"
    return match.group(1)


@dataclass
class Register:
    """Two schools; in A: Léa (5A, parent Sophie with an account) and Tom (5B, no account), Zoé (5A); in B:
    Hugo (1G2) and his parent Karim."""

    students: dict[str, int] = field(default_factory=dict)
    reps: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, int] = field(default_factory=dict)


def build_register(services: Services) -> Register:
    """The register the console tests read (built directly in the tables, as an import leaves them)."""
    reg = Register()
    add_school(services, SCHOOL_A, "Collège Claude Chappe")
    add_school(services, SCHOOL_B, "Lycée du Parc", "lycee", "Lyon")
    reg.students["lea"] = add_student(services, SCHOOL_A, "120456789AB", "Martin", "Léa", dt.date(2012, 3, 14), "5A")
    reg.students["tom"] = add_student(services, SCHOOL_A, "120456789AC", "Durand", "Tom", dt.date(2012, 5, 1), "5B")
    reg.students["zoe"] = add_student(services, SCHOOL_A, "120456789AD", "Petit", "Zoé", dt.date(2012, 7, 9), "5A")
    reg.students["hugo"] = add_student(services, SCHOOL_B, "120456790CD", "Lefort", "Hugo", dt.date(2008, 11, 2),
                                       "1G2")
    reg.reps["sophie"] = add_parent(services, SCHOOL_A, "R1", "MARTIN", "Sophie", "+33612345678",
                                    [reg.students["lea"]], email="sophie@example.fr")
    reg.reps["paul"] = add_parent(services, SCHOOL_A, "R2", "Durand", "Paul", "", [reg.students["tom"]])
    reg.reps["karim"] = add_parent(services, SCHOOL_B, "R9", "Lefort", "Karim", "+33698765432",
                                   [reg.students["hugo"]])
    reg.accounts["sophie"] = account_for(services, "rep", reg.reps["sophie"], "Sophie", "Martin")
    reg.accounts["lea"] = account_for(services, "student", reg.students["lea"], "Léa", "Martin")
    reg.accounts["karim"] = account_for(services, "rep", reg.reps["karim"], "Karim", "Lefort")
    return reg


def account_for(services: Services, kind: str, record_id: int, given: str, family: str,
                state: AccountState = AccountState.ACTIVE, password: str = "Velo-Rouge-Garonne-42") -> int:
    """An active account linked to a register record (as an activation leaves it)."""
    from idp.storage.models import RepresentativeRow, StudentRow

    profile = Profile.PARENT if kind == "rep" else Profile.STUDENT
    account = services.accounts.create(NewAccount(profile=profile, family_name=family, given_names=given,
                                                  state=state, password_hash=services.hasher.hash(password)))
    with services.uow() as uow:
        row: Any = uow.session.get(RepresentativeRow if kind == "rep" else StudentRow, record_id)
        row.account_id = account.id
        uow.commit()
    return account.id


@dataclass
class StaffUser:
    """A staff member as a test drives it: the e-mail, the TOTP secret or the software passkey."""

    email: str
    secret: str = ""
    key: ec.EllipticCurvePrivateKey | None = None
    credential_id: bytes = b""
    sign_count: int = 0


class Authenticator:
    """A software WebAuthn authenticator (ES256, attestation "none"), as a browser's would answer."""

    def __init__(self, rp_id: str, origin: str) -> None:
        self.rp_id, self.origin = rp_id, origin

    def _client_data(self, kind: str, challenge: str, origin: str | None = None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin or self.origin,
                           "crossOrigin": False}).encode()

    def create(self, user: StaffUser, options: dict[str, Any]) -> str:
        """``navigator.credentials.create`` for these options: a new key, its COSE public key in authData."""
        user.key = ec.generate_private_key(ec.SECP256R1())
        user.credential_id = os.urandom(16)
        numbers = user.key.public_key().public_numbers()
        cose = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})
        auth_data = (hashlib.sha256(options["rp"]["id"].encode()).digest() + bytes([0x45]) + struct.pack(">I", 0)
                     + bytes(16) + struct.pack(">H", len(user.credential_id)) + user.credential_id + cose)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", options["challenge"])
        return json.dumps({"id": b64(user.credential_id), "rawId": b64(user.credential_id), "type": "public-key",
                           "response": {"clientDataJSON": b64(client_data), "attestationObject": b64(attestation)},
                           "clientExtensionResults": {}})

    def get(self, user: StaffUser, options: dict[str, Any], *, origin: str | None = None) -> str:
        """``navigator.credentials.get``: sign authData + hash(clientDataJSON) with the stored key."""
        assert user.key is not None
        user.sign_count += 1
        auth_data = hashlib.sha256(self.rp_id.encode()).digest() + bytes([0x05]) + struct.pack(">I", user.sign_count)
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = user.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return json.dumps({"id": b64(user.credential_id), "rawId": b64(user.credential_id), "type": "public-key",
                           "response": {"clientDataJSON": b64(client_data), "authenticatorData": b64(auth_data),
                                        "signature": b64(signature), "userHandle": b64(b"staff")},
                           "clientExtensionResults": {}})


def options_of(page: Any) -> dict[str, Any]:
    match = OPTIONS_RE.search(page.get_data(as_text=True))
    assert match, "no passkey options in the page"
    return json.loads(html.unescape(match.group(1)))  # type: ignore[no-any-return]


def invite(services: Services, email: str, uai: str = SCHOOL_A, role: Role = Role.REFERENT, *,
           operator: bool = False) -> str:
    """``idp staff add``'s service; returns the enrolment link's token from the mail."""
    services.extras["staff"].auth.invite(email, email.split("@")[0], uai, role, operator=operator)
    mails = outbox(services, email)
    assert mails, "no enrolment mail"
    match = LINK_RE.search(mails[-1]["body"])
    assert match, mails[-1]["body"]
    return match.group(1)


def enrol(client: FlaskClient, services: Services, email: str, uai: str = SCHOOL_A, *, role: Role = Role.REFERENT,
          operator: bool = False, passkey: Authenticator | None = None) -> StaffUser:
    """Invitation, password, then the second factor (TOTP unless a passkey authenticator is given)."""
    token = invite(services, email, uai, role, operator=operator)
    page = client.get(f"/etablissement/inscription/{token}")
    assert page.status_code == 200
    done = client.post(f"/etablissement/inscription/{token}", data={
        "csrf_token": csrf(page), "mot_de_passe": STAFF_PASSWORD, "confirmation": STAFF_PASSWORD})
    assert done.status_code == 303 and done.headers["Location"].endswith("/etablissement/second-facteur")
    page = client.get("/etablissement/second-facteur")
    assert page.status_code == 200
    user = StaffUser(email=email)
    if passkey is not None:
        answer = client.post("/etablissement/second-facteur/cle", data={
            "csrf_token": csrf(page), "credential": passkey.create(user, options_of(page))})
    else:
        user.secret = re.search(r'id="cle-totp">([A-Z2-7]+)<', page.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
        answer = client.post("/etablissement/second-facteur/code", data={
            "csrf_token": csrf(page), "code": pyotp.TOTP(user.secret).at(services.clock.now())})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/etablissement"), answer.status_code
    return user


def password_step(client: FlaskClient, email: str, password: str = STAFF_PASSWORD) -> Any:
    page = client.get("/etablissement/connexion")
    return client.post("/etablissement/connexion", data={"csrf_token": csrf(page), "email": email,
                                                         "mot_de_passe": password})


def log_in(client: FlaskClient, services: Services, user: StaffUser, passkey: Authenticator | None = None) -> None:
    """Password then the second factor; the clock moves on a TOTP step so a code is never replayed."""
    clock = services.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(seconds=31)
    client.post("/etablissement/deconnexion", data={"csrf_token": csrf(client.get("/etablissement/connexion"))})
    assert password_step(client, user.email).status_code == 303
    page = client.get("/etablissement/second-facteur")
    if passkey is not None:
        answer = client.post("/etablissement/second-facteur/cle", data={
            "csrf_token": csrf(page), "credential": passkey.get(user, options_of(page))})
    else:
        answer = client.post("/etablissement/second-facteur/code", data={
            "csrf_token": csrf(page), "code": pyotp.TOTP(user.secret).at(clock.now())})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/etablissement"), answer.status_code
