"""Per-request cost of the login route and of an SSO-session page, in process (no HTTP, no load generator).

Method: a fresh database (PostgreSQL by default), the real application built by ``create_app`` driven by
Flask's test client (WSGI, cookies kept like a browser). One login follows the route a person takes from
``GET /login?profil=parent`` (every redirect followed, the form filled, until "Mes services" is shown); each
request is timed on its own, wall clock and CPU time of this thread, median over ``--rounds`` logins. The
argon2 verify inside the POST is timed and subtracted from that POST, so "besides the hash" is the rest of
the route. Then a GET of "Mes services" and a GET /login answered by a valid SSO session are timed. The
machine may be shared: compare figures taken the same way minutes apart, and prefer the CPU column.

    python bench/login/inprocess.py [--rounds 200] [--database-url postgresql://…] [--profile STEP|all]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import Instance  # noqa: E402

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ACTION = re.compile(r'<form method="post" action="([^"]+)"')
PASSWORD = "Velo-Rouge-Garonne-42"  # noqa: S105 - benchmark accounts only
IDS = re.compile(r"/[A-Za-z0-9_-]{20,}")


def label(method: str, path: str) -> str:
    """``GET /login/<id>``: the request's kind, without its ids and query."""
    return f"{method} {IDS.sub('/<id>', path.split('?')[0])}"


class Timer:
    """Time each request through the test client; the hash inside it is measured apart."""

    def __init__(self, hasher: Any, profile: str | None) -> None:
        self.wall: dict[str, list[float]] = defaultdict(list)
        self.cpu: dict[str, list[float]] = defaultdict(list)
        self.spent = [0.0, 0.0]
        self.profile = profile
        self.profiler: Any = None
        if profile:
            try:  # a sampling profiler distorts less; cProfile when it is not installed
                from pyinstrument import Profiler
                self.profiler = Profiler(interval=0.0001)
                self.profiler.enable, self.profiler.disable = self.profiler.start, self.profiler.stop
            except ImportError:
                import cProfile
                self.profiler = cProfile.Profile()
        real_verify = hasher.verify

        def timed_verify(password_hash: str | None, password: str) -> bool:
            t, c = time.perf_counter(), time.thread_time()
            try:
                return bool(real_verify(password_hash, password))
            finally:
                self.spent[0] += (time.perf_counter() - t) * 1000
                self.spent[1] += (time.thread_time() - c) * 1000

        hasher.verify = timed_verify

    def __call__(self, name: str, client: Any, method: str, path: str, **kw: Any) -> Any:
        profiling = self.profiler is not None and (self.profile == "all" or self.profile in name)
        if profiling:
            self.profiler.enable()
        self.spent[0] = self.spent[1] = 0.0
        t, c = time.perf_counter(), time.thread_time()
        response = client.open(path, method=method, **kw)
        self.wall[name].append((time.perf_counter() - t) * 1000 - self.spent[0])
        self.cpu[name].append((time.thread_time() - c) * 1000 - self.spent[1])
        if profiling:
            self.profiler.disable()
        return response

    def clear(self) -> None:
        self.wall.clear()
        self.cpu.clear()


def one_login(timer: Timer, client: Any, identifier: str) -> list[str]:
    """Follow the whole route like a browser; return the labels of the requests made, in order."""
    steps: list[str] = []

    def go(method: str, path: str, **kw: Any) -> Any:
        name = label(method, path)
        steps.append(name)
        return timer(name, client, method, path, **kw)

    response = go("GET", "/login?profil=parent")
    while response.status_code in (302, 303):
        response = go("GET", response.headers["Location"])
    page = response.get_data(as_text=True)
    action, token = ACTION.search(page), CSRF.search(page)
    assert response.status_code == 200 and action and token, "no login form"
    response = go("POST", action.group(1).replace("&amp;", "&"), data={
        "identifiant": identifier, "mot_de_passe": PASSWORD, "csrf_token": token.group(1)})
    assert response.status_code == 303, response.status_code
    while response.status_code in (302, 303):
        response = go("GET", response.headers["Location"])
    assert response.status_code == 200 and "Mes services" in response.get_data(as_text=True)
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--database-url", default=os.environ.get(
        "IDP_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--profile", help="profile the requests whose label contains this ('all': every one)")
    parser.add_argument("--stub-hash", action="store_true",
                        help="replace argon2 by a comparison (for instruction counts of the rest: count.py)")
    parser.add_argument("--sso-gets", type=int, default=3, help="SSO-session GET pairs after each login")
    args = parser.parse_args()
    with Instance(args.database_url, name=f"login_inproc_{os.getpid()}") as instance:
        identifiers = instance.create_accounts(8, PASSWORD)
        from idp import create_app
        from idp.settings import load_settings

        app = create_app(load_settings(instance.config, environ={}))
        hasher = app.extensions["idp"].hasher
        stored = hasher.hash(PASSWORD)
        verify_ms, verify_cpu = [0.0], [0.0]
        for _ in range(0 if args.stub_hash else 20):
            t, c = time.perf_counter(), time.thread_time()
            hasher.verify(stored, PASSWORD)
            verify_ms.append((time.perf_counter() - t) * 1000)
            verify_cpu.append((time.thread_time() - c) * 1000)
        hash_ms, hash_cpu = statistics.median(verify_ms), statistics.median(verify_cpu)
        if args.stub_hash:
            hasher.verify = lambda password_hash, password: password == PASSWORD
        timer = Timer(hasher, args.profile)
        steps: list[str] = []
        for i in range(args.rounds + 10):
            client = app.test_client()
            steps = one_login(timer, client, identifiers[i % len(identifiers)])
            for _ in range(args.sso_gets):
                assert timer("SSO GET /services", client, "GET", "/services").status_code == 200
                answer = timer("SSO GET /login", client, "GET", "/login")
                assert answer.status_code == 303 and answer.headers["Location"].endswith("/services")
            if i == 9:  # warm-up rounds are dropped
                timer.clear()
        wall = {k: statistics.median(v) for k, v in timer.wall.items()}
        cpu = {k: statistics.median(v) for k, v in timer.cpu.items()}
    print(f"database                   {instance.dialect}, {args.rounds} logins, medians in ms: wall / CPU of this thread")
    print(f"argon2id verify            {hash_ms:6.2f} / {hash_cpu:6.2f}")
    for step in steps:
        note = " (besides the hash)" if step.startswith("POST") else ""
        print(f"  {step + note:<40} {wall[step]:6.2f} / {cpu[step]:6.2f}")
    total, ctotal = sum(wall[s] for s in steps), sum(cpu[s] for s in steps)
    print(f"login route besides hash   {total:6.2f} / {ctotal:6.2f}   ({len(steps)} requests)")
    print(f"share of the route in hash {hash_ms / (hash_ms + total) * 100:5.1f} % / {hash_cpu / (hash_cpu + ctotal) * 100:5.1f} %")
    for name in ("SSO GET /services", "SSO GET /login") if args.sso_gets else ():
        print(f"{name:<26} {wall[name]:6.2f} / {cpu[name]:6.2f}")
    if timer.profiler is not None:
        if hasattr(timer.profiler, "output_text"):
            print(timer.profiler.output_text(unicode=False, color=False))
        else:
            import pstats
            pstats.Stats(timer.profiler).sort_stats("cumulative").print_stats(50)


if __name__ == "__main__":
    main()
