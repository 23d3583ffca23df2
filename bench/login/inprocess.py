"""Per-request cost of the login route and of an SSO-session page, in process (no HTTP, no load generator).

Method: a fresh database (PostgreSQL by default), the real application built by ``create_app`` driven by
Flask's test client (WSGI, cookies kept like a browser). Each step of the login route is timed separately,
median over ``--rounds`` complete logins, wall clock and CPU time of the thread; the argon2 verify inside
each POST is timed and subtracted from that POST, so "POST besides the hash" is the rest of that request. Then a GET of "Mes services" and a
GET /login answered from a valid SSO session are timed. The machine may be shared: compare before/after
figures taken the same way minutes apart, never absolute numbers across machines.

    python bench/login/inprocess.py [--rounds 200] [--database-url postgresql://…] [--profile STEP]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import Instance  # noqa: E402

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "Velo-Rouge-Garonne-42"  # noqa: S105 - benchmark accounts only
STEPS = ("begin", "form", "post", "resume", "services")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--database-url", default=os.environ.get(
        "IDP_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--profile", choices=(*STEPS, "sso", "all"), help="print a cProfile of that step")
    parser.add_argument("--sort", default="cumulative", help="cProfile sort key (cumulative, tottime)")
    args = parser.parse_args()
    with Instance(args.database_url, name="login_inproc") as instance:
        identifiers = instance.create_accounts(8, PASSWORD)
        from idp import create_app
        from idp.settings import load_settings

        settings = load_settings(instance.config, environ={})
        app = create_app(settings)
        services = app.extensions["idp"]
        hasher = services.hasher
        stored = hasher.hash(PASSWORD)
        verify_ms, verify_cpu = [], []
        for _ in range(20):
            t, c = time.perf_counter(), time.thread_time()
            hasher.verify(stored, PASSWORD)
            verify_ms.append((time.perf_counter() - t) * 1000)
            verify_cpu.append((time.thread_time() - c) * 1000)
        hash_ms, hash_cpu = statistics.median(verify_ms), statistics.median(verify_cpu)
        # Each POST's own verify is timed and subtracted from that POST (the machine may be shared).
        spent = [0.0, 0.0]
        real_verify = hasher.verify

        def timed_verify(password_hash: str | None, password: str) -> bool:
            t, c = time.perf_counter(), time.thread_time()
            try:
                return real_verify(password_hash, password)
            finally:
                spent[0] += (time.perf_counter() - t) * 1000
                spent[1] += (time.thread_time() - c) * 1000

        hasher.verify = timed_verify  # type: ignore[method-assign]

        times: dict[str, list[float]] = {s: [] for s in (*STEPS, "sso_services", "sso_login")}
        cpu: dict[str, list[float]] = {s: [] for s in times}
        profiler = None
        if args.profile:
            try:  # a sampling profiler distorts less; cProfile when it is not installed
                from pyinstrument import Profiler
                profiler = Profiler(interval=0.0001)
                profiler.enable, profiler.disable = profiler.start, profiler.stop  # type: ignore[method-assign]
            except ImportError:
                import cProfile
                profiler = cProfile.Profile()

        def timed(name: str, fn: Callable[[], object]) -> object:
            if profiler is not None and (args.profile == "all" or name.startswith(args.profile)):
                profiler.enable()
            spent[0] = spent[1] = 0.0
            t, c = time.perf_counter(), time.thread_time()
            out = fn()
            times[name].append((time.perf_counter() - t) * 1000 - spent[0])
            cpu[name].append((time.thread_time() - c) * 1000 - spent[1])
            if profiler is not None and (args.profile == "all" or name.startswith(args.profile)):
                profiler.disable()
            return out

        for i in range(args.rounds + 10):
            client = app.test_client()
            ident = identifiers[i % len(identifiers)]
            r = timed("begin", lambda: client.get("/login?profil=parent"))
            form_url = r.headers["Location"]  # type: ignore[attr-defined]
            page = timed("form", lambda: client.get(form_url))
            token = CSRF.search(page.get_data(as_text=True)).group(1)  # type: ignore[attr-defined,union-attr]
            posted = timed("post", lambda: client.post(form_url, data={
                "identifiant": ident, "mot_de_passe": PASSWORD, "csrf_token": token}))
            assert posted.status_code == 303, posted.status_code  # type: ignore[attr-defined]
            resumed = timed("resume", lambda: client.get(posted.headers["Location"]))  # type: ignore[attr-defined]
            final = timed("services", lambda: client.get(resumed.headers["Location"]))  # type: ignore[attr-defined]
            assert final.status_code == 200 and "Mes services" in final.get_data(as_text=True)  # type: ignore[attr-defined]
            for _ in range(3):
                r = timed("sso_services", lambda: client.get("/services"))
                assert r.status_code == 200  # type: ignore[attr-defined]
                r = timed("sso_login", lambda: client.get("/login"))
                assert r.status_code == 303 and r.headers["Location"].endswith("/services")  # type: ignore[attr-defined]
            if i == 9:  # warm-up rounds are dropped
                for v in (*times.values(), *cpu.values()):
                    v.clear()
        med = {k: statistics.median(v) for k, v in times.items()}
        cmed = {k: statistics.median(v) for k, v in cpu.items()}
        print(f"database                 {instance.dialect}, {args.rounds} logins, medians in ms: wall / CPU of this thread")
        print(f"argon2id verify          {hash_ms:6.2f} / {hash_cpu:6.2f}")
        for step in STEPS:
            label = "post (besides the hash)" if step == "post" else step
            print(f"  {label:<24} {med[step]:6.2f} / {cmed[step]:6.2f}")
        total, ctotal = sum(med[s] for s in STEPS), sum(cmed[s] for s in STEPS)
        print(f"login route besides hash {total:6.2f} / {ctotal:6.2f}  -> share in hash "
              f"{hash_ms / (hash_ms + total) * 100:.1f} % / {hash_cpu / (hash_cpu + ctotal) * 100:.1f} %")
        print(f"SSO GET /services        {med['sso_services']:6.2f} / {cmed['sso_services']:6.2f}")
        print(f"SSO GET /login (answer)  {med['sso_login']:6.2f} / {cmed['sso_login']:6.2f}")
        if profiler is not None:
            if hasattr(profiler, "output_text"):
                print(profiler.output_text(unicode=False, color=False))
            else:
                import pstats
                pstats.Stats(profiler).sort_stats(args.sort).print_stats(50)


if __name__ == "__main__":
    main()
