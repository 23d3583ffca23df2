"""The machine's speed right now: a bare Flask endpoint under the benchmarks' own gunicorn setup.

The issues state their targets for "this machine" and give its speed: "a bare Flask endpoint does about 2,700
requests/s per core here". This VM's speed drifts by a third within minutes (the same argon2 verify takes
23 to 29 ms of CPU), so a figure alone does not say whether a target is met at the issues' speed. Each
benchmark therefore measures this reference just before its own run, the same way: one gunicorn gthread
worker (4 threads) pinned to core 0, the load generator on core 1 (8 keep-alive connections), the worker's
CPU per request read from /proc. ``factor`` = 2,700 / (requests per second per fully used core): the number
to multiply this run's per-core figures by to estimate them at the issues' reference speed (printed beside
the measured figure, never instead of it).

    python bench/reference.py [--seconds 4]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Http, children, cpu_seconds, pin_self  # noqa: E402
from flask import Flask  # noqa: E402

ISSUES_BARE_FLASK = 2700.0  # requests/s per core on the issues' reference machine

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "hello world"


@dataclass(frozen=True)
class Reference:
    rate: float  # requests/s measured
    cpu_ms: float  # worker CPU per request

    @property
    def per_core(self) -> float:
        return 1000 / self.cpu_ms if self.cpu_ms else 0.0

    @property
    def factor(self) -> float:
        return ISSUES_BARE_FLASK / self.per_core if self.per_core else 1.0

    def line(self) -> str:
        return (f"machine now: bare Flask {self.per_core:,.0f} requests/s per core (the issues' machine: "
                f"{ISSUES_BARE_FLASK:,.0f}) -> x{self.factor:.2f} to estimate a figure at the issues' speed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(seconds: float = 4.0, core: int = 0, connections: int = 8) -> Reference:
    """Run the bare endpoint on ``core`` and load it from the calling thread's core for ``seconds``."""
    port = _free_port()
    server = subprocess.Popen(
        ["taskset", "-c", str(core), sys.executable, "-m", "gunicorn", "-w", "1", "-k", "gthread", "--threads",
         "4", "-b", f"127.0.0.1:{port}", "--log-level", "warning", "reference:app"],
        cwd=Path(__file__).resolve().parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)})
    try:
        deadline = time.time() + 20
        while True:
            try:
                Http(port).get("/")
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("the reference server did not start") from None
                time.sleep(0.1)
        workers = children(server.pid)
        done = [0] * connections
        stop = time.perf_counter() + 0.5  # warm-up

        def work(i: int) -> None:
            http = Http(port)
            while time.perf_counter() < stop:
                http.get("/")
                done[i] += 1

        def run() -> None:
            threads = [threading.Thread(target=work, args=(i,)) for i in range(connections)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        run()
        done[:] = [0] * connections
        cpu0, started = cpu_seconds(workers), time.perf_counter()
        stop = started + seconds
        run()
        elapsed, cpu = time.perf_counter() - started, cpu_seconds(workers) - cpu0
        total = sum(done)
        return Reference(total / elapsed, cpu / total * 1000 if total else 0.0)
    finally:
        server.terminate()
        server.wait(10)


#: The reference measured by ``calibrate`` in this process (None: not measured, figures printed as they are).
CURRENT: Reference | None = None


def calibrate(seconds: float = 4.0) -> Reference:
    """Measure the reference now (the caller runs on the load generator's core), keep it, print its line."""
    global CURRENT
    CURRENT = measure(seconds)
    print(CURRENT.line())
    return CURRENT


def scaled(rate: float) -> str:
    """`` [≈ N at the issues' speed]`` for a per-core rate measured after ``calibrate`` ("" before)."""
    if CURRENT is None:
        return ""
    return f" [≈ {rate * CURRENT.factor:,.0f} at the issues' speed]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    pin_self(1)
    reference = measure(args.seconds)
    print(f"bare Flask: {reference.rate:,.0f} requests/s measured, worker CPU {reference.cpu_ms:.3f} ms each")
    print(reference.line())


if __name__ == "__main__":
    main()
