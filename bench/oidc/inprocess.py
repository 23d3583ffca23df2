"""OIDC per-request cost measured in process (no HTTP server, no load generator): usable on a shared machine.

The same instance as ``run.py`` (a fresh PostgreSQL database, or SQLite with ``--sqlite``; a first-party
client with refresh tokens; an SSO session opened directly), then N requests of each kind through the WSGI
app with Flask's test client, one at a time, timed with ``time.process_time`` (CPU of this process, which
is what a pinned worker spends; PostgreSQL's own CPU is not counted) and wall time. ``--profile`` prints
the cProfile of the chosen figure sorted by cumulative time.

    .venv/bin/python bench/oidc/inprocess.py [--pg URL | --sqlite] [-n 300] [--only refresh] [--profile]
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import pstats
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import REDIRECT, make_instance, seed, write_instance  # noqa: E402

DBNAME = "idp_bench_oidc_inprocess"  # never the database run.py is measuring


class Rp:
    """The relying party's three steps on Flask's test client."""

    def __init__(self, app: object, client_id: str, secret: str, cookie: str) -> None:
        self.client = app.test_client()  # type: ignore[attr-defined]  # the browser (SSO cookie)
        name, _, value = cookie.partition("=")
        self.client.set_cookie(name, value, domain="127.0.0.1")
        self.backchannel = app.test_client(use_cookies=False)  # type: ignore[attr-defined]  # the RP's server
        self.client_id = client_id
        self.basic = {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}

    def authorize(self) -> str:
        query = urlencode({"response_type": "code", "client_id": self.client_id, "redirect_uri": REDIRECT,
                           "scope": "openid profile fr_edu", "state": secrets.token_urlsafe(8),
                           "nonce": secrets.token_urlsafe(8)})
        response = self.client.get("/oidc/authorize?" + query, base_url="http://127.0.0.1:5000")
        code = parse_qs(urlsplit(response.headers.get("Location", "")).query).get("code", [""])[0]
        if response.status_code != 302 or not code:
            raise RuntimeError(f"authorize answered {response.status_code}: {response.headers.get('Location')}")
        return code

    def token(self, form: dict[str, str]) -> dict[str, str]:
        response = self.backchannel.post("/oidc/token", data=form, headers=self.basic, base_url="http://127.0.0.1:5000")
        answer = response.get_json()
        if response.status_code != 200 or "id_token" not in answer:
            raise RuntimeError(f"token answered {response.status_code}: {answer}")
        return answer  # type: ignore[no-any-return]

    def exchange(self, code: str) -> dict[str, str]:
        return self.token({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT})

    def refresh(self, token: str) -> str:
        return self.token({"grant_type": "refresh_token", "refresh_token": token})["refresh_token"]

    def userinfo(self, access_token: str) -> None:
        response = self.backchannel.get("/oidc/userinfo", headers={"Authorization": f"Bearer {access_token}"},
                                   base_url="http://127.0.0.1:5000")
        if response.status_code != 200 or "sub" not in response.get_json():
            raise RuntimeError(f"userinfo answered {response.status_code}")


STATEMENTS = [0]
PROFILE_SORT = ["cumulative"]


def count_statements(engine: object) -> None:
    """Count database round trips: statements, and BEGIN/COMMIT/ROLLBACK outside autocommit."""
    from sqlalchemy import event

    def statement(*_: object) -> None:
        STATEMENTS[0] += 1

    def transaction(conn: Any, *_: object) -> None:
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            STATEMENTS[0] += 1

    event.listen(engine, "before_cursor_execute", statement)
    for name in ("begin", "commit", "rollback"):
        event.listen(engine, name, transaction)


def raw_statements() -> int:
    """Statements sent on the driver directly (idp.storage.rawsql), if this version has them."""
    try:
        from idp.storage.rawsql import RawStatement
    except ImportError:
        return 0
    return RawStatement.executed


def measure(name: str, count: int, step: Callable[[], None], profile: bool) -> None:
    """Run ``step`` ``count`` times; print CPU and wall time per call (and the CPU profile if asked)."""
    profiler = cProfile.Profile(time.process_time) if profile else None
    walls: list[float] = []
    batches: list[float] = []  # CPU per op of each batch of 20: the minimum is the least disturbed figure
    statements = STATEMENTS[0] + raw_statements()
    if profiler:
        profiler.enable()
    cpu0 = time.process_time()
    for start in range(0, count, 20):
        batch0 = time.process_time()
        for _ in range(min(20, count - start)):
            t0 = time.perf_counter()
            step()
            walls.append(time.perf_counter() - t0)
        batches.append((time.process_time() - batch0) / min(20, count - start))
    if profiler:
        profiler.disable()
    cpu = (time.process_time() - cpu0) / count
    best = min(batches)
    trips = (STATEMENTS[0] + raw_statements() - statements) / count
    print(f"{name:<24} CPU/op {cpu * 1000:5.2f} ms mean, {best * 1000:5.2f} ms best batch ({1 / best:4.0f}/s per core); "
          f"{trips:4.1f} round trips/op; wall median {statistics.median(walls) * 1000:6.2f} ms over {count}")
    if profiler:
        pstats.Stats(profiler).sort_stats(PROFILE_SORT[0]).print_stats(45)
        profiler.dump_stats(f"/tmp/oidc-{name.split()[0]}.prof")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--only", choices=["authorize", "exchange", "userinfo", "refresh", "flow"], default=None)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="cumulative", help="cProfile sort key (cumulative, tottime)")
    args = parser.parse_args()
    PROFILE_SORT[0] = args.sort
    folder = Path(tempfile.mkdtemp(prefix="idp-inproc-oidc-"))
    try:
        config = write_instance(folder, 5000, f"sqlite:///{folder}/idp.sqlite3") if args.sqlite else \
             make_instance(args.pg, folder, 5000, DBNAME)
        client_id, secret, cookie = seed(config)
        from idp import create_app
        from idp.settings import load_settings

        app = create_app(load_settings(config, environ={}))
        count_statements(app.extensions["idp"].db.engine)
        rp = Rp(app, client_id, secret, cookie)
        for _ in range(20):  # warm-up: connections, key caches, SQLAlchemy's statement cache
            rp.refresh(rp.exchange(rp.authorize())["refresh_token"])
            rp.userinfo(rp.exchange(rp.authorize())["access_token"])
        print(f"OIDC in process, {'SQLite' if args.sqlite else 'PostgreSQL'}, Flask test client, one request at a time")
        n = args.n

        def want(name: str) -> bool:
            return args.only in (None, name)

        if want("authorize"):
            measure("authorize (SSO session)", n, rp.authorize, args.profile)
        if want("exchange"):
            codes = [rp.authorize() for _ in range(n)]
            measure("code exchange", n, lambda: rp.exchange(codes.pop()) and None, args.profile)
        if want("userinfo"):
            access = rp.exchange(rp.authorize())["access_token"]
            measure("userinfo", n, lambda: rp.userinfo(access), args.profile)
        if want("refresh"):
            chain = [rp.exchange(rp.authorize())["refresh_token"]]
            measure("refresh grant", n, lambda: chain.append(rp.refresh(chain.pop())), args.profile)
        if want("flow"):
            measure("complete flow", n, lambda: rp.userinfo(rp.exchange(rp.authorize())["access_token"]),
                    args.profile)
    finally:
        if not args.sqlite:
            import psycopg

            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{DBNAME}" WITH (FORCE)')
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
