"""A September morning against 1, then 2 instances behind HAProxy: throughput and p95 per kind of journey.

The mix: 70 % SSO logins (a person with a session opens the ENT by SAML, Pronote by CAS or the téléservices by
OIDC, a third each), 20 % password logins, 10 % parent activations by SMS (``journeys.py``). Each configuration
is a fresh topology from ``idp cluster``'s code (own PostgreSQL and Redis, HAProxy, the demo register and
services, plus --parents synthetic parents waiting for activation), each instance ``idp serve --workers 1``
with the default argon2id cost (t=2, 19 MiB). The load: --processes × --users closed-loop virtual users, the
first --warmup seconds discarded. Everything runs on this machine: instances, PostgreSQL, Redis, HAProxy and
the load generator share its cores, so the 2/1 ratio is what a second instance adds on the same cores.

    .venv/bin/python bench/september/run.py [--seconds 45] [--warmup 5] [--processes 3] [--users 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import random
import re
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import journeys  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from common import cpu_seconds  # noqa: E402

MIX = (("sso_saml", 70 / 3), ("sso_cas", 70 / 3), ("sso_oidc", 70 / 3), ("password", 20), ("activation", 10))
BENCH_UAI = "0999990X"
OVERRIDES = {"server": {"development": True}, "logging": {"level": "WARNING"},
             "activation": {"starts_per_ip_per_hour": 1_000_000}, "sms": {"hourly_budget": 1_000_000},
             "throttle": {"ip_max_failures": 1_000_000, "network_max_failures": 1_000_000},
             "delivery": {"background": True, "poll_seconds": 1}, "protocols": {"enabled": ["saml", "oidc", "cas"]}}


def add_parents(database_url: str, count: int) -> list[tuple[str, str, str, str]]:
    """Parents with one child each and distinct mobiles, waiting for activation (family, given, mobile, born)."""
    import psycopg

    now = dt.datetime.now(dt.UTC)
    parents = []
    with psycopg.connect(database_url, autocommit=False) as conn:
        conn.execute("INSERT INTO schools (uai, name, kind, academie, city, updated_at) VALUES "
                     "(%s, 'Collège de la Rentrée', 'college', 'Montpellier', '', %s)", (BENCH_UAI, now))
        for i in range(count):
            family, born, mobile = f"Rentree{i}", dt.date(2012, 1 + i % 12, 1 + i % 28), f"+3361{i:07d}"
            student = conn.execute(
                "INSERT INTO students (ine, uai, external_id, family_name, given_names, birth_date, class_code, "
                "level, postal_code, status, fingerprint, updated_at) VALUES (%s, %s, %s, %s, 'Jules', %s, '6A', "
                "'', '', 'present', 'x', %s) RETURNING id", (f"9{i:09d}R", BENCH_UAI, f"B{i}", family, born, now)
            ).fetchone()[0]
            rep = conn.execute(
                "INSERT INTO representatives (uai, external_id, family_name, given_names, mobile_phone, email, "
                "postal_code, status, fingerprint, updated_at) VALUES (%s, %s, %s, 'Anne', %s, '', '', 'present', "
                "'x', %s) RETURNING id", (BENCH_UAI, f"R{i}", family, mobile, now)).fetchone()[0]
            conn.execute("INSERT INTO student_links (student_id, representative_id, relationship, "
                         "legal_responsibility, status, fingerprint, updated_at) VALUES (%s, %s, 'mere', true, "
                         "'present', 'x', %s)", (student, rep, now))
            parents.append((family, "Anne", mobile, born.isoformat()))
    return parents


def prepare(instances: int, root: Path, parents: int) -> tuple[Any, Any, journeys.Target, list]:
    """A fresh topology with the demo and the bench's own CAS service and OIDC client."""
    from idp.cli.demo_stack import Operator, Stack, adapter_specs
    from idp.cluster.demo import start_demo_services
    from idp.cluster.processes import free_port
    from idp.cluster.topology import Cluster, ClusterSpec

    port = free_port()
    specs = [s for s in adapter_specs("127.0.0.1", free_port(), f"http://127.0.0.1:{port}", root / "services")
             if s.name == "ent"]
    cluster = Cluster(ClusterSpec(root=root, instances=instances, port=port, workers=1, overrides=OVERRIDES))
    adapters = Stack(echo=lambda _line: None)
    cluster.start()
    accounts = start_demo_services(cluster, adapters, specs)
    pg_url = cluster.database_url
    waiting = add_parents(pg_url, parents)
    op = Operator(str(cluster.config))
    op("cas", "add", "Bench", "http://127.0.0.1:9/bench/", "--match", "prefix", "--id", "bench")
    out = op("oidc", "add", "--name", "Bench", "--client-id", "bench", "--redirect-uri", "http://127.0.0.1:9/cb",
             "--scope", "openid profile", "--first-party")
    secret = re.search(r"client_secret\s*:\s*(\S+)", out).group(1)  # type: ignore[union-attr]
    parent = next(a for a in accounts if a.identifier.startswith("s."))
    target = journeys.Target(base=cluster.url, database_url=pg_url, ent_entity_id=f"{specs[0].url}/saml/metadata",
                             cas_service="http://127.0.0.1:9/bench/", oidc_client="bench", oidc_secret=secret,
                             oidc_redirect="http://127.0.0.1:9/cb", account=parent.identifier,
                             password=parent.password)
    return cluster, adapters, target, waiting


def virtual_user(target: journeys.Target, parents: list, until: float, seed: int, out: list) -> None:
    """One person after another, closed loop: pick a journey from the mix, run it, record it."""
    rng = random.Random(seed)
    session = requests.Session()
    journeys.password_login(target, session)  # the SSO session this user's SSO journeys reuse
    phone = journeys.Phone(target.database_url)
    kinds, weights = zip(*MIX, strict=True)
    while time.time() < until:
        kind = rng.choices(kinds, weights)[0]
        started = time.time()
        try:
            if kind == "password":
                with requests.Session() as fresh:
                    journeys.password_login(target, fresh)
            elif kind == "activation":
                if not parents:
                    continue
                journeys.activation(target, phone, parents.pop())
            else:
                getattr(journeys, kind)(target, session)
            ok = True
        except (journeys.Failed, requests.RequestException) as exc:
            ok = False
            if sum(1 for r in out if not r[3]) < 3:
                print(f"  {kind}: {exc}", file=sys.stderr)
        out.append((kind, started, time.time() - started, ok))


def generator(target: journeys.Target, parents: list, until: float, users: int, seed: int, queue: Any) -> None:
    """One load-generator process: ``users`` threads."""
    records: list = []
    share = [parents[i::users] for i in range(users)]
    threads = [threading.Thread(target=virtual_user, args=(target, share[i], until, seed * 100 + i, records))
               for i in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.put(records)


def _tree(pid: int) -> list[int]:
    """A process and its descendants (gunicorn's master and workers, the postmaster and its backends)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def parts(cluster: Any) -> dict[str, list[int]]:
    """The processes of each part of the topology, for CPU accounting."""
    children = cluster.supervisor.children
    postmaster = int((cluster.postgres.data / "postmaster.pid").read_text().split()[0])
    return {"idp": [p for name, c in children.items() if name.startswith("idp") for p in _tree(c.pid)],
            "postgresql": _tree(postmaster), "redis": _tree(children["redis"].pid),
            "haproxy": _tree(children["haproxy"].pid)}


def load(target: journeys.Target, parents: list, args: argparse.Namespace,
         cluster: Any) -> dict[str, dict[str, float]]:
    """Run the mix; per kind (and SSO, all): journeys per second and p95 latency over the measured window; and
    the CPU seconds each part of the topology used per journey over the same window."""
    start = time.time() + 2
    until = start + args.warmup + args.seconds
    cpu = threading.Timer(start + args.warmup - time.time(), lambda: before.update(
        {k: cpu_seconds(v) for k, v in parts(cluster).items()}))
    before: dict[str, float] = {}
    cpu.start()
    queue: Any = multiprocessing.get_context("fork").Queue()
    procs = [multiprocessing.get_context("fork").Process(
        target=generator, args=(target, parents[i::args.processes], until, args.users, i + 1, queue))
        for i in range(args.processes)]
    for p in procs:
        p.start()
    time.sleep(max(0.0, until - time.time()))
    after = {k: cpu_seconds(v) for k, v in parts(cluster).items()}
    records = [r for _ in procs for r in queue.get()]
    for p in procs:
        p.join()
    measured = [r for r in records if r[1] >= start + args.warmup and r[1] + r[2] <= until]
    groups: dict[str, list] = defaultdict(list)
    for kind, _, latency, ok in measured:
        for name in {kind, "sso" if kind.startswith("sso") else kind, "all"}:
            groups[name].append((latency, ok))
    result = {}
    for name, rows in groups.items():
        good = sorted(lat for lat, ok in rows if ok)
        result[name] = {"per_second": len(good) / args.seconds, "errors": sum(1 for _, ok in rows if not ok),
                        "p95_ms": 1000 * good[int(0.95 * (len(good) - 1))] if good else float("nan")}
    journeys_done = max(1, sum(1 for _, _, _, ok in measured if ok))
    result["cpu_ms_per_journey"] = {k: 1000 * (after[k] - before.get(k, after[k])) / journeys_done for k in after}
    result["cpu_cores_busy"] = {k: (after[k] - before.get(k, after[k])) / args.seconds for k in after}
    return result


TABLES = ("accounts", "students", "representatives", "student_links", "sso_sessions", "sso_session_participants",
          "authn_requests", "audit_events", "activation_transactions", "delivery_queue", "oidc_codes", "oidc_tokens")


def table_sizes(database_url: str) -> dict[str, dict[str, float]]:
    """Rows and bytes per row (heap, indexes and TOAST) of the main tables after the run, for PostgreSQL sizing."""
    import psycopg

    sizes = {}
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        for table in TABLES:
            if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
                continue
            rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - fixed names
            total = conn.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()[0]
            sizes[table] = {"rows": rows, "bytes_per_row": total / rows if rows else 0.0}
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=45)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--parents", type=int, default=1500)
    parser.add_argument("--instances", default="1,2")
    args = parser.parse_args()
    figures = {}
    for count in [int(n) for n in args.instances.split(",")]:
        with tempfile.TemporaryDirectory(prefix=f"idp-september-{count}-") as tmp:
            cluster, adapters, target, parents = prepare(count, Path(tmp), args.parents)
            try:
                print(f"== {count} instance(s) behind HAProxy, {args.processes}×{args.users} users, "
                      f"{args.seconds:.0f} s measured", flush=True)
                figures[count] = load(target, parents, args, cluster)
                figures[count]["tables"] = table_sizes(target.database_url)
            finally:
                adapters.stop()
                cluster.stop(discard=True)
        for name in ("sso_saml", "sso_cas", "sso_oidc", "sso", "password", "activation", "all"):
            f = figures[count].get(name, {"per_second": 0, "p95_ms": float("nan"), "errors": 0})
            print(f"  {name:<11} {f['per_second']:7.1f} /s   p95 {f['p95_ms']:7.0f} ms   errors {f['errors']}")
        for table, size in figures[count]["tables"].items():
            print(f"  table {table:<26} {size['rows']:8.0f} rows   {size['bytes_per_row']:6.0f} bytes per row")
        for part, ms in figures[count]["cpu_ms_per_journey"].items():
            print(f"  cpu {part:<11} {ms:6.1f} ms per journey   {figures[count]['cpu_cores_busy'][part]:.2f} cores busy")
    if 1 in figures and 2 in figures:
        for name in ("sso", "password", "activation", "all"):
            one, two = figures[1].get(name, {}).get("per_second", 0), figures[2].get(name, {}).get("per_second", 0)
            print(f"  ratio 2/1 {name:<11} {two / one if one else float('nan'):.2f}")
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
