"""The whole demo as real processes: ``idp demo`` in a subprocess on free ports, with its own database
(a SQLite file, or a PostgreSQL database of its own when IDP_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import free_port_block, fresh_database_url

from idp import PROJECT_ROOT

READY_LINE = "Ctrl-C arrête tout."


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    root: Path
    config: Path
    log: Path
    idp: str
    ent: str
    pronote: str
    teleservices: str
    ports: tuple[int, ...]

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_demo(root: Path, timeout: float = 180.0) -> Stack:
    first = free_port_block(4)
    config = root / "config.toml"
    config.write_text(
        f'[server]\nbase_url = "http://127.0.0.1:{first}"\ndevelopment = true\n\n'
        f'[database]\nurl = "{fresh_database_url(root, "adapters")}"\n\n[keys]\ndirectory = "keys"\nrsa_bits = 2048\n\n'
        "[passwords]\nargon2_time_cost = 1\nargon2_memory_kib = 1024\n\n[logging]\nlevel = \"WARNING\"\n\n"
        '[protocols]\nenabled = ["saml", "oidc", "cas"]\n')
    log = root / "demo.log"
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), PYTHONUNBUFFERED="1")
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "idp", "--config", str(config), "demo", "--port", str(first)],
                                   stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(PROJECT_ROOT),
                                   start_new_session=True)
    stack = Stack(process, root, config, log, *(f"http://127.0.0.1:{first + i}" for i in range(4)),
                  ports=tuple(range(first, first + 4)))
    deadline = time.monotonic() + timeout
    while READY_LINE not in stack.output():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_demo(stack)
            raise AssertionError(f"idp demo did not start:\n{stack.output()[-5000:]}")
        time.sleep(0.3)
    return stack


def processes_of(root: Path) -> list[str]:
    """Command lines still running that belong to this demo (its config or data directory)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(root) in cmdline and int(pid) != os.getpid():
            found.append(f"{pid} {cmdline}")
    return found


def stop_demo(stack: Stack, sig: int = signal.SIGINT) -> int | None:
    if stack.process.poll() is None:
        stack.process.send_signal(sig)
        try:
            stack.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(stack.process.pid, signal.SIGKILL)
            stack.process.wait(5)
    for line in processes_of(stack.root):  # never leave anything behind, even when a test failed
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(line.split()[0]), signal.SIGKILL)
    return stack.process.returncode


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_demo(tmp_path_factory.mktemp("demo-stack"))
    yield running
    stop_demo(running)
