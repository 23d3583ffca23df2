"""Argon2id password hashing, with its parameters from settings and a bound on concurrent hashes.

The semaphore keeps memory bounded under load (memory cost × concurrent hashes), as SECURITY.md R16 asks.
By default it lets one hash run per core the process may use: a hash is pure CPU, so two on one core finish
no sooner, and when the kernel interleaves them their 19 MiB working sets evict each other from the cache.
Measured here (4 threads on one core): 25.2–25.9 ms of CPU per verify interleaved, 22.0–23.7 ms one at a
time; in a gunicorn worker under the login benchmark, 23.4–23.8 against 21.2–21.8 ms.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from idp import metrics

_DUMMY_PASSWORD = "dummy-password-for-timing"  # noqa: S105 - not a secret: equalises timing only


@dataclass(frozen=True)
class HashParameters:
    """Argon2id cost parameters (RFC 9106); the floor is m=19 MiB, t=2, p=1."""

    time_cost: int = 2
    memory_kib: int = 19456
    parallelism: int = 1


def usable_cores() -> int:
    """The number of cores this process may run on (its affinity: ``taskset`` or a container's cpuset)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity call on this platform
        return max(1, os.cpu_count() or 1)


class PasswordHasher:
    """Hash and verify passwords with argon2id; never more than ``max_concurrent`` at once (0: one per core
    this process may run on)."""

    def __init__(self, params: HashParameters, max_concurrent: int = 0) -> None:
        self._argon2 = _Argon2(
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self.max_concurrent = max_concurrent if max_concurrent > 0 else usable_cores()
        self._slots = threading.BoundedSemaphore(self.max_concurrent)
        self._dummy_hash = self._argon2.hash(_DUMMY_PASSWORD)

    @contextmanager
    def _slot(self) -> Iterator[None]:
        """One of the semaphore's slots, counted as waiting then in flight (``idp_argon2_hashes_*``)."""
        with metrics.waiting_for_hash():
            self._slots.acquire()
        try:
            with metrics.hashing():
                yield
        finally:
            self._slots.release()

    def hash(self, password: str) -> str:
        """Return the argon2id hash of a password."""
        with self._slot():
            return self._argon2.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Tell whether the password matches; a missing hash costs the same time as a wrong password."""
        with self._slot():
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
