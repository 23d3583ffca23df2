"""CAS per-request cost measured in process: the WSGI application called directly, no HTTP, no other process.

Throughput figures are meaningless on a shared machine; the CPU time one request costs the worker is not.
This script builds the same instance as ``run.py`` (fresh PostgreSQL database, a pupil, the Pronote
registration, an SSO session), then calls the WSGI application N times and prints, per request, the wall time
and the process CPU time (``time.process_time``: what one fully busy core would spend), for:

- ``validate``: ``GET /cas/p3/serviceValidate`` of a pre-issued service ticket (CAS 3 XML, Pronote attributes);
- ``login``: ``GET /cas/login?service=…`` with the SSO cookie (302 with a ticket);
- ``round trip``: both.

    .venv/bin/python bench/cas/inprocess.py [--pg URL] [-n 2000] [--profile validate|login] [--redis URL]

``--redis`` keeps the tickets in Redis (``[redis] url``) instead of PostgreSQL.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import SERVICE, drop_instance, issue_batch, make_instance, seed  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402


def environ(path: str, cookie: str = "") -> dict[str, Any]:
    headers = {"Cookie": cookie} if cookie else {}
    return EnvironBuilder(path=path, base_url="https://idp.bench", headers=headers).get_environ()


def call(app: Any, env: dict[str, Any]) -> tuple[str, dict[str, str], bytes]:
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
        answer["status"], answer["headers"] = status, dict(headers)

    body = b"".join(app(dict(env), start_response))
    return answer["status"], answer["headers"], body


def _bare_app() -> Any:
    from flask import Flask

    bare = Flask("bare")
    bare.add_url_rule("/x", "x", lambda: "ok")
    return bare


BARE = _bare_app()
BARE_ENV = environ("/x")


def _cpu_per_call(one: Callable[[int], None], indexes: range) -> float:
    started = time.process_time()
    for i in indexes:
        one(i)
    return (time.process_time() - started) / len(indexes)


def _bare(_: int) -> None:
    call(BARE, BARE_ENV)


def measure(label: str, count: int, one: Callable[[int], None], prepare: Callable[[], None] | None = None,
            batch: int = 100) -> None:
    """Time ``count`` calls of ``one`` in batches (``prepare``, untimed, runs before each batch), each batch
    followed by as many requests to a bare Flask endpoint ("hello world"). Printed: the CPU time per request
    (median over batches) and its ratio to the bare Flask request measured just after it: on a shared
    machine other processes inflate CPU time (caches, frequency) for both alike, so the ratio is the figure
    to compare between versions of the code."""
    cpus, ratios = [], []
    for start in range(0, count, batch):
        if prepare is not None:
            prepare()
        indexes = range(start, min(start + batch, count))
        cpu, bare = _cpu_per_call(one, indexes), _cpu_per_call(_bare, indexes)
        cpus.append(cpu)
        ratios.append(cpu / bare)
    median = statistics.median(cpus)
    print(f"{label:>11}: CPU {median * 1000:6.3f} ms per request (median of {len(cpus)} batches) = "
          f"{statistics.median(ratios):5.2f} bare Flask requests")


VALIDATE = "/cas/p3/serviceValidate?service=" + quote(SERVICE, safe="") + "&ticket="


def validation_env(ticket: str) -> dict[str, Any]:
    return {**VALIDATE_ENV, "QUERY_STRING": VALIDATE_ENV["QUERY_STRING"] + ticket}


VALIDATE_ENV = environ(VALIDATE)


def validations(app: Any, tickets: Iterable[str]) -> Callable[[int], None]:
    envs = [validation_env(t) for t in tickets]

    def one(i: int) -> None:
        status, _, body = call(app, envs[i])
        assert status.startswith("200") and b"authenticationSuccess" in body, body[:300]

    return one


class PreIssued:
    """Validations of tickets pre-issued in batches of 100 (a ticket lives 10 s) outside the timed windows."""

    def __init__(self, app: Any, services: Any, context: Any) -> None:
        self.app, self.services, self.context = app, services, context
        self.envs: dict[int, dict[str, Any]] = {}
        self.next = 0

    def prepare(self) -> None:
        for ticket in issue_batch(self.services, self.context, 100):
            self.envs[self.next] = validation_env(ticket)
            self.next += 1

    def one(self, i: int) -> None:
        status, _, body = call(self.app, self.envs.pop(i))
        assert status.startswith("200") and b"authenticationSuccess" in body, body[:300]


def logins(app: Any, token: str, keep: list[str]) -> Callable[[int], None]:
    """``/cas/login`` with the SSO cookie; like a browser, sends back the cookies it is given."""
    path = "/cas/login?service=" + quote(SERVICE, safe="")
    cookies = {"__Host-sso": token}
    env = environ(path, f"__Host-sso={token}")

    def one(i: int) -> None:
        nonlocal env
        status, headers, _ = call(app, env)
        assert status.startswith("302") and "ticket=" in headers["Location"], (status, headers)
        keep.append(headers["Location"].split("ticket=", 1)[1])
        if "Set-Cookie" in headers:
            name, _, value = headers["Set-Cookie"].split(";", 1)[0].partition("=")
            cookies[name] = value
            env = environ(path, "; ".join(f"{k}={v}" for k, v in cookies.items()))

    return one


def count_calls(app: Any, services: Any, context: Any, token: str, n: int) -> None:
    """Python function calls per request, counted by cProfile: the same on a quiet or a loaded machine."""
    pre, issued = PreIssued(app, services, context), []
    pre.prepare()
    for label, one in (("validate", pre.one), ("login", logins(app, token, issued)), ("bare Flask", _bare)):
        profiler = cProfile.Profile()
        profiler.runcall(lambda one=one: [one(i) for i in range(min(n, 100))])  # type: ignore[misc]
        calls = pstats.Stats(profiler).total_calls  # type: ignore[attr-defined]
        print(f"{label:>11}: {calls / min(n, 100):7.0f} Python function calls per request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="", help="keep tickets in this Redis (e.g. redis://127.0.0.1:6379/14)")
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--profile", choices=["validate", "login"], default="")
    parser.add_argument("--calls", action="store_true",
                        help="print Python function calls per request (deterministic: unmoved by machine load)")
    args = parser.parse_args()
    from idp import create_app

    folder = Path(tempfile.mkdtemp(prefix="bench-cas-inproc-"))
    config, _ = make_instance(args.pg, folder, redis_url=args.redis)
    services, context, token = seed(config)
    app = create_app(services=services)
    try:
        n = args.n
        warm: list[str] = []
        for _ in range(200):
            logins(app, token, warm)(0)
        validations(app, warm)(0)
        issued: list[str] = []
        if args.calls:
            count_calls(app, services, context, token, min(n, 300))
            return
        if args.profile:
            profiler = cProfile.Profile(time.process_time)
            if args.profile == "validate":
                pre = PreIssued(app, services, context)
                profiler.runcall(measure, "validate", n, pre.one, pre.prepare)
            else:
                profiler.runcall(measure, "login", n, logins(app, token, issued))
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
            return
        pre = PreIssued(app, services, context)
        measure("validate", n, pre.one, pre.prepare)
        measure("login", n, logins(app, token, issued))
        pairs: list[str] = []
        login_one = logins(app, token, pairs)

        def round_trip(i: int) -> None:
            login_one(i)
            status, _, body = call(app, validation_env(pairs[-1]))
            assert status.startswith("200") and b"authenticationSuccess" in body, body[:300]

        measure("round trip", n, round_trip)
    finally:
        drop_instance(services, args.pg, folder)


if __name__ == "__main__":
    main()
