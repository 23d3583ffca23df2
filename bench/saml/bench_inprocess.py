"""Per-login cost of SP-initiated SAML logins measured inside one process (no HTTP server, no load generator).

Drives the WSGI app with Flask's test client and python3-saml requests, on PostgreSQL by default, and prints
for a login with an existing SSO session and for a password login: the HTTP requests and SQL statements of
one login, and the median CPU time of the measuring thread per login (the figure to compare on a shared
machine: time other processes take on the core is not counted); for the password login, the share of that
time spent in the argon2id verification. Bounded: ``--logins`` SSO logins, a tenth as many password logins.
Run: ``python bench/saml/bench_inprocess.py [--database sqlite:///…]``; see README.md for the figures.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import pstats
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_logins  # noqa: E402
from sqlalchemy import event  # noqa: E402

TABLE_RE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)")


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + "?" + parts.query


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/idp_bench_saml_inprocess")
    parser.add_argument("--logins", type=int, default=300)
    parser.add_argument("--bits", type=int, default=2048)
    parser.add_argument("--profile", action="store_true",
                        help="profile the password logins (cProfile, thread CPU time), top functions by own time")
    args = parser.parse_args()
    from idp import create_app
    from idp.core.passwords import hashing
    from idp.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="idp-bench-saml-inprocess-") as tmp:
        instance = Path(tmp)
        sp, identifier = bench_logins.prepare(instance, args.database, 5000, args.bits)
        app = create_app(load_settings(instance / "config.toml", environ={}))
        services = app.extensions["idp"]
        statements: collections.Counter[str] = collections.Counter()

        def _count(statement: str) -> None:
            table = TABLE_RE.search(statement)
            statements[f"{statement.split(None, 1)[0]} {table.group(1) if table else ''}"] += 1

        if services.db.dialect == "postgresql":
            # At the driver: statements sent without SQLAlchemy (rawsql, the replay insert) count too.
            import psycopg

            execute = psycopg.Cursor.execute

            def counted_execute(self: Any, query: Any, *a: Any, **k: Any) -> Any:
                _count(str(query))
                return execute(self, query, *a, **k)

            psycopg.Cursor.execute = counted_execute  # type: ignore[method-assign]
        else:
            @event.listens_for(services.db.engine, "before_cursor_execute")
            def _sa_count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
                _count(statement)

        hashed = [0.0]
        verify = hashing.PasswordHasher.verify

        def timed_verify(self: Any, *a: Any, **k: Any) -> bool:
            started = time.thread_time()
            try:
                return verify(self, *a, **k)
            finally:
                hashed[0] += time.thread_time() - started

        hashing.PasswordHasher.verify = timed_verify  # type: ignore[method-assign]

        steps: collections.defaultdict[str, list[float]] = collections.defaultdict(list)

        def step(name: str, call: Callable[[], Any]) -> Any:
            """One request, its thread CPU kept under ``name`` (the argon2 verify inside it subtracted)."""
            started, hashed_before = time.thread_time(), hashed[0]
            response = call()
            steps[name].append(time.thread_time() - started - (hashed[0] - hashed_before))
            return response

        def password_login(client: Any) -> int:
            """As ``bench_logins.login_with_password``: SSO request → login screen → password → answer."""
            url, _ = sp.login_url()  # type: ignore[attr-defined]
            first = step("GET /saml/sso/redirect (no session)", lambda: client.get(_path(url)))
            assert first.status_code == 303, first.status_code
            form_url = first.headers["Location"] + "?profil=parent"
            page = step("GET /login/<id> (the form)", lambda: client.get(form_url))
            csrf = bench_logins.CSRF_RE.search(page.get_data(as_text=True))
            assert csrf, "no login form"
            response = step("POST /login/<id> besides the hash", lambda: client.post(form_url, data={
                "identifiant": identifier, "mot_de_passe": bench_logins.PASSWORD, "csrf_token": csrf.group(1)}))
            requests = 3
            while response.status_code in (302, 303):
                response = step("GET /saml/resume/<id> (the answer)",
                                lambda location=response.headers["Location"]: client.get(location))
                requests += 1
            assert b"SAMLResponse" in response.data, response.status_code
            return requests

        def sso_login(client: Any, url: str) -> int:
            response, requests = client.get(_path(url)), 1
            while response.status_code in (302, 303):
                response, requests = client.get(response.headers["Location"]), requests + 1
            assert response.status_code == 200 and b"SAMLResponse" in response.data, response.status_code
            return requests

        browser = app.test_client()
        password_login(browser)
        urls = [sp.login_url()[0] for _ in range(args.logins + 30)]  # type: ignore[attr-defined]
        for url in urls[:30]:
            sso_login(browser, url)
        statements.clear()
        requests = sso_login(browser, urls[30])
        print(f"IdP key RSA-{args.bits}, {services.db.dialect}, one thread; CPU = time.thread_time() of this thread\n")
        print(f"login with an SSO session: {requests} HTTP request(s), {sum(statements.values())} SQL statement(s) "
              f"({', '.join(f'{n} x {s}' for s, n in statements.items())})")
        cpu = []
        for url in urls[31:]:
            started = time.thread_time()
            sso_login(browser, url)
            cpu.append(time.thread_time() - started)
        print(f"  CPU per login: median {statistics.median(cpu) * 1000:.2f} ms, "
              f"p90 {sorted(cpu)[int(len(cpu) * 0.9)] * 1000:.2f} ms (n={len(cpu)})")
        count = max(10, args.logins // 10)
        for _ in range(3):
            password_login(app.test_client())
        statements.clear()
        hashed[0] = 0.0
        cpu = []
        profiler = cProfile.Profile(time.thread_time) if args.profile else None
        for _ in range(count):
            started = time.thread_time()
            if profiler is not None:
                profiler.enable()
            requests = password_login(app.test_client())
            if profiler is not None:
                profiler.disable()
            cpu.append(time.thread_time() - started)
        print(f"\npassword login (new browser): {requests} HTTP requests, "
              f"{sum(statements.values()) / count:.0f} SQL statements")
        print(f"  CPU per login: median {statistics.median(cpu) * 1000:.1f} ms; argon2id verify "
              f"{hashed[0] / count * 1000:.1f} ms = {hashed[0] / sum(cpu) * 100:.0f} % of it (n={count})")
        for name, spent in steps.items():  # the test client's own work included (a few tenths of a ms each)
            print(f"    {name:<38} median {statistics.median(spent[-count:]) * 1000:5.2f} ms")
        if profiler is not None:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
        services.db.dispose()


if __name__ == "__main__":
    main()
