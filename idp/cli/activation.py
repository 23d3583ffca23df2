"""``idp outbox`` (the development outbox) and ``idp account issue-provisional`` (letters for a school)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from idp.cli.accounts import account
from idp.cli.main import CliContext, CommandFailed, pass_ctx


@click.command("outbox")
@click.option("--to", "to", default="", help="Seulement les messages pour ce numéro (E.164) ou cette adresse.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--follow", is_flag=True, help="Continuer à afficher les nouveaux messages (Ctrl-C pour arrêter).")
@click.option("--deliver/--no-deliver", default=True, show_default=True,
              help="Envoyer d'abord les messages en attente dans la file (serveur sans fil d'envoi).")
@pass_ctx
def outbox(ctx: CliContext, to: str, limit: int, follow: bool, deliver: bool) -> None:
    """Lire la boîte d'envoi de développement (SMS et courriels des backends « outbox »)."""
    from idp.storage.activation_store import SqlOutbox

    services = ctx.services
    if services.settings.sms.backend != "outbox" and services.settings.mail.backend != "outbox":
        raise CommandFailed("aucun backend « outbox » configuré ([sms] et [mail] backend)")
    box = SqlOutbox(services.db.sessionmaker)
    if deliver:
        services.delivery.run_pending()
    last = 0
    for message in box.messages(to=to, limit=limit):
        _show(message)
        last = message["id"]
    while follow:
        time.sleep(1)
        if deliver:
            services.delivery.run_pending()
        for message in box.messages(to=to, after_id=last, limit=limit):
            _show(message)
            last = message["id"]


def _show(message: dict[str, object]) -> None:
    at = message["at"]
    subject = f" – {message['subject']}" if message["subject"] else ""
    click.echo(f"[{message['id']}] {at:%d/%m/%Y %H:%M:%S} {message['channel']} → {message['to']}{subject}")
    click.echo(f"    {str(message['body']).strip()}".replace("\n", "\n    "))


@account.command("issue-provisional")
@click.option("--uai", required=True, help="UAI de l'établissement (ex. 0690026D).")
@click.option("--class", "class_code", default="", help="Seulement cette classe (code de la classe).")
@click.option("--ine", default="", help="Seulement cet élève (INE).")
@click.option("--parents", is_flag=True, help="Aussi pour les représentants légaux de ces élèves.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Dossier où écrire les courriers (PDF) et le fichier de publipostage (CSV).")
@pass_ctx
def issue_provisional(ctx: CliContext, uai: str, class_code: str, ine: str, parents: bool, out_dir: str) -> None:
    """Créer (ou renouveler) des identifiants provisoires valables 3 mois et écrire les courriers à imprimer."""
    from idp.delivery.letters import write_csv, write_letters

    services = ctx.services
    started = time.perf_counter()
    report = services.provisional.issue(uai, class_code=class_code, ine=ine, parents=parents, actor="cli")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    stem = f"identifiants-{uai.upper()}" + (f"-{class_code}" if class_code else "") + (f"-{ine}" if ine else "")
    settings = services.settings
    write_letters(out / f"{stem}.pdf", report.issued, product=settings.server.product_name,
                  login_url=settings.server.base_url.rstrip("/") + "/login")
    write_csv(out / f"{stem}.csv", report.issued)
    pupils = sum(1 for c in report.issued if c.profile.value == "student")
    click.echo(f"{len(report.issued)} identifiant(s) provisoire(s) : {pupils} élève(s), "
               f"{len(report.issued) - pupils} représentant(s) légal(aux) "
               f"({sum(1 for c in report.issued if c.reissued)} renouvelé(s)) ; "
               f"{report.skipped_active} compte(s) déjà activé(s) laissé(s) tel(s) quel(s)")
    click.echo(f"courriers : {out / (stem + '.pdf')}")
    click.echo(f"publipostage : {out / (stem + '.csv')}")
    click.echo(f"durée : {time.perf_counter() - started:.1f} s ; ces fichiers contiennent des mots de passe : "
               "supprimez-les une fois imprimés", err=True)


COMMANDS: list[click.Command] = [outbox]
