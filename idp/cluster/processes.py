"""The parts of a local multi-instance topology as child processes: PostgreSQL (``initdb`` + ``pg_ctl``),
``redis-server`` and HAProxy, each in a folder of its own, each stoppable and restartable (the fault tests
stop them on purpose).

Every child runs in its own process group with its output in ``<root>/logs/<name>.log``; ``Supervisor.stop``
sends SIGTERM to every group, then SIGKILL to what is left, so nothing outlives the topology.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

STOP_GRACE_SECONDS = 5.0


class ClusterError(RuntimeError):
    """A part of the topology did not start; the message says which and where its log is."""


def free_port() -> int:
    """A TCP port nobody listens on at this instant, on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float, what: str, process: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ClusterError(f"{what} s'est arrêté au démarrage (code {process.returncode})")
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise ClusterError(f"{what} n'écoute pas sur le port {port}")


@dataclass
class Supervisor:
    """Child processes by name, each in its own process group, logging to ``logs/<name>.log``."""

    root: Path
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.Popen[bytes]:
        """Start (or restart) the child ``name``."""
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / f"{name}.log").open("ab") as out:
            process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},  # noqa: S603
                                       cwd=str(cwd) if cwd else None, start_new_session=True)
        self.children[name] = process
        return process

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the child's whole group (the server's workers too) and wait for the child."""
        process = self.children[name]
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        with suppress(subprocess.TimeoutExpired):
            process.wait(STOP_GRACE_SECONDS)

    def dead(self) -> list[str]:
        """Names of the children that have exited."""
        return [name for name, process in self.children.items() if process.poll() is not None]

    def log(self, name: str) -> str:
        """The end of a child's log (for error messages)."""
        path = self.root / "logs" / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM to every group, SIGKILL after a grace period."""
        for process in self.children.values():
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in self.children.values():
            with suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
        for process in self.children.values():
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with suppress(subprocess.TimeoutExpired):
                process.wait(2)
        self.children.clear()


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return found[-1]
    if path := shutil.which(name):
        return path
    raise ClusterError(f"{name} introuvable : installez PostgreSQL (apt-get install postgresql)")


class LocalPostgres:
    """A PostgreSQL cluster of its own in ``<root>/postgres`` on a port of 127.0.0.1 (trust authentication
    from this host only). PostgreSQL refuses to run as root: as root, it runs as the ``postgres`` user, in a
    folder of the system's temporary directory named after ``root`` (``root`` itself may not be reachable by
    that user), removed by ``remove``."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self._user = "postgres" if os.geteuid() == 0 else ""
        home = root
        if self._user:
            digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
            home = Path(tempfile.gettempdir()) / f"idp-postgres-{digest}"
        self.home = home
        self.data = home / "postgres"
        self.socket_dir = home / "socket"
        self.log = home / "postgres.log"

    def url(self, database: str = "idp") -> str:
        """``postgresql://postgres@127.0.0.1:<port>/<database>``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, argv: list[str], timeout: float = 120) -> None:
        if self._user:
            argv = ["runuser", "-u", self._user, "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
        if result.returncode != 0:
            raise ClusterError(f"{' '.join(argv[-3:])} : {result.stderr.strip()[-800:]}")

    def _own(self, *paths: Path) -> None:
        if self._user:
            entry = pwd.getpwnam(self._user)
            for path in paths:
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def init(self) -> None:
        """``initdb`` once (later starts reuse the cluster)."""
        if (self.data / "PG_VERSION").exists():
            return
        for path in (self.home, self.data, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        self._own(self.home, self.data, self.socket_dir, self.log)
        self._run([_postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                   "-E", "UTF8", "--no-sync", "--locale=C"])

    def start(self, max_connections: int = 300) -> None:
        """``pg_ctl start`` and wait until it accepts connections."""
        options = (f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
                   f"-c max_connections={max_connections} -c shared_buffers=64MB")
        self._run([_postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
                   "-w", "-t", "60", "start"])
        wait_for_port(self.port, 30, "PostgreSQL")

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m fast`` (or ``immediate``: a crash, as a lost host would be)."""
        self._run([_postgres_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"])

    def running(self) -> bool:
        """Whether the postmaster's pid file is there (``pg_ctl status``)."""
        return (self.data / "postmaster.pid").exists()

    def remove(self) -> None:
        """Delete the cluster's files (after ``stop``)."""
        shutil.rmtree(self.home if self._user else self.data, ignore_errors=True)

    def create_database(self, name: str = "idp") -> None:
        """Create the database if it does not exist."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{name}"')


class LocalRedis:
    """A ``redis-server`` child on 127.0.0.1, nothing persisted (short-lived state only)."""

    def __init__(self, supervisor: Supervisor, port: int) -> None:
        self.supervisor, self.port = supervisor, port

    def url(self, db: int = 0) -> str:
        """``redis://127.0.0.1:<port>/<db>``."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        """Start it (again) on the same port."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise ClusterError("redis-server introuvable (apt-get install redis-server)")
        process = self.supervisor.start("redis", [binary, "--port", str(self.port), "--bind", "127.0.0.1",
                                                  "--save", "", "--appendonly", "no",
                                                  "--dir", str(self.supervisor.root)])
        wait_for_port(self.port, 20, "redis-server", process)

    def kill(self) -> None:
        """SIGKILL: what a crashed Redis host looks like to the instances."""
        self.supervisor.kill("redis")
