"""Complete password logins per second per core, through the real HTTP stack.

Method: a fresh PostgreSQL database (or SQLite with --database-url sqlite:///…), accounts hashed with the
default argon2id parameters, ONE worker of idp serve's server (Granian, 4 threads) pinned to core 0 (taskset), this load generator pinned
to core 1 with a few concurrent browsers. One login is the route a person takes, every redirect followed, in a
new browser each time: GET /login?profil=parent (the form) → POST identifier and password → GET "Mes
services" (3 requests; 5 before session 2, with a redirect to the form and a resume step). Prints logins/s,
latency percentiles, the argon2 verify time measured on the same core, and the share of each login spent in
the hash: from throughput x the idle-machine verify time, and from the worker's CPU, whose argon2 part is
counted inside the worker (``hash_probe.py``: under load the hash costs the worker more than on an idle
machine, the other core's work sharing its cache). Never fails because the machine is slow.

    python bench/login/run.py [--seconds 20] [--browsers 4] [--database-url postgresql://…]
"""

from __future__ import annotations

import argparse
import html
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hash_probe  # noqa: E402  (beside this script)
import reference  # noqa: E402
from common import Instance, PinnedPostgres, cpu_seconds, pin_self  # noqa: E402

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ACTION = re.compile(r'<form method="post" action="([^"]+)"')
PASSWORD = "Velo-Rouge-Garonne-42"  # noqa: S105 - benchmark accounts only


def one_login(base: str, identifier: str) -> None:
    """Run one complete login in a new browser, following every redirect; raise on any unexpected answer."""
    with requests.Session() as browser:
        page = browser.get(f"{base}/login?profil=parent")  # the form (any redirect on the way followed)
        action, token = ACTION.search(page.text), CSRF.search(page.text)
        if page.status_code != 200 or not action or not token:
            raise RuntimeError(f"no login form ({page.status_code})")
        posted = browser.post(base + html.unescape(action.group(1)), data={
            "identifiant": identifier, "mot_de_passe": PASSWORD, "csrf_token": token.group(1)},
            allow_redirects=False)
        if posted.status_code != 303:
            raise RuntimeError(f"login answered {posted.status_code}")
        services = browser.get(base + posted.headers["Location"])  # resume step(s), if any, followed
        if services.status_code != 200 or "Mes services" not in services.text:
            raise RuntimeError("services page missing")


def load(base: str, identifiers: list[str], seconds: float, browsers: int) -> tuple[list[float], int]:
    """Run ``browsers`` concurrent login loops for ``seconds``; return latencies and the error count."""
    latencies: list[float] = []
    errors = [0]
    deadline = time.perf_counter() + seconds
    lock = threading.Lock()

    def loop(n: int) -> None:
        i = n
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                one_login(base, identifiers[i % len(identifiers)])
            except Exception:  # noqa: BLE001 - counted and reported
                with lock:
                    errors[0] += 1
                continue
            with lock:
                latencies.append(time.perf_counter() - t0)
            i += browsers

    threads = [threading.Thread(target=loop, args=(n,)) for n in range(browsers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0]


def argon2_ms_on_core(core: int) -> tuple[float, float]:
    """Median argon2id verify time with the default parameters on the server's core: (wall, CPU) in ms."""
    code = ("import time,statistics;from argon2 import PasswordHasher as P;"
            "h=P(time_cost=2,memory_cost=19456,parallelism=1);x=h.hash('a');r=[];c=[]\n"
            "for _ in range(30):\n t=time.perf_counter();u=time.process_time();h.verify(x,'a')\n"
            " r.append(time.perf_counter()-t);c.append(time.process_time()-u)\n"
            "print(statistics.median(r)*1000,statistics.median(c)*1000)")
    out = subprocess.run(["taskset", "-c", str(core), sys.executable, "-c", code], capture_output=True,
                         text=True, check=True)
    wall, cpu = out.stdout.split()
    return float(wall), float(cpu)


def probe_path() -> str:
    """``PYTHONPATH`` for the server's worker to import ``hash_probe`` (beside this script)."""
    return os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH")]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--browsers", type=int, default=4)
    parser.add_argument("--accounts", type=int, default=40)
    parser.add_argument("--threads", type=int, default=4,
                        help="the worker's application threads (they overlap one request's database waits with another's CPU)")
    parser.add_argument("--pg-core", type=int, default=None,
                        help="pin the local PostgreSQL server to this core during the run (default: not pinned)")
    parser.add_argument("--stub-hash", action="store_true",
                        help="diagnosis only: the worker compares the password instead of running argon2, so the "
                             "figures are the rest of a login without the hash's effect on the cache")
    parser.add_argument("--database-url", default=os.environ.get(
        "IDP_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    with Instance(args.database_url, name="login") as instance:
        identifiers = instance.create_accounts(args.accounts, PASSWORD)
        stats = instance.dir / "hash_stats.bin"
        instance.start_server(core=0, workers=1, threads=args.threads, target="hash_probe:app",
                              env={"IDP_BENCH_HASH_STATS": str(stats), "PYTHONPATH": probe_path(),
                                   **({"IDP_BENCH_STUB_PASSWORD": PASSWORD} if args.stub_hash else {})})
        pin_self(1)
        with PinnedPostgres(args.pg_core) as pinned:
            machine = reference.measure()
            one_login(instance.base, identifiers[0])  # warm-up
            load(instance.base, identifiers, 3, args.browsers)
            workers, backends = instance.worker_pids(), instance.backend_pids()
            before = argon2_ms_on_core(0)  # the machine's speed drifts: calibrate just before and after
            cpu0, hashed0 = (cpu_seconds(workers), cpu_seconds(backends)), hash_probe.read(stats)
            latencies, errors = load(instance.base, identifiers, args.seconds, args.browsers)
            worker_s, pg_s = cpu_seconds(workers) - cpu0[0], cpu_seconds(backends) - cpu0[1]
            hashed1 = hash_probe.read(stats)
    verifications = hashed1["verifications"] - hashed0["verifications"]
    in_worker = (hashed1["cpu_seconds"] - hashed0["cpu_seconds"]) / verifications * 1000 if verifications else 0.0
    rate = len(latencies) / args.seconds
    after = argon2_ms_on_core(0)
    hash_ms, hash_cpu = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
    share = rate * hash_ms / 1000
    if args.stub_hash:
        print("STUB HASH: argon2 replaced by a comparison in the worker (diagnosis; not a login figure)")
    print(f"database              {instance.dialect}")
    print(f"logins                {len(latencies)} in {args.seconds:.0f} s, errors {errors}")
    print(f"server                idp serve's (Granian), 1 worker ({args.threads} threads) on core 0; {pinned.note}")
    print(machine.line())
    print(f"logins/s per core     {rate:.1f}   (3 HTTP requests each; bound by argon2, whose speed the line above "
          f"does not predict: see the verify time below)")
    if latencies:
        q = statistics.quantiles(latencies, n=100)
        print(f"latency ms            median {statistics.median(latencies) * 1000:.1f}  p95 {q[94] * 1000:.1f}")
    print(f"argon2id verify       {hash_ms:.1f} ms (m=19 MiB, t=2, p=1; {before[1]:.1f} ms CPU just before the run, "
          f"{after[1]:.1f} after) -> ceiling {1000 / hash_ms:.1f} logins/s")
    print(f"share of time in hash {share * 100:.0f} %   (logins/s x verify time; outside the hash: {(1 - share) * 100:.0f} %)")
    if latencies and worker_s:
        per_login = worker_s / len(latencies) * 1000
        print(f"worker CPU per login  {per_login:.1f} ms -> {1000 / per_login:.1f} logins/s per fully used core; "
              f"PostgreSQL {pg_s / len(latencies) * 1000:.2f} ms")
        print(f"  in the hash         {in_worker:.1f} ms = {in_worker / per_login * 100:.0f} % (the worker's own verify CPU, "
              f"{verifications:.0f} verifies; {hash_cpu:.1f} ms on an idle machine = {hash_cpu / per_login * 100:.0f} %)")
        print(f"  outside the hash    {per_login - in_worker:.1f} ms (3 requests: HTTP server, Flask, the login's statements)")


if __name__ == "__main__":
    main()
