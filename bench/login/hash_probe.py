"""gunicorn configuration used by ``bench/login/run.py``: the worker's own argon2 CPU time, counted where it runs.

The argon2 verify measured in a separate process on an idle machine is not what the worker pays during the
run: the 19 MiB the hash walks share the L3 cache with the load generator and PostgreSQL on the other core,
and each verify costs the worker more CPU than the calibration says. This hook wraps argon2-cffi's
``PasswordHasher.verify`` in the worker (measurement only: the call and its result are unchanged) and keeps
the cumulative count and CPU time (``time.thread_time`` of the verifying thread, so the other threads'
work is not counted) in the JSON file named by ``IDP_BENCH_HASH_STATS``; the benchmark reads it before and
after its timed window.

    gunicorn -c bench/login/hash_probe.py …
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any


def post_worker_init(worker: Any) -> None:
    import argon2

    path = os.environ["IDP_BENCH_HASH_STATS"]
    original = argon2.PasswordHasher.verify
    lock = threading.Lock()
    totals = {"verifications": 0, "cpu_seconds": 0.0}

    def verify(self: Any, hash: Any, password: Any) -> Any:  # noqa: A002 - argon2-cffi's parameter name
        start = time.thread_time()
        try:
            return original(self, hash, password)
        finally:
            spent = time.thread_time() - start
            with lock:
                totals["verifications"] += 1
                totals["cpu_seconds"] += spent
                with open(path + ".tmp", "w") as out:
                    json.dump(totals, out)
                os.replace(path + ".tmp", path)

    argon2.PasswordHasher.verify = verify  # type: ignore[method-assign]
