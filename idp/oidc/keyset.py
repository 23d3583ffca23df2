"""OIDC signing keys on disk and their rollover (SECURITY R10, R12).

Keys live in the keys directory as ``oidc-<kid>.key`` (PKCS#8 PEM, 0600) and ``oidc-keys.json`` says what
each one is for: ``next`` (published in the JWKS, not signing yet), ``active`` (signing) or ``previous``
(still published so that tokens it signed verify until they expire). One RS256 and one ES256 key move
together through the three stages:

- ``rotate_publish``: create the next keys and publish them (relying parties cache JWKS, typically 24 h);
- ``rotate_promote``: once the next keys were published long enough, they sign; the old ones stay published;
- ``rotate_retire``: once every token signed by the old keys has expired, they leave the JWKS and the disk.

``kid`` is the RFC 7638 thumbprint, so it is unique by construction. Workers notice a rotation through the
state file's modification time; nothing is ever generated silently at start-up.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc.jwk import ECKey, KeySet, RSAKey

from idp.errors import ConfigurationError, IdpError

STATE_FILE = "oidc-keys.json"
#: RS256 keys of 2048 bits: the usual size for OIDC (node-oidc-provider, Keycloak); SAML keeps its own.
RSA_BITS = 2048
MIN_RSA_BITS = 2048
ALGORITHMS = ("RS256", "ES256")
#: How long the next keys must be published before they sign (one JWKS cache period).
DEFAULT_PUBLISH_PERIOD = dt.timedelta(hours=24)
#: How long demoted keys stay published: the ID token lifetime plus the accepted clock skew.
DEFAULT_RETIRE_AFTER = dt.timedelta(minutes=10, seconds=60)


class KeyRotationError(IdpError):
    """A rotation stage cannot run yet (or has nothing to do)."""

    code = "key_rotation"
    description = "Rotation des clés OIDC impossible."


@dataclass(frozen=True)
class KeyInfo:
    """One key's entry in the state file."""

    kid: str
    alg: str
    status: str
    created_at: str
    changed_at: str


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _read_state(directory: Path) -> list[KeyInfo]:
    path = directory / STATE_FILE
    if not path.exists():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    return [KeyInfo(**entry) for entry in data.get("keys", [])]


def _write_state(directory: Path, keys: list[KeyInfo]) -> None:
    path = directory / STATE_FILE
    tmp = directory / f".{STATE_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"keys": [k.__dict__ for k in keys]}, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def _new_key(directory: Path, alg: str, status: str, now: dt.datetime) -> KeyInfo:
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if alg == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    else:
        private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    kid = (RSAKey if alg == "RS256" else ECKey).import_key(pem).thumbprint()
    _write_private(directory / f"oidc-{kid}.key", pem)
    stamp = now.isoformat()
    return KeyInfo(kid=kid, alg=alg, status=status, created_at=stamp, changed_at=stamp)


def ensure_oidc_keys(directory: Path, now: dt.datetime | None = None) -> list[str]:
    """Create the first active RS256 and ES256 keys if there are none (``idp init``); return new file names."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if _read_state(directory):
        return []
    keys = [_new_key(directory, alg, "active", _now(now)) for alg in ALGORITHMS]
    _write_state(directory, keys)
    return [f"oidc-{k.kid}.key" for k in keys] + [STATE_FILE]


def rotate_publish(directory: Path, now: dt.datetime | None = None) -> list[str]:
    """Stage 1: create the next keys and publish them in the JWKS (they do not sign yet); return their kids."""
    keys = _read_state(directory)
    if not keys:
        raise KeyRotationError("Aucune clé OIDC : lancez d'abord « idp init ».")
    if any(k.status == "next" for k in keys):
        raise KeyRotationError("Des clés OIDC suivantes sont déjà publiées : promouvez-les d'abord.")
    new = [_new_key(directory, alg, "next", _now(now)) for alg in ALGORITHMS]
    _write_state(directory, keys + new)
    return [k.kid for k in new]


def rotate_promote(directory: Path, now: dt.datetime | None = None,
                   published_for: dt.timedelta = DEFAULT_PUBLISH_PERIOD) -> list[str]:
    """Stage 2: the next keys sign from now on; the active ones become previous (still published)."""
    now = _now(now)
    keys = _read_state(directory)
    upcoming = [k for k in keys if k.status == "next"]
    if not upcoming:
        raise KeyRotationError("Aucune clé OIDC suivante à promouvoir : publiez-en d'abord.")
    ready_at = max(dt.datetime.fromisoformat(k.changed_at) for k in upcoming) + published_for
    if now < ready_at:
        raise KeyRotationError(f"Les clés OIDC suivantes sont publiées depuis trop peu de temps : "
                               f"promotion possible à partir du {ready_at:%Y-%m-%d %H:%M} UTC.")
    stamp = now.isoformat()
    changed = []
    for i, key in enumerate(keys):
        if key.status == "next":
            keys[i] = KeyInfo(key.kid, key.alg, "active", key.created_at, stamp)
            changed.append(key.kid)
        elif key.status == "active":
            keys[i] = KeyInfo(key.kid, key.alg, "previous", key.created_at, stamp)
    _write_state(directory, keys)
    return changed


def rotate_retire(directory: Path, now: dt.datetime | None = None,
                  retire_after: dt.timedelta = DEFAULT_RETIRE_AFTER) -> list[str]:
    """Stage 3: remove the previous keys once every token they signed has expired; return their kids."""
    now = _now(now)
    keys = _read_state(directory)
    old = [k for k in keys if k.status == "previous"]
    if not old:
        raise KeyRotationError("Aucune ancienne clé OIDC à retirer.")
    due = max(dt.datetime.fromisoformat(k.changed_at) for k in old) + retire_after
    if now < due:
        raise KeyRotationError(f"Des jetons signés par les anciennes clés OIDC sont peut-être encore valides : "
                               f"retrait possible à partir du {due:%Y-%m-%d %H:%M} UTC.")
    _write_state(directory, [k for k in keys if k.status != "previous"])
    for key in old:
        (directory / f"oidc-{key.kid}.key").unlink(missing_ok=True)
    return [k.kid for k in old]


def _load_private(directory: Path, info: KeyInfo) -> RSAKey | ECKey:
    path = directory / f"oidc-{info.kid}.key"
    if not path.exists():
        raise ConfigurationError(f"clé OIDC absente : {path} (lancez « idp init » ou restaurez les clés)")
    pem = path.read_bytes()
    private = serialization.load_pem_private_key(pem, password=None)
    if info.alg == "RS256":
        if not isinstance(private, rsa.RSAPrivateKey) or private.key_size < MIN_RSA_BITS:
            raise ConfigurationError(f"clé OIDC trop faible : {path} (RSA {MIN_RSA_BITS} bits minimum)")
        key: RSAKey | ECKey = RSAKey.import_key(pem)
    else:
        if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
            raise ConfigurationError(f"clé OIDC inattendue : {path} (EC P-256 attendue)")
        key = ECKey.import_key(pem)
    if key.thumbprint() != info.kid:
        raise ConfigurationError(f"clé OIDC inattendue dans {path}")
    key.ensure_kid()
    return key


class OidcKeySet:
    """The keys of this provider, loaded once and reloaded when ``oidc-keys.json`` changes (rotation)."""

    def __init__(self, directory: Path, check_interval: float = 1.0) -> None:
        self.directory = directory
        self._check_interval = check_interval
        self._lock = threading.Lock()
        self._mtime = -1.0
        self._checked = 0.0
        self._load()

    def _load(self) -> None:
        path = self.directory / STATE_FILE
        if not path.exists():
            raise ConfigurationError(f"clés OIDC absentes dans {self.directory} : lancez « idp init »")
        mtime = path.stat().st_mtime
        infos = _read_state(self.directory)
        keys = {info.kid: _load_private(self.directory, info) for info in infos}
        signing: dict[str, tuple[str, RSAKey | ECKey]] = {}
        for info in infos:
            if info.status == "active":
                signing[info.alg] = (info.kid, keys[info.kid])
        if "RS256" not in signing:
            raise ConfigurationError("aucune clé OIDC RS256 active")
        public = [dict(keys[i.kid].as_dict(private=False), kid=i.kid, alg=i.alg, use="sig") for i in infos]
        self._signing, self._public = signing, {"keys": public}
        self._verify = KeySet([keys[i.kid] for i in infos])
        self._mtime = mtime

    def refresh(self) -> None:
        """Look at the state file now (after a rotation in this process)."""
        self._checked = 0.0
        self._fresh()

    def _fresh(self) -> None:
        now = time.monotonic()
        if self._checked and now - self._checked < self._check_interval:
            return
        with self._lock:
            self._checked = now
            try:
                mtime = (self.directory / STATE_FILE).stat().st_mtime
            except FileNotFoundError:
                return
            if mtime != self._mtime:
                self._load()

    def signing_key(self, alg: str = "RS256") -> tuple[str, RSAKey | ECKey]:
        """The active key for ``alg`` and its kid."""
        self._fresh()
        return self._signing[alg]

    def jwks(self) -> dict[str, Any]:
        """The public JWKS: next, active and previous keys, public members only."""
        self._fresh()
        return self._public

    def verification_keys(self) -> KeySet:
        """Every published key, to verify what we signed (``id_token_hint``)."""
        self._fresh()
        return self._verify

    def algorithms(self) -> tuple[str, ...]:
        """Signing algorithms offered (discovery)."""
        return ALGORITHMS
