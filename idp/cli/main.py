"""The ``idp`` command: one entry point for operators; every sub-command is a thin call into services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import click

from idp.errors import IdpError
from idp.settings import Settings, load_settings


@dataclass
class CliContext:
    """Settings and services, built on first use so ``--help`` works without a configuration."""

    config_path: str | None
    _settings: Settings | None = None
    _services: Any = field(default=None)

    @property
    def settings(self) -> Settings:
        """The loaded settings (``--config`` or ``IDP_CONFIG`` or ``./config.toml``)."""
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    @property
    def services(self) -> Any:
        """The services built from the settings."""
        if self._services is None:
            from idp.wiring import build_services

            self._services = build_services(self.settings)
        return self._services

    def reset(self) -> None:
        """Forget loaded settings and services (after ``init`` wrote new keys)."""
        if self._services is not None:
            self._services.db.dispose()
        self._settings = None
        self._services = None


pass_ctx = click.make_pass_decorator(CliContext)


class CommandFailed(click.ClickException):
    """A failure shown as one French line on standard error, exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"erreur : {self.format_message()}", err=True)


class IdpGroup(click.Group):
    """Turns known failures into ``CommandFailed`` so no command ever prints a stack trace for them."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except IdpError as exc:
            raise CommandFailed(exc.description) from exc
        except OSError as exc:
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            raise CommandFailed(f"{exc.strerror or exc}{where}") from exc


@click.group(cls=IdpGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_path", envvar="IDP_CONFIG", type=click.Path(dir_okay=False),
              help="Fichier de configuration (défaut : IDP_CONFIG, sinon ./config.toml).")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Fournisseur d'identité pour les écoles : administration en ligne de commande."""
    ctx.obj = CliContext(config_path=config_path)
    # The pools' connections are closed when the command ends, not left to the garbage collector (a command
    # run in process, as the tests and `idp demo` do, would otherwise keep them open on the server).
    ctx.call_on_close(ctx.obj.reset)


def _register_commands() -> None:
    from idp.cli import (
        accounts,
        activation,
        audit,
        cas,
        cluster,
        i18n,
        keys,
        oidc,
        register,
        saml,
        server,
        staff,
    )

    for module in (server, accounts, activation, register, saml, oidc, cas, keys, staff, audit, i18n, cluster):
        for command in module.COMMANDS:
            cli.add_command(command)


_register_commands()


def main() -> None:
    """Entry point of the ``idp`` console script."""
    cli.main(prog_name="idp")
