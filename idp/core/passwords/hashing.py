"""Argon2id password hashing, with its parameters from settings and a bound on concurrent hashes.

The semaphore keeps memory bounded under load (memory cost × concurrent hashes), as SECURITY.md R16 asks.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_DUMMY_PASSWORD = "dummy-password-for-timing"  # noqa: S105 - not a secret: equalises timing only


@dataclass(frozen=True)
class HashParameters:
    """Argon2id cost parameters (RFC 9106); the floor is m=19 MiB, t=2, p=1."""

    time_cost: int = 2
    memory_kib: int = 19456
    parallelism: int = 1


class PasswordHasher:
    """Hash and verify passwords with argon2id; never more than ``max_concurrent`` at once."""

    def __init__(self, params: HashParameters, max_concurrent: int = 4) -> None:
        self._argon2 = _Argon2(
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._dummy_hash = self._argon2.hash(_DUMMY_PASSWORD)

    def hash(self, password: str) -> str:
        """Return the argon2id hash of a password."""
        with self._slots:
            return self._argon2.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Tell whether the password matches; a missing hash costs the same time as a wrong password."""
        with self._slots:
            try:
                return self._argon2.verify(password_hash or self._dummy_hash, password) and password_hash is not None
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

    def dummy_verify(self, password: str) -> None:
        """Spend the time of one verification, so an unknown identifier answers as slowly as a known one."""
        self.verify(None, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """Tell whether a stored hash was made with other parameters than the current ones."""
        try:
            return self._argon2.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True
