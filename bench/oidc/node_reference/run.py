"""node-oidc-provider measured like bench/oidc/run.py: refresh grants/s, code exchanges/s, complete flows/s per core.

The reference the issue quotes ("node-oidc-provider, a certified provider, does about 720/s per core"), measured
today on this machine with our bench's method: ``server.mjs`` (panva's oidc-provider, see package.json) is
started with ``taskset -c 0`` (node runs the JavaScript on one thread; its few helper threads share that core
too); this process, the load generator, pins itself to core 1 and drives it with ``bench/common.py``'s
keep-alive ``Http`` client, 6 concurrent connections, each figure bounded by ``--seconds`` (default 15, at
most 30). CPU per operation is the node process's (all its threads) from /proc, as the gunicorn worker's in
bench/oidc/run.py. ``bench/reference.py`` (bare Flask requests/s per core) is measured first, as there.

    flock /tmp/bench.lock .venv/bin/python bench/oidc/node_reference/run.py [--seconds 15] [--adapter redis]

The bench logs in once (the minimal interaction in server.mjs) before any timing; every timed authorize
carries the session cookie and answers a code with no interaction. Then ``--warmup`` seconds (default 5) of
untimed load: V8 compiles the hot paths during the first seconds (a server in service is warm; our Python
worker needs no such warm-up). The state lives in the node process (``--adapter``, default ``map``: a plain
Map; ``library``: oidc-provider's development memory adapter, whose 1,000-entry LRU evicts the 900 codes the
exchange figure issues beforehand, and whose per-grant index is rebuilt at every save) or, with ``--adapter
redis``, in Redis (``--redis``, default database 14 on 127.0.0.1:6379, not pinned, as PostgreSQL for our
bench): the library's example Redis adapter, its keys under a prefix unique to the run (``oidcbench:RANDOM:``),
deleted at the end (SCAN + UNLINK of that prefix only). With redis, the CPU per operation also gives the
redis-server process's (from /proc, pid from ``INFO server``) and the Redis commands per operation (``INFO
stats``: both count the whole server, whoever else uses it). Figures printed:
- complete flows/s with an existing SSO session: ``GET /auth`` (303 with a code) → ``POST /token``
  (client_secret_basic: access token + RS256 ID token + refresh token) → ``GET /me`` (userinfo), with the
  median latency of each step;
- code exchanges/s: ``POST /token`` for codes issued through ``/auth`` just before the timed window;
- refresh grants/s: ``POST /token grant_type=refresh_token``, each answer a rotated refresh token, a new
  access token and a new RS256 ID token (checked on a sample: signature verified with the server's JWKS,
  refresh token different at each answer, the used one refused at the end).
Any answer other than the expected one counts as an error and ends that connection's run: a figure with
errors is not a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # bench/
sys.path.insert(0, str(HERE.parent))  # bench/oidc/
import reference  # noqa: E402
from common import Http, cpu_seconds, free_port, header_values, stop  # noqa: E402
from loops import REDIRECT, Endpoints, RefreshCheck, Rp, location, run_figures, run_threads  # noqa: E402

CLIENT_ID = "ent"
SCOPE = "openid profile"
NODE = Endpoints(authorize="/auth", token="/token", userinfo="/me")  # noqa: S106 - a path


def cookies_from(headers: str) -> dict[str, str]:
    """name → value of every Set-Cookie (paths ignored: this client sends them all)."""
    jar = {}
    for value in header_values(headers, "set-cookie"):
        name, _, rest = value.partition("=")
        jar[name.strip()] = rest.split(";", 1)[0]
    return jar


class CpuMeter:
    """CPU used by the node process (all its threads: /proc/PID/stat counts the whole process) and, with the
    redis adapter, by the redis-server process and the commands it processed (the whole server's)."""

    def __init__(self, pid: int, store: RedisStore | None = None) -> None:
        self.pid = pid
        self.store = store

    def start(self) -> None:
        self.t0 = cpu_seconds([self.pid])
        if self.store is not None:
            self.r0 = (cpu_seconds([self.store.pid]), self.store.commands())

    def report(self, done: int) -> str:
        used = cpu_seconds([self.pid]) - self.t0
        if not done or not used:
            return ""
        text = f"; CPU per op: node {used / done * 1000:.2f} ms (= {done / used:.0f}/s per fully used core)"
        if self.store is not None:
            redis_used = cpu_seconds([self.store.pid]) - self.r0[0]
            commands = self.store.commands() - self.r0[1]
            text += f", Redis {redis_used / done * 1000:.2f} ms ({commands / done:.1f} commands per op)"
        return text


class RedisStore:
    """The Redis database the redis adapter writes to, under a key prefix unique to this run."""

    def __init__(self, url: str) -> None:
        import redis  # the project's own dependency (pyproject.toml); only needed with --adapter redis

        self.url = url
        self.prefix = f"oidcbench:{secrets.token_hex(8)}:"
        self.client = redis.Redis.from_url(url)
        info = self.client.info("server")
        self.version = info["redis_version"]
        self.pid = int(info["process_id"])  # 127.0.0.1: the local redis-server process, read in /proc
        if not Path(f"/proc/{self.pid}/stat").exists():
            raise RuntimeError(f"redis-server's pid {self.pid} (INFO server) is not a local process")
        persistence = self.client.config_get("save") | self.client.config_get("appendonly")
        self.persistence = f"save {persistence.get('save')!r}, appendonly {persistence.get('appendonly')}"

    def commands(self) -> int:
        return int(self.client.info("stats")["total_commands_processed"])

    def keys(self) -> int:
        return sum(1 for _ in self.client.scan_iter(match=self.prefix + "*", count=1000))

    def clean(self) -> int:
        """UNLINK every key of this run's prefix (SCAN MATCH prefix*: nothing else is touched)."""
        removed, batch = 0, []
        for key in self.client.scan_iter(match=self.prefix + "*", count=1000):
            batch.append(key)
            if len(batch) == 1000:
                removed += self.client.unlink(*batch)
                batch = []
        if batch:
            removed += self.client.unlink(*batch)
        return removed


# --- set-up -----------------------------------------------------------------------------------------


def ensure_node_modules() -> None:
    wanted = json.loads((HERE / "package.json").read_text())["dependencies"]
    if not all((HERE / "node_modules" / name).is_dir() for name in wanted):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True)


def provider_version() -> str:
    return str(json.loads((HERE / "node_modules" / "oidc-provider" / "package.json").read_text())["version"])


def start_server(port: int, secret: str, adapter: str, log: Path,
                 store: RedisStore | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NODE_ENV": "production", "BENCH_CLIENT_SECRET": secret}
    if store is not None:
        env.update(BENCH_REDIS_URL=store.url, BENCH_REDIS_PREFIX=store.prefix)
    env.pop("DEBUG", None)  # no debug logging (koa / the debug module)
    with log.open("wb") as out:
        process = subprocess.Popen(["taskset", "-c", "0", "node", "server.mjs", str(port), "--adapter", adapter],
                                   cwd=HERE, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if Http(port).request("GET", "/.well-known/openid-configuration")[0] == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the node server did not start:\n" + log.read_text()[-3000:])


def login(port: int) -> str:
    """Log in once through the minimal interaction; return the session cookie header (``_session`` + sig)."""
    http, jar = Http(port), dict[str, str]()

    def get(target: str) -> str:
        cookie = "; ".join(f"{k}={v}" for k, v in jar.items() if v)
        status, headers, _ = http.request("GET", target, {"Cookie": cookie} if cookie else None)
        jar.update(cookies_from(headers))
        if status not in (302, 303):
            raise RuntimeError(f"login: {target} answered {status}")
        return location(headers)

    query = urlencode({"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "scope": SCOPE,
                       "state": "login", "nonce": "login"})
    target = get("/auth?" + query)  # → /interaction/UID
    target = get(urlsplit(target).path)  # → the resume URL /auth/UID
    final = get(urlsplit(target).path)  # → the client's redirect URI with a code
    if "code=" not in final or "_session" not in jar:
        raise RuntimeError(f"login did not end with a code and a session: {final}")
    return "; ".join(f"{k}={jar[k]}" for k in ("_session", "_session.sig") if k in jar)


# --- signature floor and warm-up ------------------------------------------------------------------------------


def signing_floor() -> None:
    """What one RS256 JWS costs node alone on core 0 (jose's CompactSign, as oidc-provider signs)."""
    script = """
import { generateKeyPairSync } from 'node:crypto';
import { CompactSign } from 'jose';
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const payload = Buffer.from(JSON.stringify({ iss: 'x', sub: 'y', aud: 'z', exp: 1, iat: 1, nonce: 'n' }));
const sign = () => new CompactSign(payload).setProtectedHeader({ alg: 'RS256', kid: 'k' }).sign(privateKey);
for (let i = 0; i < 100; i++) await sign();
const n = 1000, t0 = process.cpuUsage();
for (let i = 0; i < n; i++) await sign();
const t = process.cpuUsage(t0);
console.log(((t.user + t.system) / 1000 / n).toFixed(3));
"""
    out = subprocess.run(["taskset", "-c", "0", "node", "--input-type=module", "-e", script], cwd=HERE,
                         capture_output=True, text=True, check=True)
    cost = float(out.stdout.strip())
    print(f"RS256 JWS signature alone in node (jose): {cost:.2f} ms CPU (a ceiling of {1000 / cost:.0f}/s per core)")


def warm_up(rps: list[Rp], seconds: float) -> None:
    """Untimed: every request kind for ``seconds``. V8 needs it: a cold node does half its warm rate for the
    first 2-3 s (flows 330/s in the first second, 600-840/s from the fourth on, this VM)."""

    def work(i: int, deadline: float) -> int:
        rp, count = rps[i], 0
        while time.perf_counter() < deadline:
            tokens = rp.exchange(rp.authorize())
            rp.userinfo(tokens["access_token"])
            rp.token({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
            count += 1
        return count

    done, _, errors = run_threads(len(rps), work, seconds)
    if errors:
        raise RuntimeError(f"warm-up failed after {done} rounds: {errors[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=6, help="concurrent load-generating connections")
    parser.add_argument("--adapter", choices=["map", "library", "redis"], default="map",
                        help="map: a plain Map store (server.mjs); library: oidc-provider's default memory adapter, "
                             "whose 1,000-entry LRU drops the 900 codes issued before the exchange window; redis: "
                             "the library's example Redis adapter (ioredis), in --redis")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14",
                        help="with --adapter redis: the database (its keys under a prefix unique to the run, "
                             "deleted at the end)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of untimed load first (V8's JIT)")
    parser.add_argument("--only", choices=["flows", "exchanges", "refresh"], default=None)
    args = parser.parse_args()
    seconds = min(args.seconds, 30.0)
    ensure_node_modules()
    folder = Path(tempfile.mkdtemp(prefix="idp-bench-node-oidc-"))
    port = free_port()
    secret = secrets.token_urlsafe(32)
    server = None
    store = RedisStore(args.redis) if args.adapter == "redis" else None
    try:
        server = start_server(port, secret, args.adapter, folder / "server.log", store)
        meter = CpuMeter(server.pid, store)
        os.sched_setaffinity(0, {1})
        node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        if store is None:
            adapter = f"{args.adapter} memory adapter"
        else:
            ioredis = json.loads((HERE / "node_modules" / "ioredis" / "package.json").read_text())["version"]
            adapter = (f"redis adapter: ioredis {ioredis}, Redis {store.version} (pid {store.pid}, not pinned; "
                       f"{store.persistence}) at {store.url}, keys {store.prefix}*")
        print(f"node-oidc-provider {provider_version()} on node {node}, pinned to core 0 ({adapter}); "
              f"load generator on core 1, {args.clients} clients; {seconds:.0f} s per figure")
        reference.calibrate()
        signing_floor()
        cookie = login(port)
        rps = [Rp(port, CLIENT_ID, secret, cookie, scope=SCOPE, endpoints=NODE) for _ in range(args.clients)]
        warm_up(rps, args.warmup)
        run_figures(rps, seconds, meter, args.only, RefreshCheck(Http(port), "/jwks", CLIENT_ID))
        if server.poll() is not None:
            print("the node server died:\n" + (folder / "server.log").read_text()[-2000:])
    finally:
        stop(server)
        if store is not None:
            removed = store.clean()
            print(f"Redis: {removed} keys of {store.prefix}* deleted, {store.keys()} left")
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
