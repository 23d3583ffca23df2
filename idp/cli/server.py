"""``idp init``, ``idp serve`` and ``idp demo``: set up an instance, run it, run the demo."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import click

from idp.cli.main import CliContext, CommandFailed, pass_ctx


def _init(ctx: CliContext) -> list[str]:
    from idp import PROJECT_ROOT
    from idp.keystore import ensure_keys
    from idp.storage import schema

    config = Path(ctx.config_path or "config.toml")
    if not config.exists():
        template = PROJECT_ROOT / "config.toml"
        if not template.exists():
            raise CommandFailed(f"fichier de configuration introuvable : {config}")
        config.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, config)
        click.echo(f"configuration créée : {config}")
        ctx.config_path = str(config)
    settings = ctx.settings
    created = ensure_keys(settings.path(settings.keys.directory), settings.server.base_url, settings.keys.rsa_bits)
    from idp.oidc.keyset import ensure_oidc_keys

    created += ensure_oidc_keys(settings.path(settings.keys.directory))
    ctx.reset()
    schema.upgrade(ctx.services.db)
    return created


@click.command("init")
@pass_ctx
def init(ctx: CliContext) -> None:
    """Préparer une instance : configuration, base de données (migrations), clés dans keys/ (0600)."""
    created = _init(ctx)
    keys = ctx.settings.path(ctx.settings.keys.directory)
    click.echo(f"clés : {', '.join(created) if created else 'déjà présentes'} ({keys})")
    click.echo("base de données à jour")


def run_server(config_path: str | None, host: str, port: int, workers: int, threads: int = 4, *,
               target: str = "idp.wsgi:app") -> None:
    """Serve the application with Granian's WSGI interface: ``workers`` processes (each builds its own app and
    database pools), each running the application in up to ``threads`` Python threads. Granian reads, parses
    and writes HTTP in Rust outside the GIL (keep-alive and slow clients hold no Python thread); on this
    machine it leaves 0.1 ms more of CPU per request to the application than gunicorn's gthread worker
    (bench/README.md). A worker that dies is started again; SIGHUP replaces the workers one by one.
    ``target`` is the WSGI application's import path (the benchmarks wrap ``idp.wsgi:app`` with a probe)."""
    import os

    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    from idp import metrics

    chosen = os.environ.get(metrics.MULTIPROC_ENV)
    directory = metrics.prepare_multiprocess()  # one metrics directory for this server's workers (idp.metrics)
    if config_path:  # the workers build the app from idp.wsgi, which reads IDP_CONFIG
        os.environ["IDP_CONFIG"] = str(Path(config_path).resolve())
    try:
        Granian(target, address=host, port=port, interface=Interfaces.WSGI, workers=workers,
                blocking_threads=threads, websockets=False, log_level=LogLevels.warning,
                respawn_failed_workers=True, respawn_interval=0.5, workers_kill_timeout=5).serve()
    finally:
        if directory and not chosen:  # the temporary directory made for this server goes with it
            shutil.rmtree(directory, ignore_errors=True)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Adresse d'écoute.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535), help="Port d'écoute.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Processus (un par cœur en production).")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Fils d'exécution de l'application par processus.")
@pass_ctx
def serve(ctx: CliContext, host: str, port: int, workers: int, threads: int) -> None:
    """Servir le fournisseur d'identité (Granian, interface WSGI)."""
    settings = ctx.settings
    if not settings.secret_key:
        raise CommandFailed("clé secrète absente : lancez d'abord « idp init »")
    click.echo(f"fournisseur d'identité sur http://{host}:{port} (adresse publique {settings.server.base_url})")
    run_server(ctx.config_path, host, port, workers, threads)


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535),
              help="Port du fournisseur d'identité (son adresse publique reste [server] base_url).")
@click.option("--adapters-port", default=0, type=click.IntRange(0, 65530),
              help="Premier port des services de démonstration : ENT, puis Pronote, téléservices… (défaut : port + 1).")
@click.option("--no-serve", is_flag=True, help="Préparer les données sans lancer le serveur.")
@click.option("--no-adapters", is_flag=True, help="Lancer le fournisseur d'identité seul, sans les services de démonstration.")
@pass_ctx
def demo(ctx: CliContext, host: str, port: int, adapters_port: int, no_serve: bool, no_adapters: bool) -> None:
    """Démo : initialiser, importer le registre des tutoriels, créer des comptes, lancer l'IdP, l'ENT, Pronote
    et les téléservices (Ctrl-C arrête tout)."""
    from idp.cli.main import cli
    from idp.demo_register import write_demo_register
    from idp.staff_demo import create_demo_staff
    from idp.storage.demo import create_demo_accounts, not_activated_parent

    _init(ctx)
    with tempfile.TemporaryDirectory(prefix="idp-demo-") as tmp:
        featured = write_demo_register(Path(tmp))
        args = ["import", "csv", tmp]
        if ctx.config_path:
            args = ["--config", ctx.config_path, *args]
        cli.main(args=args, prog_name="idp", standalone_mode=False)
    accounts = create_demo_accounts(ctx.services, featured)
    family, given, phone = not_activated_parent(ctx.services)
    referent = create_demo_staff(ctx.services)
    base = ctx.settings.server.base_url

    def print_accounts(services: list[Any]) -> None:
        click.echo(f"\nDémo prête : {base}/login\n")
        for spec in services:
            click.echo(f"  {spec.label:<45} {spec.url}/")
        if services:
            click.echo("")
        for account in accounts:
            click.echo(f"  {account.role}\n    identifiant {account.identifier}   mot de passe {account.password}"
                       f"\n    {account.note}")
        click.echo(f"\n  Représentant légal pas encore activé : {given} {family}, portable {phone}"
                   "\n    « Je n'ai pas de compte » sur la page de connexion ; le code SMS se lit avec "
                   "« idp outbox » ou sur /dev/outbox\n")
        click.echo(f"  Console établissement ({referent.school}) : {base}/etablissement"
                   f"\n    {referent.email}   mot de passe {referent.password}"
                   f"\n    second facteur : application d'authentification, clé {referent.totp_secret}"
                   "\n    (ou le code du moment : python -c \"import pyotp; print(pyotp.TOTP('"
                   f"{referent.totp_secret}').now())\")\n")
        if any(spec.name == "franceconnect" for spec in services):
            click.echo("  FranceConnect (test) : « S'identifier avec FranceConnect », puis Karim Lefort (pas encore de"
                       "\n    compte : confirmation par SMS) ou Sandrine Dupuis (compte existant : liaison)\n")
        if services:
            click.echo("Ctrl-C arrête tout.")

    if no_serve:
        print_accounts([])
        return
    ctx.reset()
    if no_adapters:
        print_accounts([])
        run_server(ctx.config_path, host, port, workers=2)
        return
    from idp.cli.demo_stack import run_stack

    try:
        run_stack(ctx.config_path, base, host, port, adapters_port or port + 1,
                  ctx.settings.path("var/demo"), workers=2, print_accounts=print_accounts)
    except KeyboardInterrupt:
        click.echo("\nDémo arrêtée.")


COMMANDS = [init, serve, demo]
