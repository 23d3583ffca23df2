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


def measure(label: str, count: int, one: Callable[[int], None], prepare: Callable[[], None] | None = None,
            batch: int = 0) -> None:
    """Time ``count`` calls of ``one``; with ``prepare``, it runs (untimed) before every ``batch`` calls."""
    wall = cpu = 0.0
    batch = batch or count
    for start in range(0, count, batch):
        if prepare is not None:
            prepare()
        w, c = time.perf_counter(), time.process_time()
        for i in range(start, min(start + batch, count)):
            one(i)
        wall, cpu = wall + time.perf_counter() - w, cpu + time.process_time() - c
    print(f"{label:>11}: {wall / count * 1000:6.3f} ms wall, {cpu / count * 1000:6.3f} ms CPU per request "
          f"({count} requests) = {count / cpu:6.0f}/s per busy core")


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
    """Validations of tickets pre-issued in batches of 500 (a ticket lives 10 s) outside the timed windows."""

    def __init__(self, app: Any, services: Any, context: Any) -> None:
        self.app, self.services, self.context = app, services, context
        self.envs: dict[int, dict[str, Any]] = {}
        self.next = 0

    def prepare(self) -> None:
        for ticket in issue_batch(self.services, self.context, 500):
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="", help="keep tickets in this Redis (e.g. redis://127.0.0.1:6379/14)")
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--profile", choices=["validate", "login"], default="")
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
        if args.profile:
            profiler = cProfile.Profile(time.process_time)
            if args.profile == "validate":
                pre = PreIssued(app, services, context)
                profiler.runcall(measure, "validate", n, pre.one, pre.prepare, 500)
            else:
                profiler.runcall(measure, "login", n, logins(app, token, issued))
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
            return
        pre = PreIssued(app, services, context)
        measure("validate", n, pre.one, pre.prepare, 500)
        for _ in range(0, n, 500):  # tickets live 10 s: issued by /cas/login and validated in batches
            issued.clear()
            measure("login", 500, logins(app, token, issued))
            measure("validate", 500, validations(app, issued))
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
