"""Shared benchmark plumbing: a throw-away instance (database, keys, accounts) and a pinned server (``idp serve``'s)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import requests

ROOT = Path(__file__).resolve().parents[1]


def pin_self(core: int) -> None:
    """Run the rest of this process (the load generator) on one core."""
    os.sched_setaffinity(0, {core})


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (from /proc), in seconds; vanished ones count 0."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def server_command(core: int, port: int, threads: int = 4, workers: int = 1,
                   target: str = "idp.wsgi:app") -> list[str]:
    """The command that runs ``idp serve``'s server (``idp.cli.server.run_server``: Granian, WSGI) pinned to
    ``core``, its configuration from ``IDP_CONFIG``; ``target`` may name a wrapper of ``idp.wsgi:app`` that
    the caller puts on ``PYTHONPATH`` (a probe). The server's main process is the returned process, its
    worker(s) that process's children (``children``)."""
    code = ("import sys; import idp.cli.main; from idp.cli.server import run_server; "
            "run_server(None, '127.0.0.1', int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), target=sys.argv[4])")
    return ["taskset", "-c", str(core), sys.executable, "-c", code, str(port), str(workers), str(threads), target]


def children(pid: int) -> list[int]:
    """The direct children of a process (the server's workers)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def postgres_pids() -> list[int]:
    """Every process of the local PostgreSQL server (postmaster, backends, background workers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


class PinnedPostgres:
    """Optionally pin the local PostgreSQL server to one core for the run, and put it back afterwards.

    ``core=None`` leaves it where the kernel puts it (it then competes with the worker for core 0's idle
    time). Pinning it to the load generator's core keeps the worker's core for the worker alone, so the
    per-core figure is the identity provider's; the CPU PostgreSQL spends is printed beside it either way.
    New backends inherit the postmaster's affinity. Needs the right to change those processes' affinity
    (root here); without it the run goes on unpinned and says so.
    """

    def __init__(self, core: int | None) -> None:
        self.core = core
        self.saved: dict[int, set[int]] = {}
        self.note = "PostgreSQL not pinned"

    def __enter__(self) -> PinnedPostgres:
        if self.core is None:
            return self
        try:
            for pid in postgres_pids():
                self.saved[pid] = os.sched_getaffinity(pid)
                os.sched_setaffinity(pid, {self.core})
            self.note = f"PostgreSQL pinned to core {self.core}"
        except OSError as exc:
            self.note = f"PostgreSQL not pinned ({exc.strerror})"
        return self

    def __exit__(self, *exc: object) -> None:
        everything = set(range(os.cpu_count() or 1))
        for pid in postgres_pids():  # backends forked during the run inherited the pin too
            try:
                os.sched_setaffinity(pid, self.saved.get(pid, everything))
            except OSError:
                continue


def stop(process: subprocess.Popen[bytes] | None) -> None:
    """Terminate a server started by a bench; kill it if it has not exited 10 s later."""
    if process is None:
        return
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Instance:
    """A fresh identity-provider instance in a temporary directory, on a fresh database."""

    def __init__(self, database_url: str, name: str, protocols: tuple[str, ...] = (), extra_config: str = "") -> None:
        self.admin_url = database_url
        self.name = name
        self.protocols = protocols
        self.extra_config = extra_config
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.server: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Instance:
        self.dir = Path(tempfile.mkdtemp(prefix=f"idp-bench-{self.name}-"))
        if self.admin_url.startswith("postgresql"):
            self.dbname = f"idp_bench_{self.name}"
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{self.dbname}"')
            self.url = self.admin_url.rsplit("/", 1)[0] + "/" + self.dbname
            self.dialect = "postgresql"
        else:
            self.url = f"sqlite:///{self.dir}/idp.sqlite3"
            self.dialect = "sqlite"
        enabled = ", ".join(f'"{p}"' for p in self.protocols)
        self.config = self.dir / "config.toml"
        self.config.write_text(
            f'[server]\nbase_url = "{self.base}"\ndevelopment = true\n\n[database]\nurl = "{self.url}"\n\n'
            f'[protocols]\nenabled = [{enabled}]\n\n[logging]\nlevel = "INFO"\n{self.extra_config}\n')
        self.idp("init")
        return self

    def idp(self, *args: str, input: str | None = None) -> str:
        """Run an ``idp`` command against this instance."""
        out = subprocess.run([sys.executable, "-m", "idp", "--config", str(self.config), *args], input=input,
                             capture_output=True, text=True, cwd=self.dir)
        if out.returncode:
            raise RuntimeError(f"idp {' '.join(args)} failed: {out.stderr}")
        return out.stdout

    def services(self) -> Any:
        from idp.settings import load_settings
        from idp.wiring import build_services

        return build_services(load_settings(self.config, environ={}))

    def create_accounts(self, count: int, password: str) -> list[str]:
        """Create ``count`` active parent accounts with this password (default argon2 cost)."""
        from idp.core.accounts.model import NewAccount, Profile

        services = self.services()
        made = [services.accounts.create(NewAccount(Profile.PARENT, "Banc", "Anne"), password).identifier
                for _ in range(count)]
        services.db.dispose()
        return made

    def start_server(self, core: int, workers: int = 1, threads: int = 4, target: str = "idp.wsgi:app",
                     env: dict[str, str] | None = None) -> None:
        """Start ``idp serve``'s server pinned to ``core`` (``server_command``, with ``env`` added) and wait until
        /healthz answers."""
        env = {**os.environ, "IDP_CONFIG": str(self.config), **(env or {})}
        self.log = (self.dir / "server.log").open("wb")
        self.server = subprocess.Popen(server_command(core, self.port, threads, workers, target),
                                       env=env, cwd=self.dir, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if requests.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        self.log.flush()
        raise RuntimeError("server did not start:\n" + (self.dir / "server.log").read_text()[-3000:])

    def worker_pids(self) -> list[int]:
        """The workers of ``start_server``."""
        return children(self.server.pid) if self.server is not None else []

    def backend_pids(self) -> list[int]:
        """The PostgreSQL backends connected to this instance's database right now."""
        if self.dialect != "postgresql":
            return []
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.dbname,)).fetchall()
        return [row[0] for row in rows]

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            stop(self.server)
            self.log.close()
        if self.dialect == "postgresql":
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
        shutil.rmtree(self.dir, ignore_errors=True)


# --- the load client: a minimal keep-alive HTTP/1.1 client (cheap, so the generator core is not the bottleneck) ---


class Http:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1; ``request`` and ``get`` return (status, header text,
    body). A connection closed by the server is reopened once."""

    def __init__(self, port: int, host: str = "") -> None:
        self.port = port
        self.host = host or f"127.0.0.1:{port}"
        self.sock: socket.socket | None = None
        self.buffer = b""

    def get(self, target: str, cookie: str = "") -> tuple[int, str, bytes]:
        return self.request("GET", target, {"Cookie": cookie} if cookie else None)

    def request(self, method: str, target: str, headers: dict[str, str] | None = None,
                body: bytes = b"") -> tuple[int, str, bytes]:
        head = f"{method} {target} HTTP/1.1\r\nHost: {self.host}\r\n"
        for name, value in (headers or {}).items():
            head += f"{name}: {value}\r\n"
        if body or method == "POST":
            head += f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
        data = (head + "\r\n").encode() + body
        for attempt in range(2):
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.buffer = b""
            try:
                self.sock.sendall(data)
                return self._read()
            except OSError:
                self.sock.close()
                self.sock = None
                if attempt:
                    raise
        raise RuntimeError("unreachable")

    def _read(self) -> tuple[int, str, bytes]:
        assert self.sock is not None
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        text = head.decode("latin-1")
        length, close = 0, False
        for line in text.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and value.strip().lower() == "close":
                close = True
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            rest += chunk
        body, self.buffer = rest[:length], rest[length:]
        if close:
            self.sock.close()
            self.sock = None
        return int(text.split(" ", 2)[1]), text, body


def header_values(headers: str, name: str) -> list[str]:
    """Every value of one header in a header text as ``Http`` returns it."""
    prefix = name.lower() + ":"
    return [line.split(":", 1)[1].strip() for line in headers.split("\r\n") if line.lower().startswith(prefix)]
