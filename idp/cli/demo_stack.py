"""``idp demo``'s launcher: the identity provider and the demo service providers as child processes on
127.0.0.1, registered with the identity provider exactly as an operator would do it.

Each child runs in its own process group; stopping the demo (Ctrl-C, SIGTERM, or a child that dies) sends
SIGTERM to every group, then SIGKILL to what is left after a few seconds, so nothing outlives the demo.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import requests

from idp import PROJECT_ROOT

STOP_GRACE_SECONDS = 5.0
READY_TIMEOUT_SECONDS = 60.0
FC_CLIENT_ID = "compte-scolaire-dev"


@dataclass(frozen=True)
class ServiceSpec:
    """One demo service provider: its package under ``sp_adapters/`` and how to register it."""

    name: str
    label: str
    module: str
    port: int
    url: str
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


def adapter_specs(host: str, first_port: int, idp_url: str, data_root: Path) -> list[ServiceSpec]:
    """The demo service providers and their ports (ENT first_port, Pronote +1, téléservices +2, then +3).

    The single place to add a service provider to the demo: append its spec here, and its registration to
    ``register_adapters`` below (the FranceConnect-style provider of ``sp_adapters/franceconnect`` goes on
    port first_port + 3 when that package exists)."""
    def url(port: int) -> str:
        return f"http://{host}:{port}"

    ent, pronote, teleservices = first_port, first_port + 1, first_port + 2
    links = ("--link", f"pronote={url(pronote)}/", "--link", f"teleservices={url(teleservices)}/",
             "--link", f"ent={url(ent)}/")
    specs = [
        ServiceSpec("ent", "ENT (SAML)", "sp_adapters.ent", ent, url(ent), links),
        ServiceSpec("pronote", "Pronote (CAS)", "sp_adapters.pronote", pronote, url(pronote), links),
        ServiceSpec("teleservices", "Téléservices (OpenID Connect)", "sp_adapters.teleservices", teleservices,
                    url(teleservices), (*links, "--client-id", "teleservices")),
    ]
    if (PROJECT_ROOT / "sp_adapters" / "franceconnect" / "__init__.py").exists():
        fc = first_port + 3
        specs.append(ServiceSpec("franceconnect", "Fournisseur d'identité type FranceConnect",
                                 "sp_adapters.franceconnect", fc, url(fc),
                                 ("--client-id", FC_CLIENT_ID, "--redirect-uri", f"{idp_url}/franceconnect/retour",
                                  "--post-logout-redirect-uri", f"{idp_url}/franceconnect/deconnexion"),
                                 {"FC_CLIENT_SECRET": secrets.token_urlsafe(32)}))
    return [ServiceSpec(s.name, s.label, s.module, s.port, s.url,
                        ("--host", host, "--port", str(s.port), "--data-dir", str(data_root / s.name),
                         *(() if s.name == "franceconnect" else ("--idp-url", idp_url)), *s.args), s.env)
            for s in specs]


def federation_env(specs: list[ServiceSpec]) -> dict[str, str]:
    """The identity provider's [federation] settings pointing at the demo's FranceConnect-style provider."""
    fc = next((s for s in specs if s.name == "franceconnect"), None)
    if fc is None:
        return {}
    issuer = f"{fc.url}/api/v2"
    return {"IDP_FEDERATION__ENABLED": "true", "IDP_FEDERATION__ISSUER": issuer,
            "IDP_FEDERATION__CLIENT_ID": FC_CLIENT_ID,
            "IDP_FEDERATION__AUTHORIZATION_ENDPOINT": f"{issuer}/authorize",
            "IDP_FEDERATION__TOKEN_ENDPOINT": f"{issuer}/token",
            "IDP_FEDERATION__USERINFO_ENDPOINT": f"{issuer}/userinfo",
            "IDP_FEDERATION__END_SESSION_ENDPOINT": f"{issuer}/session/end",
            "IDP_FEDERATION__JWKS_URI": f"{issuer}/jwks",
            "IDP_FEDERATION_CLIENT_SECRET": fc.env["FC_CLIENT_SECRET"]}


class Operator:
    """The ``idp`` commands an operator would type, run in this process (the output is kept)."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path

    def __call__(self, *args: str, check: bool = True) -> str:
        from idp.cli.main import cli

        argv = (["--config", self.config_path] if self.config_path else []) + list(args)
        out = io.StringIO()
        try:
            with redirect_stdout(out):
                cli.main(args=argv, prog_name="idp", standalone_mode=False)
        except click.ClickException as exc:
            if check:
                raise click.ClickException(f"idp {' '.join(args[:2])} : {exc.format_message()}") from exc
        return out.getvalue()


def register_before_start(op: Operator, specs: list[ServiceSpec]) -> dict[str, dict[str, str]]:
    """Registrations that only need the services' addresses (CAS, OIDC); secrets go to the child's env."""
    by_name = {s.name: s for s in specs}
    env: dict[str, dict[str, str]] = {}
    if "pronote" in by_name:
        url = by_name["pronote"].url
        op("cas", "remove", "pronote", check=False)
        op("cas", "add", "Pronote", f"{url}/", "--match", "prefix", "--preset", "pronote", "--slo",
           "--id", "pronote", "--home-url", f"{url}/", "--description", "Vie scolaire : emploi du temps, notes")
    if "teleservices" in by_name:
        url = by_name["teleservices"].url
        op("oidc", "remove", "teleservices", check=False)
        out = op("oidc", "add", "--name", "Téléservices", "--client-id", "teleservices",
                 "--redirect-uri", f"{url}/callback", "--scope", "openid profile email phone fr_edu fr_edu_children",
                 "--first-party", "--post-logout-redirect-uri", f"{url}/deconnecte",
                 "--backchannel-logout-uri", f"{url}/backchannel-logout", "--home-url", f"{url}/")
        found = re.search(r"client_secret\s*:\s*(\S+)", out)
        if not found:
            raise click.ClickException("idp oidc add n'a pas donné de secret")
        env["teleservices"] = {"TELESERVICES_CLIENT_SECRET": found.group(1)}
    return env


def register_after_start(op: Operator, specs: list[ServiceSpec], work: Path) -> None:
    """Registrations that need the running service (its SAML metadata, fetched like an operator would)."""
    for spec in specs:
        if spec.name == "ent":
            answer = requests.get(f"{spec.url}/saml/metadata", timeout=10)
            answer.raise_for_status()
            path = work / "ent-metadata.xml"
            path.write_bytes(answer.content)
            op("sp", "add", str(path), "--name", "ENT", "--home-url", f"{spec.url}/", "--allow-idp-initiated",
               "--attributes", "sn,givenName,FrEduCtId,FrEduCtPersonAffiliation,FrEduCtEleveUAI,"
               "FrEduCtEleveNiveau,FrEduVecteur,FrEduUrlRetour")


class Stack:
    """Child processes, each in its own process group, stopped together."""

    def __init__(self, echo: Callable[[str], None] = click.echo) -> None:
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.echo = echo

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        child_env = dict(os.environ)
        child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), child_env.get("PYTHONPATH", "")]))
        child_env.update(env or {})
        process = subprocess.Popen(argv, env=child_env, start_new_session=True, cwd=str(PROJECT_ROOT))  # noqa: S603
        self.children.append((name, process))

    def wait_ready(self, name: str, url: str, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        process = dict(self.children)[name]
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise click.ClickException(f"{name} s'est arrêté au démarrage (code {process.returncode})")
            try:
                if requests.get(url, timeout=2, allow_redirects=False).status_code < 500:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise click.ClickException(f"{name} ne répond pas sur {url}")

    def dead(self) -> list[str]:
        return [name for name, process in self.children if process.poll() is not None]

    def stop(self) -> None:
        for _, process in self.children:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for _, process in self.children:
            with suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
        for _, process in self.children:
            _signal_group(process, signal.SIGKILL)
            with suppress(subprocess.TimeoutExpired):
                process.wait(2)
        self.children.clear()


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)  # the child's group: the server's workers and any thread pool go too


@contextmanager
def stopping_on_signals(stack: Stack) -> Iterator[dict[str, Any]]:
    """SIGINT and SIGTERM end the wait; the stack is stopped however the block is left."""
    state: dict[str, Any] = {"stop": False, "serving": False}

    def handler(signum: int, frame: Any) -> None:
        state["stop"] = True
        if not state["serving"]:
            raise KeyboardInterrupt  # still starting: leave at once (the stack is stopped below)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield state
    finally:
        try:
            stack.stop()
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)


def run_stack(config_path: str | None, idp_url: str, host: str, port: int, first_port: int, data_root: Path,
              workers: int, print_accounts: Callable[[list[ServiceSpec]], None]) -> None:
    """Start everything, register the services, print the addresses, wait for Ctrl-C, stop everything."""
    data_root.mkdir(parents=True, exist_ok=True)
    # The children run from the project directory: give them this instance's configuration by absolute path.
    config_path = str(Path(config_path or "config.toml").resolve())
    op = Operator(config_path)
    specs = adapter_specs(host, first_port, idp_url, data_root)
    envs = register_before_start(op, specs)
    stack = Stack()
    with stopping_on_signals(stack) as state:
        idp_argv = [sys.executable, "-m", "idp", *(["--config", config_path] if config_path else []),
                    "serve", "--host", host, "--port", str(port), "--workers", str(workers)]
        stack.start("idp", idp_argv, federation_env(specs))
        for spec in specs:
            stack.start(spec.name, [sys.executable, "-m", spec.module, *spec.args], spec.env | envs.get(spec.name, {}))
        stack.wait_ready("idp", f"http://{host}:{port}/healthz")
        for spec in specs:
            stack.wait_ready(spec.name, f"{spec.url}/")
        register_after_start(op, specs, data_root)
        print_accounts(specs)
        state["serving"] = True
        while not state["stop"]:
            dead = stack.dead()
            if dead:
                click.echo(f"arrêt : {', '.join(dead)} s'est arrêté", err=True)
                break
            time.sleep(0.3)
        click.echo("\nArrêt de la démo…")
