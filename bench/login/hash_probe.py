"""The WSGI application of ``bench/login/run.py`` and ``bench/saml/bench_logins.py``: the application they
measure (``IDP_BENCH_APP``, default ``idp.wsgi:app``) with the worker's own argon2 CPU time counted where it
runs.

The argon2 verify measured in a separate process on an idle machine is not what the worker pays during the
run: the 19 MiB the hash walks share the L3 cache with the load generator and PostgreSQL on the other core,
and each verify costs the worker more CPU than the calibration says. This hook wraps argon2-cffi's
``PasswordHasher.verify`` in the worker (measurement only: the call and its result are unchanged) and keeps
the cumulative count and CPU time (``time.thread_time`` of the verifying thread, so the other threads'
work is not counted) in the 16-byte file named by ``IDP_BENCH_HASH_STATS``, written through a shared memory
map (two doubles, no system call per verify, so the probe adds nothing measurable to the "outside the hash"
figure); the benchmark reads it with ``read`` before and after its timed window.

With ``IDP_BENCH_STUB_PASSWORD`` set (``run.py --stub-hash``), the wrapped verify compares the password with
it instead of running argon2: a diagnosis of what the rest of a login costs the worker without the hash
walking 19 MiB between requests, never a login figure.

The server loads ``hash_probe:app`` in its worker (``common.server_command(…, target="hash_probe:app")``, with
``bench/login`` on ``PYTHONPATH``): the probe is installed there, then the application imported.
"""

from __future__ import annotations

import importlib
import mmap
import os
import struct
import threading
import time
from pathlib import Path
from typing import Any

_LAYOUT = struct.Struct("<dd")  # verifications, CPU seconds


def read(path: Path) -> dict[str, float]:
    """The counters as the worker last wrote them."""
    verifications, cpu_seconds = _LAYOUT.unpack(path.read_bytes()[:_LAYOUT.size])
    return {"verifications": verifications, "cpu_seconds": cpu_seconds}


def install() -> None:
    """Wrap argon2-cffi's verify in this process (the worker) and share its counters."""
    import argon2

    path = os.environ["IDP_BENCH_HASH_STATS"]
    with open(path, "wb") as out:
        out.write(bytes(_LAYOUT.size))
    with open(path, "r+b") as shared:
        counters = mmap.mmap(shared.fileno(), _LAYOUT.size)
    original = argon2.PasswordHasher.verify
    lock = threading.Lock()
    totals = [0, 0.0]

    stub = os.environ.get("IDP_BENCH_STUB_PASSWORD")
    if stub is not None:  # ``run.py --stub-hash``: diagnosis of the rest of a login, never a login figure
        def original(self: Any, hash: Any, password: Any) -> Any:  # noqa: A002, ARG001
            return password == stub

    def verify(self: Any, hash: Any, password: Any) -> Any:  # noqa: A002 - argon2-cffi's parameter name
        start = time.thread_time()
        try:
            return original(self, hash, password)
        finally:
            spent = time.thread_time() - start
            with lock:
                totals[0] += 1
                totals[1] += spent
                _LAYOUT.pack_into(counters, 0, *totals)

    argon2.PasswordHasher.verify = verify  # type: ignore[method-assign]


def __getattr__(name: str) -> Any:
    """``app``, built on first access (by the server's worker; ``read`` alone builds nothing)."""
    if name != "app":
        raise AttributeError(name)
    install()
    module, _, attribute = os.environ.get("IDP_BENCH_APP", "idp.wsgi:app").partition(":")
    application = getattr(importlib.import_module(module), attribute)
    globals()["app"] = application
    return application
