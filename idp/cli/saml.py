"""``idp sp …``: register, list, change, remove and refresh SAML service providers.

Files dropped in the instance's ``metadata/`` directory are (re)loaded by ``idp sp refresh`` (run it after
adding a file, and from cron with URL registrations: it also re-fetches them and checks their signature).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from idp.cli.main import CliContext, CommandFailed, pass_ctx
from idp.saml import admin
from idp.saml.attributes import parse_attribute_list
from idp.saml.registry import MetadataRejected
from idp.storage.saml_store import SpRow, SqlSamlStore

F = TypeVar("F", bound=Callable[..., Any])


def _policy(attributes: str | None, nameid: str | None, clear_ine: bool | None, compat_oid: bool | None,
            idp_initiated: bool | None, name: str | None, sign_response: bool | None,
            encrypt: bool | None, require_encryption: bool | None,
            allow_unsigned_requests: bool | None) -> dict[str, object]:
    policy: dict[str, object] = {}
    if attributes is not None:
        try:
            policy["attributes"] = sorted(a.value for a in parse_attribute_list(attributes))
        except ValueError as exc:
            raise CommandFailed(str(exc)) from None
    for key, value in (("nameid_format", nameid), ("clear_ine", clear_ine), ("compat_oid", compat_oid),
                       ("allow_idp_initiated", idp_initiated), ("name", name), ("sign_response", sign_response),
                       ("encrypt_assertion", encrypt), ("require_encryption", require_encryption),
                       ("allow_unsigned_requests", allow_unsigned_requests)):
        if value is not None:
            policy[key] = value
    return policy


def _policy_options(func: F) -> F:
    options = [
        click.option("--attributes", help="Attributs transmis, séparés par des virgules (ex. sn,givenName,FrEduCtId)."),
        click.option("--nameid", type=click.Choice(["persistent", "transient"]), help="Format du NameID."),
        click.option("--clear-ine/--hash-ine", default=None, help="INE en clair (sinon haché par service)."),
        click.option("--compat-oid/--basic-names", default=None, help="Noms OID compatibles ÉduConnect."),
        click.option("--allow-idp-initiated/--no-idp-initiated", default=None,
                     help="Autoriser la connexion ouverte depuis un portail (non sollicitée)."),
        click.option("--sign-response/--no-sign-response", default=None, help="Signer aussi la réponse."),
        click.option("--encrypt/--no-encrypt", default=None,
                     help="Chiffrer l'assertion quand le service publie une clé de chiffrement (défaut : oui)."),
        click.option("--require-encryption/--allow-clear", default=None,
                     help="Ne jamais envoyer d'assertion en clair : les métadonnées doivent publier une clé de "
                          "chiffrement (défaut : non)."),
        click.option("--allow-unsigned-requests/--require-signed-requests", default=None,
                     help="Accepter les requêtes d'authentification non signées de ce service, s'il ne sait pas "
                          "signer (défaut : signature exigée, comme l'annoncent nos métadonnées)."),
        click.option("--name", help="Nom affiché dans « Mes services »."),
        click.option("--home-url", help="Adresse d'accueil du service dans « Mes services »."),
    ]
    decorated: Any = func
    for option in reversed(options):
        decorated = option(decorated)
    return cast(F, decorated)


@click.group("sp")
def sp() -> None:
    """Fournisseurs de service SAML (métadonnées et politique de diffusion)."""


@sp.command("add")
@click.argument("source")
@click.option("--cert", type=click.Path(exists=True, dir_okay=False), help="Certificat qui signe les métadonnées.")
@_policy_options
@pass_ctx
def add(ctx: CliContext, source: str, cert: str | None, attributes: str | None, nameid: str | None,
        clear_ine: bool | None, compat_oid: bool | None, allow_idp_initiated: bool | None,
        sign_response: bool | None, encrypt: bool | None, require_encryption: bool | None,
        allow_unsigned_requests: bool | None, name: str | None, home_url: str | None) -> None:
    """Enregistrer un service depuis un fichier de métadonnées ou une adresse (FILE|URL)."""
    policy = _policy(attributes, nameid, clear_ine, compat_oid, allow_idp_initiated, name, sign_response, encrypt,
                     require_encryption, allow_unsigned_requests)
    cert_pem = Path(cert).read_bytes() if cert else None
    try:
        done = admin.register(ctx.services, source, cert=cert_pem, home_url=home_url, **policy)
    except MetadataRejected as exc:
        raise CommandFailed(exc.description) from None
    for item in done:
        click.echo(f"{'ajouté' if item.created else 'mis à jour'} : {item.entity_id}")
        for warning in item.warnings:
            click.echo(f"attention : {warning}", err=True)


@sp.command("list")
@pass_ctx
def list_(ctx: CliContext) -> None:
    """Lister les services SAML enregistrés et leur politique."""
    with ctx.services.uow() as uow:
        rows = SqlSamlStore(uow.session).list_sps()
    if not rows:
        click.echo("aucun service SAML enregistré")
    for row in rows:
        until = row.valid_until.strftime("%Y-%m-%d") if row.valid_until else "-"
        click.echo(f"{row.entity_id}\t{row.name}\tnameid={row.nameid_format}\t"
                   f"attributs={','.join(row.attributes) or 'défaut'}\tine={'clair' if row.clear_ine else 'haché'}\t"
                   f"noms={'oid' if row.compat_oid else 'basic'}\tportail={'oui' if row.allow_idp_initiated else 'non'}\t"
                   f"chiffrement={_encryption_label(row)}\t"
                   f"requêtes={'non-signées-acceptées' if row.allow_unsigned_requests else 'signées'}\t"
                   f"validUntil={until}\tsource={row.refresh_url or row.source or 'cli'}")


def _encryption_label(row: SpRow) -> str:
    if row.require_encryption:
        return "exigé"
    return "si-clé" if row.encrypt_assertion else "non"


@sp.command("set")
@click.argument("entity_id")
@_policy_options
@pass_ctx
def set_(ctx: CliContext, entity_id: str, attributes: str | None, nameid: str | None, clear_ine: bool | None,
         compat_oid: bool | None, allow_idp_initiated: bool | None, sign_response: bool | None,
         encrypt: bool | None, require_encryption: bool | None, allow_unsigned_requests: bool | None,
         name: str | None, home_url: str | None) -> None:
    """Modifier la politique d'un service enregistré."""
    policy = _policy(attributes, nameid, clear_ine, compat_oid, allow_idp_initiated, name, sign_response, encrypt,
                     require_encryption, allow_unsigned_requests)
    try:
        found = admin.set_policy(ctx.services, entity_id, home_url=home_url, **policy)
    except MetadataRejected as exc:
        raise CommandFailed(exc.description) from None
    if not found:
        raise CommandFailed(f"service inconnu : {entity_id}")
    click.echo(f"modifié : {entity_id}")


@sp.command("remove")
@click.argument("entity_id")
@pass_ctx
def remove(ctx: CliContext, entity_id: str) -> None:
    """Retirer un service SAML."""
    with ctx.services.uow() as uow:
        found = SqlSamlStore(uow.session).remove_sp(entity_id)
        uow.commit()
    if not found:
        raise CommandFailed(f"service inconnu : {entity_id}")
    click.echo(f"retiré : {entity_id}")


@sp.command("refresh")
@pass_ctx
def refresh(ctx: CliContext) -> None:
    """Recharger les métadonnées : adresses enregistrées (signature vérifiée) et fichiers du dossier metadata/."""
    directory = ctx.settings.path(admin.METADATA_DIRECTORY)
    done, failed = admin.refresh(ctx.services, directory)
    for item in done:
        click.echo(f"{'ajouté' if item.created else 'à jour'} : {item.entity_id}")
    for line in failed:
        click.echo(f"échec : {line}", err=True)
    if failed:
        raise CommandFailed(f"{len(failed)} métadonnée(s) non rechargée(s) ; les précédentes restent en service")


COMMANDS = [sp]
