"""Several identity-provider instances behind HAProxy, sharing one PostgreSQL and one Redis: what a national
deployment runs on many hosts, here as processes of one machine (``idp cluster``; the multi-instance and
fault tests of ``tests/cluster``).

Each instance is ``idp serve`` (Granian) on its own port, with its own metrics directory; HAProxy spreads
requests round-robin with no stickiness (any request on any instance), checks ``/healthz`` every second,
retries a request whose instance refused the connection or died before answering on another one, and never
forwards ``/metrics`` (scraped on each instance's own port with the token in ``keys/metrics.token``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from idp import PROJECT_ROOT
from idp.cluster.processes import ClusterError, LocalPostgres, LocalRedis, Supervisor, free_port

READY_TIMEOUT_SECONDS = 90.0


@dataclass
class ClusterSpec:
    """What to start: the working folder, the instances, and the database and Redis to use (empty: own ones)."""

    root: Path
    instances: int = 2
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    database_url: str = ""
    redis_url: str = ""
    #: The operator's configuration: every setting is kept but base_url, database, redis, keys and proxies.
    base_config: Path | None = None
    #: Further settings by section (the tests lighten argon2, pick an SMS gateway…).
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    instance_env: Mapping[str, str] = field(default_factory=dict)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def write_toml(path: Path, data: Mapping[str, Mapping[str, Any]]) -> None:
    """Write a configuration of flat sections (strings, numbers, booleans, lists)."""
    lines = ["# Written by `idp cluster`: the configuration every instance of this topology shares.", ""]
    for section, values in data.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def unavailable_page(product_name: str, retry_after: int) -> bytes:
    """HAProxy's answer when no instance can serve (``errorfile 503``): the French page of
    ``templates/lb_unavailable.html`` with ``Retry-After``, as a raw HTTP response."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(PROJECT_ROOT / "templates")), autoescape=select_autoescape())
    body = env.get_template("lb_unavailable.html").render(product_name=product_name).encode("utf-8")
    head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: {retry_after}\r\nCache-Control: no-store\r\n"
            "Connection: close\r\n\r\n")
    return head.encode("ascii") + body


def haproxy_config(host: str, port: int, instances: list[int], errorfile: Path) -> str:
    """HAProxy in front: round-robin, health checks on /healthz, retries on another instance, no /metrics,
    the French 503 page when no instance is up."""
    servers = "\n".join(f"    server idp{i + 1} 127.0.0.1:{p} check" for i, p in enumerate(instances))
    return f"""global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    option forwardfor
    # An instance that refuses the connection or dies before answering: the request goes to another one.
    retries 2
    option redispatch 1
    retry-on conn-failure empty-response junk-response
    errorfile 503 {errorfile}

frontend idp
    bind {host}:{port}
    http-request deny deny_status 404 if {{ path_beg /metrics }}
    http-request set-header X-Forwarded-Proto http
    default_backend instances

backend instances
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter 1s fall 2 rise 2
{servers}
"""


class Cluster:
    """Start, inspect, break and stop a local multi-instance topology."""

    def __init__(self, spec: ClusterSpec) -> None:
        self.spec = spec
        self.root = spec.root.resolve()
        self.supervisor = Supervisor(self.root)
        self.postgres = None if spec.database_url else LocalPostgres(self.root, free_port())
        self.redis = None if spec.redis_url else LocalRedis(self.supervisor, free_port())
        self.ports = [free_port() for _ in range(spec.instances)]
        self.config = self.root / "config.toml"
        self.metrics_token = ""

    # --- addresses -------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """HAProxy's address: the public base URL of every instance."""
        return f"http://{self.spec.host}:{self.spec.port}"

    def instance_url(self, index: int) -> str:
        """One instance's own address (bypassing HAProxy)."""
        return f"http://127.0.0.1:{self.ports[index]}"

    @property
    def database_url(self) -> str:
        """The database every instance shares."""
        return self.spec.database_url or (self.postgres.url() if self.postgres else "")

    @property
    def redis_url(self) -> str:
        """The Redis every instance shares."""
        return self.spec.redis_url or (self.redis.url() if self.redis else "")

    # --- start and stop --------------------------------------------------------------------------------------

    def start(self) -> None:
        """PostgreSQL and Redis (own ones unless given), the configuration, ``idp init``, the instances,
        HAProxy; returns when HAProxy answers ``/healthz``."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.postgres is not None:
            self.postgres.init()
            self.postgres.start()
            self.postgres.create_database()
        if self.redis is not None:
            self.redis.start()
        self._write_config()
        self._init()
        for index in range(self.spec.instances):
            self.start_instance(index)
        for index in range(self.spec.instances):
            self.wait_instance(index)
        self._start_haproxy()

    def _write_config(self) -> None:
        data: dict[str, dict[str, Any]] = {}
        if self.spec.base_config is not None and self.spec.base_config.exists():
            data = {k: dict(v) for k, v in tomllib.loads(self.spec.base_config.read_text("utf-8")).items()}
        for section, values in self.spec.overrides.items():
            data.setdefault(section, {}).update(values)
        data.setdefault("server", {}).update(base_url=self.url, trusted_proxies=1)
        data.setdefault("database", {})["url"] = self.database_url
        data.setdefault("redis", {})["url"] = self.redis_url
        data.setdefault("keys", {})["directory"] = str(self.root / "keys")
        data.setdefault("protocols", {}).setdefault("enabled", ["saml", "oidc", "cas"])
        write_toml(self.config, data)

    def _init(self) -> None:
        from idp.cli.demo_stack import Operator

        Operator(str(self.config))("init")
        token_file = self.root / "keys" / "metrics.token"
        if not token_file.exists():
            token_file.write_text(secrets.token_urlsafe(32))
            token_file.chmod(0o600)
        self.metrics_token = token_file.read_text().strip()

    def start_instance(self, index: int) -> None:
        """Start (or restart) instance ``index`` as ``idp serve`` on its port."""
        metrics_dir = self.root / "metrics" / f"idp{index + 1}"
        env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
               "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), **self.spec.instance_env}
        self.supervisor.start(f"idp{index + 1}", [
            sys.executable, "-m", "idp", "--config", str(self.config), "serve", "--host", "127.0.0.1",
            "--port", str(self.ports[index]), "--workers", str(self.spec.workers)], env, cwd=PROJECT_ROOT)

    def wait_instance(self, index: int, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Wait until instance ``index`` answers ``/readyz``."""
        self._wait_ok(f"idp{index + 1}", f"{self.instance_url(index)}/readyz", timeout)

    def _wait_ok(self, name: str, url: str, timeout: float) -> None:
        """Wait until ``url`` answers 200; the child ``name`` dying first, or the time running out, is an error."""
        process = self.supervisor.children[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ClusterError(f"{name} s'est arrêté au démarrage :\n{self.supervisor.log(name)}")
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise ClusterError(f"{name} ne répond pas sur {url} :\n{self.supervisor.log(name)}")

    def kill_instance(self, index: int) -> None:
        """SIGKILL instance ``index`` (the server's main process and its workers): a host lost in the middle of requests."""
        self.supervisor.kill(f"idp{index + 1}")

    def _start_haproxy(self) -> None:
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(binary).exists():
            raise ClusterError("haproxy introuvable (apt-get install haproxy)")
        from idp.settings import load_settings

        server = load_settings(self.config, environ={}).server
        errorfile = self.root / "haproxy-503.http"
        errorfile.write_bytes(unavailable_page(server.product_name, server.outage_retry_after_seconds))
        path = self.root / "haproxy.cfg"
        path.write_text(haproxy_config(self.spec.host, self.spec.port, self.ports, errorfile))
        self.supervisor.start("haproxy", [binary, "-db", "-f", str(path)])
        self._wait_ok("haproxy", f"{self.url}/healthz", 20)

    def stop(self, discard: bool = False) -> None:
        """Stop every child, then our own PostgreSQL (and delete its files with ``discard``)."""
        try:
            self.supervisor.stop()
        finally:
            if self.postgres is not None:
                if self.postgres.running():
                    self.postgres.stop()
                if discard:
                    self.postgres.remove()
