"""The argon2id hasher: verification answers, and the bound on hashes running at once (SECURITY R16)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from idp.core.passwords import hashing
from idp.core.passwords.hashing import HashParameters, PasswordHasher, usable_cores

CHEAP = HashParameters(time_cost=1, memory_kib=512, parallelism=1)


def test_verify_answers_true_only_for_the_password() -> None:
    hasher = PasswordHasher(CHEAP, max_concurrent=2)
    stored = hasher.hash("Velo-Rouge-Garonne-42")
    assert stored.startswith("$argon2id$v=19$m=512,t=1,p=1$")
    assert hasher.verify(stored, "Velo-Rouge-Garonne-42")
    assert not hasher.verify(stored, "velo-rouge-garonne-42")
    assert not hasher.verify(None, "Velo-Rouge-Garonne-42")  # no hash: the time of a wrong password, False
    assert not hasher.verify("not an argon2 hash", "x")


def test_default_bound_is_one_hash_per_usable_core() -> None:
    assert PasswordHasher(CHEAP).max_concurrent == usable_cores()
    assert PasswordHasher(CHEAP, max_concurrent=3).max_concurrent == 3
    if hasattr(os, "sched_getaffinity"):
        assert usable_cores() == len(os.sched_getaffinity(0))


def test_usable_cores_without_affinity_falls_back_to_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable(pid: int) -> set[int]:
        raise OSError("no affinity here")

    monkeypatch.setattr(hashing.os, "sched_getaffinity", unavailable, raising=False)
    assert usable_cores() == max(1, os.cpu_count() or 1)


@pytest.mark.parametrize("bound", [1, 2])
def test_never_more_hashes_at_once_than_the_bound(bound: int) -> None:
    hasher = PasswordHasher(CHEAP, max_concurrent=bound)
    stored = hasher.hash("secret-password")
    running, peak, lock = [0], [0], threading.Lock()
    real = hasher._argon2

    class Counting:  # argon2-cffi's hasher has __slots__: wrap it rather than patch it
        def verify(self, hash_: str, password: str) -> bool:
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            try:
                time.sleep(0.01)  # long enough for the other threads to try
                return real.verify(hash_, password)
            finally:
                with lock:
                    running[0] -= 1

    hasher._argon2 = Counting()  # type: ignore[assignment]
    answers: list[bool] = []
    threads = [threading.Thread(target=lambda: answers.append(hasher.verify(stored, "secret-password")))
               for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [True] * 6
    assert peak[0] == bound
