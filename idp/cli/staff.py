"""``idp staff …``: operators create, list and disable the school staff console's accounts."""

from __future__ import annotations

import click

from idp.cli.main import CliContext, pass_ctx
from idp.core.staff.model import Role


@click.group("staff")
def staff() -> None:
    """Personnel des établissements (console /etablissement) : ajouter, lister, désactiver."""


@staff.command("add")
@click.option("--uai", default="", help="Établissement (UAI) ; répétez la commande pour plusieurs établissements.")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.REFERENT.value, show_default=True,
              help="referent (référent numérique) ou secretariat.")
@click.option("--email", required=True, help="Adresse électronique professionnelle : le lien d'inscription y est envoyé.")
@click.option("--name", "display_name", default="", help="Nom affiché (défaut : l'adresse).")
@click.option("--operator", is_flag=True, help="Opérateur : voit tous les établissements.")
@pass_ctx
def add(ctx: CliContext, uai: str, role: str, email: str, display_name: str, operator: bool) -> None:
    """Créer un membre du personnel (ou lui ajouter un établissement) et lui envoyer son lien d'inscription."""
    if not uai and not operator:
        raise click.UsageError("--uai est obligatoire (sauf pour un opérateur, --operator)")
    member = ctx.services.extras["staff"].auth.invite(email, display_name, uai.upper(), Role(role),
                                                      operator=operator, actor="cli")
    schools = ", ".join(f"{m.uai} ({m.role.value})" for m in member.memberships) or "tous (opérateur)"
    click.echo(f"{member.email} : {schools} ; état {member.state.value}")
    if member.state.value == "invited":
        click.echo("lien d'inscription envoyé par courriel (développement : idp outbox)", err=True)


@staff.command("list")
@pass_ctx
def list_staff(ctx: CliContext) -> None:
    """Lister le personnel : adresse, état, second facteur, établissements."""
    members = ctx.services.extras["staff"].auth.members()
    for m in members:
        factor = ("clé d'accès" if m.passkeys else "") + (" + " if m.passkeys and m.has_totp else "") + \
            ("TOTP" if m.has_totp else "")
        schools = "tous (opérateur)" if m.operator else ", ".join(f"{s.uai}:{s.role.value}" for s in m.memberships)
        click.echo(f"{m.email:<36} {m.state.value:<9} {factor or '—':<20} {schools}")
    click.echo(f"{len(members)} membre(s) du personnel", err=True)


@staff.command("disable")
@click.argument("email")
@pass_ctx
def disable(ctx: CliContext, email: str) -> None:
    """Désactiver un membre du personnel : ses sessions se terminent aussitôt."""
    member = ctx.services.extras["staff"].auth.disable(email, actor="cli")
    click.echo(f"{member.email} désactivé")


COMMANDS: list[click.Command] = [staff]
