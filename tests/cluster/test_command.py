"""``idp cluster`` itself, as an operator types it: up with the demo's services through HAProxy, then Ctrl-C
stops every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from conftest import free_port_block

from idp import PROJECT_ROOT
from idp.cluster.processes import LocalPostgres

#: One pytest worker runs tests/cluster (./run test uses --dist loadgroup): one topology, started once.
pytestmark = [pytest.mark.xdist_group("cluster"), pytest.mark.slow]

READY = "Ctrl-C arrête tout."


def test_idp_cluster_serves_the_demo_through_haproxy_and_stops_cleanly(instance_dir: Path, tmp_path: Path) -> None:
    port = free_port_block(5)
    log = tmp_path / "cluster.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "idp", "--config", str(instance_dir / "config.toml"), "cluster", "--instances", "2",
             "--port", str(port), "--work-dir", str(tmp_path / "topology")],
            stdout=out, stderr=subprocess.STDOUT, cwd=str(PROJECT_ROOT), start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 150
        while READY not in log.read_text(errors="replace"):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.5)
        printed = log.read_text(errors="replace")
        assert f"http://127.0.0.1:{port}/login" in printed and "instance idp2" in printed
        ent = requests.get(f"http://127.0.0.1:{port + 1}/connexion", timeout=10)
        assert ent.status_code == 200  # the demo's ENT, registered through the shared database
        sso = requests.get(f"http://127.0.0.1:{port + 2}/cas/login", timeout=10)  # Pronote → HAProxy → an instance
        assert sso.url.startswith(f"http://127.0.0.1:{port}/") and sso.status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    assert "Arrêt de la topologie" in log.read_text(errors="replace")
    time.sleep(1)
    assert [cmd for cmd in _command_lines() if str(tmp_path) in cmd] == []
    LocalPostgres(tmp_path / "topology", 0).remove()  # the command keeps its database for the next start


def _command_lines() -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            found.append(Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"))
        except OSError:
            continue
    return found
