"""``idp cas add|list|remove|purge``: the CAS service registry, as an operator keeps it."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import click

from idp.cli.main import CliContext, CommandFailed, pass_ctx


def _slug(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:64]


def _attributes(text: str) -> tuple[str, ...]:
    from idp.core.identity import Attr

    names = tuple(a.strip() for a in text.split(",") if a.strip())
    known = {a.value for a in Attr}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise CommandFailed(f"attribut inconnu : {unknown[0]} (connus : {', '.join(sorted(known))})")
    return names


@click.group("cas")
def cas() -> None:
    """Services CAS : enregistrer, lister, retirer."""


@cas.command("add")
@click.argument("name")
@click.argument("pattern")
@click.option("--match", "match", type=click.Choice(["exact", "prefix", "regex"]), default="exact",
              show_default=True, help="Comparaison de l'URL de service (après normalisation) avec le motif.")
@click.option("--preset", type=click.Choice(["generic", "pronote"]), default="generic", show_default=True,
              help="Noms des attributs CAS 3.")
@click.option("--attributes", "attribute_list", default="",
              help="Attributs communiqués (noms canoniques séparés par des virgules) ; défaut : ceux du préréglage.")
@click.option("--clear-ine/--no-clear-ine", default=False, help="INE en clair (sinon empreinte propre au service).")
@click.option("--proxy/--no-proxy", default=False, show_default=True, help="Autoriser le mode proxy (PGT).")
@click.option("--slo/--no-slo", default=False, show_default=True, help="Déconnexion unique (POST logoutRequest).")
@click.option("--home-url", default="", help="Adresse affichée dans « Mes services ».")
@click.option("--description", default="", help="Description affichée dans « Mes services ».")
@click.option("--id", "service_id", default="", help="Identifiant stable du service (défaut : dérivé du nom).")
@click.option("--ca-file", default="", type=click.Path(dir_okay=False),
              help="Autorités de certification pour les appels vers ce service (rappel proxy, déconnexion).")
@pass_ctx
def add(ctx: CliContext, name: str, pattern: str, match: str, preset: str, attribute_list: str, clear_ine: bool,
        proxy: bool, slo: bool, home_url: str, description: str, service_id: str, ca_file: str) -> None:
    """Enregistrer un service CAS : NOM et MOTIF d'URL (https, hôte exact)."""
    from idp.cas.registry import InvalidServiceUrl, registration_for
    from idp.storage.cas_store import CasServiceRecord, SqlCasStore

    settings = ctx.settings
    try:
        scheme, host, stored = registration_for(pattern, match, allow_http=settings.server.development)
    except InvalidServiceUrl as exc:
        raise CommandFailed(f"motif refusé ({exc}) : une URL https sans identifiants ni fragment ; une "
                            "expression régulière commence par https://hote/ avec les points échappés") from None
    if ca_file and not Path(ca_file).is_file():
        raise CommandFailed(f"fichier introuvable : {ca_file}")
    service_id = service_id or _slug(name)
    if not service_id or not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,63}", service_id):
        raise CommandFailed("identifiant de service invalide (lettres minuscules, chiffres, tirets)")
    record = CasServiceRecord(
        service_id=service_id, name=name, match=match, pattern=stored, scheme=scheme, host=host, preset=preset,
        attributes=_attributes(attribute_list), clear_ine=clear_ine, proxy=proxy, slo=slo,
        ca_file=str(Path(ca_file).resolve()) if ca_file else "", home_url=home_url,
    )
    services = ctx.services
    with services.uow() as uow:
        store = SqlCasStore(uow.session)
        if store.service(service_id) is not None:
            raise CommandFailed(f"un service CAS « {service_id} » existe déjà (idp cas remove {service_id})")
        store.add_service(record, description, services.clock.now())
        uow.commit()
    click.echo(f"service CAS « {name} » enregistré : id {service_id}, {match} {stored}")


@cas.command("list")
@pass_ctx
def list_services(ctx: CliContext) -> None:
    """Lister les services CAS enregistrés."""
    from idp.storage.cas_store import SqlCasStore

    with ctx.services.uow() as uow:
        records = SqlCasStore(uow.session).all_services()
    for r in records:
        flags = ",".join(f for f, on in (("proxy", r.proxy), ("slo", r.slo), ("ine", r.clear_ine)) if on) or "-"
        click.echo(f"{r.service_id:<24} {r.preset:<8} {r.match:<6} {flags:<14} {r.pattern}  ({r.name})")
    click.echo(f"{len(records)} service(s) CAS", err=True)


@cas.command("remove")
@click.argument("service_id")
@pass_ctx
def remove(ctx: CliContext, service_id: str) -> None:
    """Retirer un service CAS (ses tickets en cours deviennent invalides)."""
    from idp.storage.cas_store import SqlCasStore
    from idp.storage.cas_tickets import ticket_store

    services = ctx.services
    with services.uow() as uow:
        removed = SqlCasStore(uow.session).remove_service(service_id)
        uow.commit()
    if not removed:
        raise CommandFailed(f"aucun service CAS « {service_id} »")
    ticket_store(services.settings, services.db)[1].forget_service(service_id)  # tickets kept in Redis
    click.echo(f"service CAS « {service_id} » retiré")


@cas.command("purge")
@pass_ctx
def purge(ctx: CliContext) -> None:
    """Effacer les tickets CAS expirés (sans risque en parallèle)."""
    import datetime as dt

    from idp.storage.cas_store import SqlCasStore

    lifetime = dt.timedelta(hours=ctx.settings.session.absolute_hours)
    with ctx.services.uow() as uow:
        count = SqlCasStore(uow.session).purge(ctx.services.clock.now(), lifetime)
        uow.commit()
    click.echo(f"{count} ticket(s) CAS expiré(s) effacé(s)")


COMMANDS = [cas]
