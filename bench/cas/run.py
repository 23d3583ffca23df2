"""CAS benchmark: ticket validations/s and login-with-SSO-session → validate round trips/s, on one core.

One worker of idp serve's server (Granian, 4 threads) is pinned to core 0 with ``taskset -c 0``; this process, the load
generator, pins itself to core 1. PostgreSQL (a fresh ``idp_bench_cas`` database) is not pinned. Each figure is
bounded in time (``--seconds``, at most 30). Nothing hashes a password: the SSO session is opened directly.

    .venv/bin/python bench/cas/run.py [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--redis URL]

Figures printed:
- validations/s: ``/cas/p3/serviceValidate`` of pre-issued service tickets (issued in batches of 400 by this process
  through the CAS server code, outside the timed windows), with the p50/p95 latency of a validation;
- round trips/s: ``GET /cas/login?service=…`` with the SSO cookie (302 with a ticket), then
  ``GET /cas/p3/serviceValidate`` of that ticket, with p95 of each step.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import reference  # noqa: E402
from common import Http, children, cpu_seconds, header_values, server_command, stop  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "https://pronote.bench.example.fr/pronote/"


# --- set-up -----------------------------------------------------------------------------------------


def make_instance(pg_admin: str, folder: Path, redis_url: str = "", name: str = "idp_bench_cas") -> tuple[Path, str]:
    base, _, _ = pg_admin.rpartition("/")
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{base}/{name}"
    (folder / "keys").mkdir(mode=0o700)
    (folder / "keys" / "secret.key").write_text(secrets.token_urlsafe(48))
    (folder / "keys" / "pairwise.key").write_text(secrets.token_urlsafe(48))
    (folder / "config.toml").write_text(
        '[server]\nbase_url = "https://idp.bench"\n\n'
        f'[database]\nurl = "{url}"\npool_size = 8\n\n'
        '[logging]\nlevel = "WARNING"\n\n[protocols]\nenabled = ["cas"]\n'
        + (f'\n[redis]\nurl = "{redis_url}"\n' if redis_url else "")
    )
    return folder / "config.toml", url


def seed(config: Path) -> tuple[object, object, str]:
    """Schema, a pupil with her register record, the Pronote registration, an SSO session (token)."""
    import datetime as dt

    from idp.cas.registry import registration_for
    from idp.core.accounts.identifiers import identifier_base
    from idp.core.accounts.model import NewAccount, Profile
    from idp.core.authn.model import AuthMethod
    from idp.core.authn.sessions import open_session
    from idp.settings import load_settings
    from idp.storage import schema
    from idp.storage.cas_store import CasServiceRecord, SqlCasStore
    from idp.storage.models import Base, SchoolRow, StudentRow
    from idp.wiring import build_services

    settings = load_settings(config, environ={})
    services = build_services(settings)
    schema.upgrade(services.db)
    Base.metadata.create_all(services.db.engine)
    now = services.clock.now()
    scheme, host, pattern = registration_for(SERVICE, "prefix", allow_http=False)
    record = CasServiceRecord(service_id="pronote", name="Pronote", match="prefix", pattern=pattern, scheme=scheme,
                              host=host, preset="pronote")
    with services.uow() as uow:
        account = uow.accounts.add(NewAccount(profile=Profile.STUDENT, family_name="Martin", given_names="Léa"),
                                   identifier_base("Léa", "Martin"), now)
        uow.session.add(SchoolRow(uai="0690026D", name="Collège", kind="college", academie="Lyon", updated_at=now))
        uow.session.flush()
        uow.session.add(StudentRow(ine="123456789AB", uai="0690026D", family_name="Martin", given_names="Léa",
                                   birth_date=dt.date(2012, 3, 4), postal_code="69003", fingerprint="x",
                                   updated_at=now))
        uow.session.flush()
        uow.accounts.link_register(account.id, student_ines=["123456789AB"])
        SqlCasStore(uow.session).add_service(record, "", now)
        token, session = open_session(uow, account.id, AuthMethod.PASSWORD, services.flow.session_policy,
                                      services.clock)
        uow.commit()
    return services, (record, account, session), token


def issue_batch(services: object, context: tuple, count: int) -> list[str]:
    """Pre-issue ``count`` service tickets with the CAS server's own ticket store (database or Redis)."""
    from idp.cas import attributes
    from idp.cas.registry import parse_service
    from idp.cas.tickets import TICKET_TTL, new_ticket, ticket_id
    from idp.storage.cas_store import KIND_ST, TicketRecord

    record, account, session = context
    url = parse_service(SERVICE, allow_http=False)
    now = services.clock.now()  # type: ignore[attr-defined]
    tickets = [new_ticket("ST") for _ in range(count)]
    with services.uow() as uow:  # type: ignore[attr-defined]
        payload = attributes.snapshot(uow, record, account, session, secret=services.settings.pairwise_salt,
                                      logout_url="https://idp.bench/cas/logout", now=now)
    store = services.extras["cas"].tickets  # type: ignore[attr-defined]
    for ticket in tickets:
        store.add(TicketRecord(id=ticket_id(ticket), kind=KIND_ST, service_id=record.service_id,
                               service=url.normalised, session_id=session.id, account_id=account.id, fresh=False,
                               created_at=now, expires_at=now + TICKET_TTL, payload=payload))
    return tickets


def start_server(config: Path, port: int, threads: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "IDP_CONFIG": str(config)}
    process = subprocess.Popen(server_command(0, port, threads), env=env, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if Http(port, "idp.bench").get("/healthz")[0] == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("the server did not start")


# --- the two measurements ---------------------------------------------------------------------------


class WorkerCpu:
    """CPU seconds used by the server's worker (user + system), read from /proc: a figure that holds even when
    other processes share the machine (wall-clock throughput then understates what one core does)."""

    def __init__(self, master: int) -> None:
        self.pid = children(master)[0]

    def seconds(self) -> float:
        return cpu_seconds([self.pid])


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1] * 1000 if len(values) >= 2 else float("nan")


def run_threads(count: int, work) -> None:
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def bench_validations(port: int, services: object, context: tuple, seconds: float, concurrency: int,
                      cpu: WorkerCpu) -> None:
    target = "/cas/p3/serviceValidate?service=" + quote(SERVICE, safe="") + "&ticket="
    latencies: list[float] = []
    done = failures = 0
    busy = 0.0
    conns = [Http(port, "idp.bench") for _ in range(concurrency)]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    cpu_used = 0.0
    while time.monotonic() < deadline:
        tickets = issue_batch(services, context, 400)  # a ticket lives 10 s
        started, cpu_start = time.monotonic(), cpu.seconds()

        def work(i: int, batch: list[str] = tickets) -> None:
            nonlocal done, failures
            own: list[float] = []
            bad = 0
            for ticket in batch[i::concurrency]:
                t0 = time.perf_counter()
                status, _, body = conns[i].get(target + ticket)
                own.append(time.perf_counter() - t0)
                if status != 200 or b"authenticationSuccess" not in body:
                    bad += 1
                    if bad == 1 and i == 0:
                        print("  first failed validation:", status, body[:200])
            with lock:
                latencies.extend(own)
                done += len(own) - bad
                failures += bad

        run_threads(concurrency, work)
        busy += time.monotonic() - started
        cpu_used += cpu.seconds() - cpu_start
    per = cpu_used / max(done + failures, 1) * 1000
    print(f"validations:  {done / busy:8.0f} /s{reference.scaled(done / busy)}  over {busy:.1f} s ({done} ok, {failures} failed), "
          f"p50 {percentile(latencies, 50):.1f} ms, p95 {percentile(latencies, 95):.1f} ms; "
          f"worker CPU {per:.2f} ms each = {1000 / per:.0f} /s per busy core")


def bench_round_trips(port: int, token: str, seconds: float, concurrency: int, cpu: WorkerCpu,
                      quiet: bool = False) -> None:
    login = "/cas/login?service=" + quote(SERVICE, safe="")
    validate = "/cas/p3/serviceValidate?service=" + quote(SERVICE, safe="") + "&ticket="
    login_lat: list[float] = []
    validate_lat: list[float] = []
    done = failures = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def work(i: int) -> None:
        nonlocal done, failures
        http, cookie = Http(port, "idp.bench"), f"__Host-sso={token}"
        own_login, own_validate, ok, bad = [], [], 0, 0
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            status, headers, _ = http.get(login, cookie)
            t1 = time.perf_counter()
            location = header_values(headers, "location")
            for value in header_values(headers, "set-cookie"):
                if value.startswith("__Host-session="):
                    cookie = f"__Host-sso={token}; {value.split(';', 1)[0]}"
            if status != 302 or not location or "ticket=" not in location[0]:
                bad += 1
                continue
            status, _, body = http.get(validate + location[0].split("ticket=", 1)[1])
            t2 = time.perf_counter()
            own_login.append(t1 - t0)
            own_validate.append(t2 - t1)
            if status == 200 and b"authenticationSuccess" in body:
                ok += 1
            else:
                bad += 1
        with lock:
            login_lat.extend(own_login)
            validate_lat.extend(own_validate)
            done += ok
            failures += bad

    started, cpu_start = time.monotonic(), cpu.seconds()
    run_threads(concurrency, work)
    elapsed, cpu_used = time.monotonic() - started, cpu.seconds() - cpu_start
    if quiet:
        return
    per = cpu_used / max(done + failures, 1) * 1000
    print(f"round trips:  {done / elapsed:8.0f} /s{reference.scaled(done / elapsed)}  over {elapsed:.1f} s ({done} ok, {failures} failed), "
          f"login p95 {percentile(login_lat, 95):.1f} ms, validate p95 {percentile(validate_lat, 95):.1f} ms; "
          f"worker CPU {per:.2f} ms each = {1000 / per:.0f} /s per busy core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seconds", type=float, default=20.0, help="per figure (at most 30)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--port", type=int, default=18431)
    parser.add_argument("--threads", type=int, default=4, help="the worker's application threads")
    parser.add_argument("--redis", default="", help="keep tickets in this Redis, e.g. redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    seconds = min(args.seconds, 30.0)
    folder = Path(tempfile.mkdtemp(prefix="bench-cas-"))
    config, _ = make_instance(args.pg, folder, redis_url=args.redis)
    services, context, token = seed(config)
    server = start_server(config, args.port, args.threads)
    cpu = WorkerCpu(server.pid)
    os.sched_setaffinity(0, {1})
    try:
        load = os.getloadavg()[0]
        print(f"CAS benchmark: idp serve's server (Granian) 1 worker ({args.threads} threads) on core 0, generator on core 1, "
              f"{args.concurrency} connections, PostgreSQL, tickets in {'Redis' if args.redis else 'PostgreSQL'}; "
              f"load average before: {load:.2f}")
        reference.calibrate()
        bench_round_trips(args.port, token, 2.0, args.concurrency, cpu, quiet=True)  # warm-up
        bench_validations(args.port, services, context, seconds, args.concurrency, cpu)
        bench_round_trips(args.port, token, seconds, args.concurrency, cpu)
    finally:
        stop(server)
        drop_instance(services, args.pg, folder)


def drop_instance(services: object, pg_admin: str, folder: Path) -> None:
    """Close this process's connections, drop the bench database and the instance folder."""
    services.db.dispose()  # type: ignore[attr-defined]  # the CAS pool's connections too (Database.dispose)
    name = services.settings.database.url.rpartition("/")[2]  # type: ignore[attr-defined]
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
