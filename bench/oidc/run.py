"""OIDC benchmark: refresh grants/s, code exchanges/s and complete code flows/s on one core, PostgreSQL.

One gunicorn worker (gthread) is pinned to core 0 with ``taskset -c 0``; this process, the load generator,
pins itself to core 1 and speaks HTTP/1.1 keep-alive over raw sockets (cheap, so the generator is not the
bottleneck). PostgreSQL (a fresh ``idp_bench_oidc`` database) is not pinned. Each figure is bounded in time
(``--seconds``, at most 30). No password is hashed: the SSO session is opened directly in the database.

    /tmp/probe-venv/bin/python bench/oidc/run.py [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Figures printed:
- complete flows/s with an existing SSO session: ``GET /oidc/authorize`` (302 with a code) → ``POST
  /oidc/token`` (client_secret_basic; access token + RS256 ID token + refresh token) → ``GET /oidc/userinfo``,
  with the median latency of each step (target ≥ 250/s);
- code exchanges/s: ``POST /oidc/token`` for codes issued through ``/oidc/authorize`` just before the timed
  window (codes live 60 s);
- refresh grants/s: ``POST /oidc/token grant_type=refresh_token``, each answer a rotated refresh token, a new
  access token and a new RS256 ID token (target ≥ 720/s).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import reference  # noqa: E402
from common import Http, children, cpu_seconds  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
REDIRECT = "https://ent.bench.example.fr/oidc/callback"


class CpuMeter:
    """CPU used by the gunicorn worker and by the PostgreSQL backends of the bench database."""

    def __init__(self, master: int, pg: str) -> None:
        self.worker = children(master)
        self.pg = pg

    def backends(self) -> list[int]:
        with psycopg.connect(self.pg, autocommit=True) as conn:
            rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = 'idp_bench_oidc'").fetchall()
        return [row[0] for row in rows]

    def start(self) -> None:
        self.pids = self.backends()
        self.t0 = (cpu_seconds(self.worker), cpu_seconds(self.pids))

    def report(self, done: int) -> str:
        worker, pg = cpu_seconds(self.worker) - self.t0[0], cpu_seconds(self.pids) - self.t0[1]
        if not done or not worker:
            return ""
        return (f"; CPU per op: worker {worker / done * 1000:.2f} ms (= {done / worker:.0f}/s per fully used core), "
                f"PostgreSQL {pg / done * 1000:.2f} ms")


METER: CpuMeter | None = None


def location(headers: str) -> str:
    for line in headers.split("\r\n"):
        if line.lower().startswith("location:"):
            return line.split(":", 1)[1].strip()
    return ""


# --- set-up -----------------------------------------------------------------------------------------


def write_instance(folder: Path, port: int, database_url: str) -> Path:
    """Keys (cookie secret, pairwise salt, OIDC signing keys) and a config.toml in ``folder``."""
    keys = folder / "keys"
    keys.mkdir(mode=0o700)
    (keys / "secret.key").write_text(secrets.token_urlsafe(48))
    (keys / "pairwise.key").write_text(secrets.token_urlsafe(48))
    from idp.oidc.keyset import ensure_oidc_keys

    ensure_oidc_keys(keys)
    (folder / "config.toml").write_text(
        f'[server]\nbase_url = "http://127.0.0.1:{port}"\n\n'
        f'[database]\nurl = "{database_url}"\npool_size = 8\n\n'
        '[logging]\nlevel = "WARNING"\n\n[protocols]\nenabled = ["oidc"]\n')
    return folder / "config.toml"


def make_instance(pg_admin: str, folder: Path, port: int, dbname: str = "idp_bench_oidc") -> Path:
    """A fresh PostgreSQL database and an instance folder using it."""
    base, _, _ = pg_admin.rpartition("/")
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dbname}"')
    return write_instance(folder, port, f"{base}/{dbname}")


def seed(config: Path) -> tuple[str, str, str]:
    """Schema, a parent account, a first-party client with refresh tokens, an SSO session: (id, secret, cookie)."""
    from idp.core.accounts.identifiers import identifier_base
    from idp.core.accounts.model import NewAccount, Profile
    from idp.core.authn.model import AuthMethod
    from idp.core.authn.sessions import open_session
    from idp.oidc.registration import ClientSpec, register
    from idp.settings import load_settings
    from idp.storage import schema
    from idp.storage.models import Base
    from idp.wiring import build_services

    settings = load_settings(config, environ={})
    services = build_services(settings)
    schema.upgrade(services.db)
    Base.metadata.create_all(services.db.engine)
    now = services.clock.now()
    with services.uow() as uow:
        account = uow.accounts.add(NewAccount(profile=Profile.PARENT, family_name="Banc", given_names="Anne"),
                                   identifier_base("Anne", "Banc"), now)
        record, secret = register(uow, ClientSpec(name="ENT", redirect_uris=(REDIRECT,), first_party=True,
                                                  refresh_tokens=True, scopes=("openid", "profile", "fr_edu")),
                                  now)
        token, _ = open_session(uow, account.id, AuthMethod.PASSWORD, services.flow.session_policy, services.clock)
        uow.commit()
    services.db.dispose()
    return record.client_id, secret, f"idp_sso={token}"


def start_server(config: Path, port: int, threads: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "IDP_CONFIG": str(config)}
    command = ["taskset", "-c", "0", str(VENV_BIN / "gunicorn"), "-w", "1", "-k", "gthread", "--threads",
               str(threads), "-b", f"127.0.0.1:{port}", "--log-level", "warning", "--chdir", str(ROOT),
               "idp.wsgi:app"]
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if Http(port).request("GET", "/healthz")[0] == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not start")


# --- the three figures --------------------------------------------------------------------------------


class Rp:
    """What each load-generating thread does, on its own connection."""

    def __init__(self, port: int, client_id: str, secret: str, cookie: str) -> None:
        self.http = Http(port)
        self.client_id = client_id
        self.basic = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        self.cookie = cookie

    def authorize(self) -> str:
        query = urlencode({"response_type": "code", "client_id": self.client_id, "redirect_uri": REDIRECT,
                           "scope": "openid profile fr_edu", "state": secrets.token_urlsafe(8),
                           "nonce": secrets.token_urlsafe(8)})
        status, headers, _ = self.http.request("GET", "/oidc/authorize?" + query, {"Cookie": self.cookie})
        code = parse_qs(urlsplit(location(headers)).query).get("code", [""])[0]
        if status != 302 or not code:
            raise RuntimeError(f"authorize answered {status}: {location(headers)}")
        return code

    def token(self, form: dict[str, str]) -> dict[str, str]:
        status, _, body = self.http.request("POST", "/oidc/token", {"Authorization": self.basic},
                                            urlencode(form).encode())
        answer = json.loads(body)
        if status != 200 or "id_token" not in answer:
            raise RuntimeError(f"token answered {status}: {answer}")
        return answer  # type: ignore[no-any-return]

    def exchange(self, code: str) -> dict[str, str]:
        return self.token({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT})

    def userinfo(self, access_token: str) -> None:
        status, _, body = self.http.request("GET", "/oidc/userinfo", {"Authorization": f"Bearer {access_token}"})
        if status != 200 or b'"sub"' not in body:
            raise RuntimeError(f"userinfo answered {status}")


def run_threads(count: int, work: object, seconds: float) -> tuple[int, float, list[str]]:
    """Run ``work(index, deadline)`` in ``count`` threads; return (operations done, elapsed, errors)."""
    done = [0] * count
    errors: list[str] = []
    start = time.perf_counter()
    deadline = start + seconds

    def target(i: int) -> None:
        try:
            done[i] = work(i, deadline)  # type: ignore[operator]
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc)[:200])

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    if METER is not None:
        METER.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done), time.perf_counter() - start, errors


def cpu_note(done: int) -> str:
    return METER.report(done) if METER is not None else ""


def bench_flows(rps: list[Rp], seconds: float) -> None:
    steps: dict[str, list[float]] = {"authorize": [], "token": [], "userinfo": []}
    lock = threading.Lock()

    def work(i: int, deadline: float) -> int:
        rp, count = rps[i], 0
        local: dict[str, list[float]] = {k: [] for k in steps}
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            code = rp.authorize()
            t1 = time.perf_counter()
            tokens = rp.exchange(code)
            t2 = time.perf_counter()
            rp.userinfo(tokens["access_token"])
            t3 = time.perf_counter()
            local["authorize"].append(t1 - t0)
            local["token"].append(t2 - t1)
            local["userinfo"].append(t3 - t2)
            count += 1
        with lock:
            for key, values in local.items():
                steps[key].extend(values)
        return count

    done, elapsed, errors = run_threads(len(rps), work, seconds)
    medians = ", ".join(f"{k} {statistics.median(v) * 1000:.2f} ms" for k, v in steps.items() if v)
    print(f"complete code flows (authorize → token → userinfo, SSO session): {done / elapsed:7.1f} /s per core{reference.scaled(done / elapsed)} "
          f"(target ≥ 250) — {done} in {elapsed:.1f} s, {len(rps)} clients; median {medians}; errors {len(errors)}"
          f"{cpu_note(done)}")
    for error in errors[:3]:
        print("   ", error)


def bench_exchanges(rps: list[Rp], seconds: float) -> None:
    per_thread = 150  # issued just before the timed window; codes live 60 s
    codes: list[list[str]] = [[] for _ in rps]

    def issue(i: int) -> None:
        codes[i] = [rps[i].authorize() for _ in range(per_thread)]

    issuers = [threading.Thread(target=issue, args=(i,)) for i in range(len(rps))]  # not timed
    for thread in issuers:
        thread.start()
    for thread in issuers:
        thread.join()
    latencies: list[float] = []
    lock = threading.Lock()

    def work(i: int, deadline: float) -> int:
        count, local = 0, []
        for code in codes[i]:
            if time.perf_counter() >= deadline:
                break
            t0 = time.perf_counter()
            rps[i].exchange(code)
            local.append(time.perf_counter() - t0)
            count += 1
        with lock:
            latencies.extend(local)
        return count

    done, elapsed, errors = run_threads(len(rps), work, seconds)
    print(f"code exchanges (POST /oidc/token, RS256 ID token):               {done / elapsed:7.1f} /s per core{reference.scaled(done / elapsed)} "
          f"— {done} in {elapsed:.1f} s; median {statistics.median(latencies) * 1000:.2f} ms; errors {len(errors)}"
          f"{cpu_note(done)}")
    for error in errors[:3]:
        print("   ", error)


def bench_refresh(rps: list[Rp], seconds: float) -> None:
    chains = [rp.exchange(rp.authorize())["refresh_token"] for rp in rps]  # not timed
    latencies: list[float] = []
    lock = threading.Lock()

    def work(i: int, deadline: float) -> int:
        count, local, token = 0, [], chains[i]
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            token = rps[i].token({"grant_type": "refresh_token", "refresh_token": token})["refresh_token"]
            local.append(time.perf_counter() - t0)
            count += 1
        with lock:
            latencies.extend(local)
        return count

    done, elapsed, errors = run_threads(len(rps), work, seconds)
    print(f"refresh grants (rotated RT + new AT + new RS256 ID token):       {done / elapsed:7.1f} /s per core{reference.scaled(done / elapsed)} "
          f"(target ≥ 720) — {done} in {elapsed:.1f} s; median {statistics.median(latencies) * 1000:.2f} ms; "
          f"errors {len(errors)}{cpu_note(done)}")
    for error in errors[:3]:
        print("   ", error)


def signing_floor(config: Path) -> None:
    """What one RS256 ID token costs alone on this core (the floor of every token response)."""
    from joserfc import jwt

    from idp.oidc.keyset import OidcKeySet

    kid, key = OidcKeySet(config.parent / "keys").signing_key("RS256")
    claims = {"iss": "x", "sub": "y", "aud": "z", "exp": 1, "iat": 1, "auth_time": 1, "at_hash": "a" * 22}
    start, count = time.process_time(), 300
    for _ in range(count):
        jwt.encode({"alg": "RS256", "kid": kid}, claims, key, algorithms=["RS256"])
    cost = (time.process_time() - start) / count
    print(f"RS256 ID token signature alone: {cost * 1000:.2f} ms CPU (a ceiling of {1 / cost:.0f}/s per core)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=6, help="concurrent load-generating connections")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn gthread threads")
    parser.add_argument("--only", choices=["flows", "exchanges", "refresh"], default=None)
    args = parser.parse_args()
    seconds = min(args.seconds, 30.0)
    sys.path.insert(0, str(ROOT))
    folder = Path(tempfile.mkdtemp(prefix="idp-bench-oidc-"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = None
    try:
        config = make_instance(args.pg, folder, port)
        client_id, secret, cookie = seed(config)
        server = start_server(config, port, args.threads)
        global METER
        METER = CpuMeter(server.pid, args.pg)
        os.sched_setaffinity(0, {1})
        print(f"OIDC benchmark: 1 gunicorn gthread worker ({args.threads} threads) on core 0, load generator on "
              f"core 1, PostgreSQL; {seconds:.0f} s per figure")
        reference.calibrate()
        signing_floor(config)
        rps = [Rp(port, client_id, secret, cookie) for _ in range(args.clients)]
        for rp in rps:  # warm up connections, key caches and SQLAlchemy's statement cache
            rp.userinfo(rp.exchange(rp.authorize())["access_token"])
        if args.only in (None, "flows"):
            bench_flows(rps, seconds)
        if args.only in (None, "exchanges"):
            bench_exchanges(rps, seconds)
        if args.only in (None, "refresh"):
            bench_refresh(rps, seconds)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute('DROP DATABASE IF EXISTS "idp_bench_oidc" WITH (FORCE)')
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
