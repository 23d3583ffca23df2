"""``idp account …``: what a helpdesk uses to find, lock, unlock an account or set its password."""

from __future__ import annotations

import sys

import click

from idp.cli.main import CliContext, CommandFailed, pass_ctx
from idp.core.audit import mask_email, mask_phone
from idp.errors import PasswordRejected
from idp.web.i18n import french_language_name


@click.group("account")
def account() -> None:
    """Comptes : lister, consulter, verrouiller, déverrouiller, changer le mot de passe."""


@account.command("list")
@click.option("--search", "text", default="", help="Filtre sur l'identifiant ou le nom de famille.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@pass_ctx
def list_accounts(ctx: CliContext, text: str, limit: int) -> None:
    """Lister les comptes (identifiant, profil, état, nom)."""
    with ctx.services.uow() as uow:
        accounts = uow.accounts.search(text, limit)
    for a in accounts:
        click.echo(f"{a.identifier:<28} {a.profile.value:<8} {a.state.value:<12} {a.family_name} {a.given_names}")
    click.echo(f"{len(accounts)} compte(s)", err=True)


@account.command("show")
@click.argument("identifier")
@pass_ctx
def show(ctx: CliContext, identifier: str) -> None:
    """Afficher un compte, ses coordonnées (masquées) et les élèves qui lui sont rattachés."""
    a = ctx.services.accounts.get(identifier)
    with ctx.services.uow() as uow:
        records = uow.accounts.linked_records(a.id)
        sessions = uow.sessions.active_for_account(a.id, ctx.services.clock.now())
    lines = [
        f"identifiant   {a.identifier}", f"profil        {a.profile.label}", f"état          {a.state.value}",
        f"nom           {a.family_name} {a.given_names}",
        f"courriel      {mask_email(a.email) if a.email else '—'}{' (vérifié)' if a.email_verified else ''}",
        f"téléphone     {mask_phone(a.phone) if a.phone else '—'}{' (vérifié)' if a.phone_verified else ''}",
        f"langue        {french_language_name(a.language)}",
        f"créé le       {a.created_at:%d/%m/%Y %H:%M}" if a.created_at else "créé le       —",
        f"dernière connexion {a.last_login_at:%d/%m/%Y %H:%M}" if a.last_login_at else "dernière connexion —",
        f"sessions ouvertes  {len(sessions)}",
    ]
    for r in records:
        lines.append(f"élève         {r['family_name']} {r['given_names']} – {r['school']} ({r['uai']})"
                     f" {r['class_code']}")
    click.echo("\n".join(lines))


@account.command("lock")
@click.argument("identifier")
@pass_ctx
def lock(ctx: CliContext, identifier: str) -> None:
    """Verrouiller un compte : plus aucune connexion, sessions fermées."""
    a = ctx.services.accounts.lock(identifier, actor="cli")
    click.echo(f"compte {a.identifier} verrouillé")


@account.command("unlock")
@click.argument("identifier")
@pass_ctx
def unlock(ctx: CliContext, identifier: str) -> None:
    """Déverrouiller un compte et effacer ses échecs de connexion récents."""
    a = ctx.services.accounts.unlock(identifier, actor="cli")
    click.echo(f"compte {a.identifier} déverrouillé")


@account.command("set-password")
@click.argument("identifier")
@pass_ctx
def set_password(ctx: CliContext, identifier: str) -> None:
    """Définir le mot de passe, lu sur l'entrée standard (une ligne) ; les règles s'appliquent."""
    stream = sys.stdin
    if stream.isatty():
        password = click.prompt("Nouveau mot de passe", hide_input=True, confirmation_prompt=True)
    else:
        password = stream.readline().rstrip("\r\n")
    if not password:
        raise CommandFailed("aucun mot de passe lu sur l'entrée standard")
    try:
        a = ctx.services.accounts.set_password(identifier, password, actor="cli")
    except PasswordRejected as exc:
        raise CommandFailed("mot de passe refusé : " + " ".join(exc.reasons)) from exc
    click.echo(f"mot de passe de {a.identifier} modifié ; toutes ses sessions sont fermées", file=sys.stdout)


COMMANDS = [account]
