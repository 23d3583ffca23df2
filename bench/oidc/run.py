"""OIDC benchmark: refresh grants/s, code exchanges/s and complete code flows/s on one core, PostgreSQL.

One worker of idp serve's server (Granian) is pinned to core 0 with ``taskset -c 0``; this process, the load generator,
pins itself to core 1 and speaks HTTP/1.1 keep-alive over raw sockets (cheap, so the generator is not the
bottleneck). PostgreSQL (a fresh ``idp_bench_oidc`` database) is not pinned. Each figure is bounded in time
(``--seconds``, at most 30). No password is hashed: the SSO session is opened directly in the database.

    .venv/bin/python bench/oidc/run.py [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Figures printed:
- complete flows/s with an existing SSO session: ``GET /oidc/authorize`` (302 with a code) → ``POST
  /oidc/token`` (client_secret_basic; access token + RS256 ID token + refresh token) → ``GET /oidc/userinfo``,
  with the median latency of each step (target ≥ 250/s);
- code exchanges/s: ``POST /oidc/token`` for codes issued through ``/oidc/authorize`` just before the timed
  window (codes live 60 s);
- refresh grants/s: ``POST /oidc/token grant_type=refresh_token``, each answer a rotated refresh token, a new
  access token and a new RS256 ID token (target ≥ 720/s); a sample of answers is checked (the ID token's
  signature verified with ``/oidc/jwks``, the refresh token new each time) and, after the timing, a used
  refresh token sent again must be refused.

The relying party and the three loops are ``loops.py``, shared with ``node_reference/run.py``, which measures
node-oidc-provider the same way on the same machine.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import reference  # noqa: E402
from common import Http, children, cpu_seconds, free_port, server_command, stop  # noqa: E402
from loops import REDIRECT, RefreshCheck, Rp, run_figures  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


class CpuMeter:
    """CPU used by the server's worker and by the PostgreSQL backends of the bench database."""

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
    process = subprocess.Popen(server_command(0, port, threads), env=env, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if Http(port).request("GET", "/healthz")[0] == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not start")


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
    parser.add_argument("--threads", type=int, default=4, help="the worker's application threads")
    parser.add_argument("--only", choices=["flows", "exchanges", "refresh"], default=None)
    args = parser.parse_args()
    seconds = min(args.seconds, 30.0)
    sys.path.insert(0, str(ROOT))
    folder = Path(tempfile.mkdtemp(prefix="idp-bench-oidc-"))
    port = free_port()
    server = None
    try:
        config = make_instance(args.pg, folder, port)
        client_id, secret, cookie = seed(config)
        server = start_server(config, port, args.threads)
        meter = CpuMeter(server.pid, args.pg)
        os.sched_setaffinity(0, {1})
        print(f"OIDC benchmark: idp serve's server (Granian), 1 worker ({args.threads} threads) on core 0, load generator on "
              f"core 1, PostgreSQL; {seconds:.0f} s per figure")
        reference.calibrate()
        signing_floor(config)
        rps = [Rp(port, client_id, secret, cookie) for _ in range(args.clients)]
        for rp in rps:  # warm up connections, key caches and SQLAlchemy's statement cache
            rp.userinfo(rp.exchange(rp.authorize())["access_token"])
        run_figures(rps, seconds, meter, args.only, RefreshCheck(Http(port), "/oidc/jwks", client_id),
                    {"flows": " (target ≥ 250)", "refresh": " (target ≥ 720)"})
    finally:
        stop(server)
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute('DROP DATABASE IF EXISTS "idp_bench_oidc" WITH (FORCE)')
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
