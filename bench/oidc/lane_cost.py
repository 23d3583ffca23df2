"""Server CPU of one token grant / UserInfo request with and without the OIDC WSGI lane (idp.oidc.fastlane).

The same instance as ``inprocess.py``; each request's WSGI environ is built beforehand (werkzeug's
``EnvironBuilder``) and only the call of the WSGI application and the reading of its answer are timed with
``time.thread_time`` — what a worker spends, without the test client's own work. Lane on and lane off
(every request handed to Flask, whose view runs the same fast decision) alternate by batches of 20, so both
see the same machine load; the medians over all requests are printed.

    .venv/bin/python bench/oidc/lane_cost.py [--pg URL | --sqlite] [-n 400]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from inprocess import Rp  # noqa: E402
from run import REDIRECT, make_instance, seed, write_instance  # noqa: E402

DBNAME = "idp_bench_oidc_lane"


def call(app: Any, environ: dict[str, Any]) -> tuple[float, str, bytes]:
    """Thread CPU of one WSGI call, its status and body."""
    status: list[str] = []

    def start_response(s: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        status.append(s)

    t0 = time.thread_time()
    body = b"".join(app(environ, start_response))
    return time.thread_time() - t0, status[0], body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("-n", type=int, default=400)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="idp-lane-oidc-"))
    try:
        config = write_instance(folder, 5000, f"sqlite:///{folder}/idp.sqlite3") if args.sqlite else \
             make_instance(args.pg, folder, 5000, DBNAME)
        client_id, secret, cookie = seed(config)
        from werkzeug.test import EnvironBuilder

        from idp import create_app
        from idp.settings import load_settings

        app = create_app(load_settings(config, environ={}))
        try:
            from idp.oidc.fastlane import OidcLane
        except ImportError:  # a version without the lane (to compare): every request through Flask
            lane: Any = type("NoLane", (), {"_routes": {}})()
            routes: dict[Any, Any] = {}
        else:
            node: Any = app.wsgi_app
            while not isinstance(node, OidcLane):
                node = node._app
            lane, routes = node, dict(node._routes)
        rp = Rp(app, client_id, secret, cookie)
        base = "http://127.0.0.1:5000"

        def token_environ(form: dict[str, str]) -> dict[str, Any]:
            return EnvironBuilder(path="/oidc/token", method="POST", data=form, headers=rp.basic,
                                  base_url=base).get_environ()

        def refresh_step() -> Callable[[], float]:
            chain = [rp.exchange(rp.authorize())["refresh_token"]]

            def step() -> float:
                import json

                cpu, status, body = call(app, token_environ({"grant_type": "refresh_token",
                                                             "refresh_token": chain.pop()}))
                assert status.startswith("200"), (status, body)
                chain.append(json.loads(body)["refresh_token"])
                return cpu
            return step

        def exchange_step() -> Callable[[], float]:
            def step() -> float:
                environ = token_environ({"grant_type": "authorization_code", "code": rp.authorize(),
                                         "redirect_uri": REDIRECT})
                cpu, status, body = call(app, environ)
                assert status.startswith("200"), (status, body)
                return cpu
            return step

        def userinfo_step() -> Callable[[], float]:
            access = rp.exchange(rp.authorize())["access_token"]

            def step() -> float:
                environ = EnvironBuilder(path="/oidc/userinfo", headers={"Authorization": f"Bearer {access}"},
                                         base_url=base).get_environ()
                cpu, status, body = call(app, environ)
                assert status.startswith("200"), (status, body)
                return cpu
            return step

        def authorize_step() -> Callable[[], float]:
            import secrets
            from urllib.parse import urlencode

            def step() -> float:
                query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
                                   "scope": "openid profile fr_edu", "state": secrets.token_urlsafe(8),
                                   "nonce": secrets.token_urlsafe(8)})
                environ = EnvironBuilder(path="/oidc/authorize", query_string=query, base_url=base,
                                         headers={"Cookie": cookie}).get_environ()
                cpu, status, _ = call(app, environ)
                assert status.startswith("302"), status
                return cpu
            return step

        print(f"OIDC server CPU per request (thread time of the WSGI call), "
              f"{'SQLite' if args.sqlite else 'PostgreSQL'}, medians over {args.n} requests each")
        for name, make in (("refresh grant", refresh_step), ("code exchange", exchange_step),
                           ("userinfo", userinfo_step), ("authorize (SSO)", authorize_step)):
            step = make()
            for _ in range(20):
                step()
            times: dict[bool, list[float]] = {True: [], False: []}
            for batch in range(args.n // 10):
                on = batch % 2 == 0
                lane._routes = routes if on else {}
                for _ in range(20):
                    times[on].append(step())
            lane._routes = routes
            on, off = statistics.median(times[True]) * 1000, statistics.median(times[False]) * 1000
            print(f"{name:<18} lane {on:5.2f} ms   Flask {off:5.2f} ms")
    finally:
        if not args.sqlite:
            import psycopg

            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{DBNAME}" WITH (FORCE)')
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
