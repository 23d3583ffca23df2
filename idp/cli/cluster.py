"""``idp cluster``: N instances behind HAProxy on one PostgreSQL and one Redis, with the demo's services
through it — the multi-host topology of a national deployment, on one machine (``idp.cluster``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from idp.cli.main import CliContext, CommandFailed, pass_ctx

if TYPE_CHECKING:
    from idp.cli.demo_stack import ServiceSpec
    from idp.cluster.topology import Cluster
    from idp.storage.demo import DemoAccount


@click.command("cluster")
@click.option("--instances", default=2, show_default=True, type=click.IntRange(1, 32),
              help="Instances du fournisseur d'identité (processus « idp serve » sur des ports distincts).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Processus (workers) par instance.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Adresse d'écoute de HAProxy.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535),
              help="Port de HAProxy : l'adresse publique (base_url) de toutes les instances.")
@click.option("--database-url", default="", help="PostgreSQL partagé (défaut : un PostgreSQL à part, initdb).")
@click.option("--redis-url", default="", help="Redis partagé (défaut : un redis-server à part).")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Dossier de la topologie : configuration, clés, bases, journaux (défaut : var/cluster).")
@click.option("--demo/--no-demo", default=True, show_default=True,
              help="Registre et comptes de démonstration, ENT, Pronote et téléservices à travers HAProxy.")
@pass_ctx
def cluster(ctx: CliContext, instances: int, workers: int, host: str, port: int, database_url: str,
            redis_url: str, work_dir: Path | None, demo: bool) -> None:
    """Plusieurs instances derrière HAProxy, un PostgreSQL et un Redis partagés (Ctrl-C arrête tout)."""
    from idp.cli.demo_stack import Stack, adapter_specs, federation_env, stopping_on_signals
    from idp.cluster.demo import start_demo_services
    from idp.cluster.processes import ClusterError
    from idp.cluster.topology import Cluster, ClusterSpec

    settings = ctx.settings
    root = (work_dir or settings.path("var/cluster")).resolve()
    base = f"http://{host}:{port}"
    specs = adapter_specs(host, port + 1, base, root / "services") if demo else []
    spec = ClusterSpec(root=root, instances=instances, host=host, port=port, workers=workers,
                       database_url=database_url, redis_url=redis_url,
                       base_config=Path(ctx.config_path or "config.toml"), instance_env=federation_env(specs))
    topology = Cluster(spec)
    adapters = Stack()
    with stopping_on_signals(adapters) as state:
        try:
            topology.start()
            accounts = start_demo_services(topology, adapters, specs) if demo else []
        except ClusterError as exc:
            topology.stop()
            raise CommandFailed(str(exc)) from exc
        except BaseException:
            topology.stop()
            raise
        _print(topology, specs, accounts)
        state["serving"] = True
        try:
            while not state["stop"]:
                dead = topology.supervisor.dead() + adapters.dead()
                if dead:
                    click.echo(f"arrêt : {', '.join(dead)} s'est arrêté", err=True)
                    break
                time.sleep(0.5)
        finally:
            click.echo("\nArrêt de la topologie…")
            topology.stop()


def _print(topology: Cluster, specs: list[ServiceSpec], accounts: list[DemoAccount]) -> None:
    click.echo(f"\nTopologie prête : {topology.url}/login (HAProxy, contrôle de santé /healthz)\n")
    for index, port in enumerate(topology.ports):
        click.echo(f"  instance idp{index + 1:<3} http://127.0.0.1:{port}   (/readyz ; /metrics avec le jeton)")
    click.echo(f"  PostgreSQL      {topology.database_url}")
    click.echo(f"  Redis           {topology.redis_url}")
    click.echo(f"  jeton /metrics  {topology.root / 'keys' / 'metrics.token'}")
    click.echo(f"  journaux        {topology.root / 'logs'}\n")
    for s in specs:
        click.echo(f"  {s.label:<45} {s.url}/")
    for account in accounts:
        click.echo(f"  {account.role} : {account.identifier} / {account.password}")
    click.echo("\nCtrl-C arrête tout.")


@click.command("check")
@pass_ctx
def check(ctx: CliContext) -> None:
    """Vérifier la cohérence de la base (après une panne) : liens orphelins, comptes sans fiche du registre,
    identifiants en double ; code de sortie 1 si un problème est trouvé."""
    from idp.storage.consistency import check_consistency

    with ctx.services.db.sessionmaker() as session:
        problems = check_consistency(session)
    for problem in problems:
        sample = ", ".join(str(i) for i in problem.sample)
        click.echo(f"{problem.check} : {problem.count} — {problem.description} (id {sample})")
    if problems:
        raise CommandFailed(f"{len(problems)} contrôle(s) en échec")
    click.echo("base cohérente")


COMMANDS = [cluster, check]
