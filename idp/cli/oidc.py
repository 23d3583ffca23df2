"""``idp oidc add|list|show|remove|rotate-secret``: register and manage OpenID Connect clients."""

from __future__ import annotations

from pathlib import Path

import click

from idp.cli.main import CliContext, CommandFailed, pass_ctx


@click.group("oidc")
def oidc() -> None:
    """Clients OpenID Connect (applications qui reçoivent des jetons)."""


def _scopes(values: tuple[str, ...]) -> tuple[str, ...]:
    from idp.oidc.registration import DEFAULT_SCOPES

    scopes = tuple(s for value in values for s in value.replace(",", " ").split())
    return scopes or DEFAULT_SCOPES


@oidc.command("add")
@click.option("--name", required=True, help="Nom affiché (page de consentement, « Mes services »).")
@click.option("--client-id", default="", help="Identifiant du client (généré si absent).")
@click.option("--redirect-uri", "redirect_uris", multiple=True, required=True,
              help="Adresse de retour exacte (répétable), comparée octet par octet.")
@click.option("--scope", "scopes", multiple=True,
              help="Scopes autorisés (défaut : openid profile email fr_edu ; fr_edu_ine et phone à donner exprès).")
@click.option("--auth-method", default="client_secret_basic", show_default=True,
              type=click.Choice(["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]),
              help="Authentification au point de jeton ; none = client public (PKCE obligatoire).")
@click.option("--public", is_flag=True, help="Client public (équivaut à --auth-method none).")
@click.option("--jwks", "jwks_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Fichier JWKS des clés publiques du client (private_key_jwt).")
@click.option("--jwks-uri", default="", help="URL du JWKS du client (private_key_jwt).")
@click.option("--subject-type", default="pairwise", show_default=True, type=click.Choice(["pairwise", "public"]))
@click.option("--sector", "sector_identifier", default="", help="Secteur des identifiants pairwise.")
@click.option("--refresh/--no-refresh", default=False, show_default=True, help="Jetons de rafraîchissement.")
@click.option("--first-party", is_flag=True, help="Application de l'établissement : pas de page de consentement.")
@click.option("--post-logout-redirect-uri", "post_logout", multiple=True, help="Retour après déconnexion (répétable).")
@click.option("--backchannel-logout-uri", default="", help="Adresse de déconnexion back-channel.")
@click.option("--id-token-alg", default="RS256", show_default=True, type=click.Choice(["RS256", "ES256"]),
              help="Algorithme de signature des jetons d'identité de ce client.")
@click.option("--home-url", default="", help="Adresse d'accueil : le service apparaît dans « Mes services ».")
@pass_ctx
def add(ctx: CliContext, name: str, client_id: str, redirect_uris: tuple[str, ...], scopes: tuple[str, ...],
        auth_method: str, public: bool, jwks_file: Path | None, jwks_uri: str, subject_type: str,
        sector_identifier: str, refresh: bool, first_party: bool, post_logout: tuple[str, ...],
        backchannel_logout_uri: str, id_token_alg: str, home_url: str) -> None:
    """Enregistrer un client ; son secret n'est affiché qu'une fois."""
    from idp.oidc.registration import ClientSpec, register

    spec = ClientSpec(
        name=name, client_id=client_id, redirect_uris=redirect_uris, scopes=_scopes(scopes),
        auth_method="none" if public else auth_method, jwks=jwks_file.read_text("utf-8") if jwks_file else "",
        jwks_uri=jwks_uri, subject_type=subject_type, sector_identifier=sector_identifier, refresh_tokens=refresh,
        first_party=first_party, post_logout_redirect_uris=post_logout, backchannel_logout_uri=backchannel_logout_uri,
        id_token_alg=id_token_alg, home_url=home_url,
    )
    services = ctx.services
    with services.uow() as uow:
        record, secret = register(uow, spec, services.clock.now(), development=ctx.settings.server.development)
        uow.commit()
    click.echo(f"client enregistré : {record.client_id} ({record.name})")
    click.echo(f"client_id     : {record.client_id}")
    if secret:
        click.echo(f"client_secret : {secret}")
        click.echo("Notez ce secret maintenant : il n'est conservé que sous forme d'empreinte et ne sera plus affiché.")


@oidc.command("list")
@pass_ctx
def list_clients(ctx: CliContext) -> None:
    """Lister les clients enregistrés."""
    from idp.storage.oidc_store import SqlOidcStore

    with ctx.services.uow() as uow:
        clients = SqlOidcStore(uow.session).clients()
    if not clients:
        click.echo("aucun client OIDC")
    for c in clients:
        state = "" if c.enabled else "  (désactivé)"
        click.echo(f"{c.client_id}\t{c.name}\t{c.auth_method}\t{' '.join(c.scopes)}{state}")


@oidc.command("show")
@click.argument("client_id")
@pass_ctx
def show(ctx: CliContext, client_id: str) -> None:
    """Afficher un client (jamais son secret)."""
    from idp.storage.oidc_store import SqlOidcStore

    with ctx.services.uow() as uow:
        c = SqlOidcStore(uow.session).client(client_id)
    if c is None:
        raise CommandFailed(f"client inconnu : {client_id}")
    lines = [("client_id", c.client_id), ("nom", c.name), ("authentification", c.auth_method),
             ("secret", "enregistré (empreinte)" if c.secret_hash else "aucun"),
             ("redirect_uri", " ".join(c.redirect_uris)), ("scopes", " ".join(c.scopes)),
             ("sujet", c.subject_type + (f" (secteur {c.sector_identifier})" if c.sector_identifier else "")),
             ("rafraîchissement", "oui" if c.refresh_tokens else "non"),
             ("première partie", "oui" if c.first_party else "non"),
             ("post_logout_redirect_uri", " ".join(c.post_logout_redirect_uris) or "aucune"),
             ("backchannel_logout_uri", c.backchannel_logout_uri or "aucune"),
             ("jetons d'identité", c.id_token_alg),
             ("jwks_uri", c.jwks_uri or ("JWKS enregistré" if c.jwks else "aucun"))]
    for label, value in lines:
        click.echo(f"{label:<25}: {value}")


@oidc.command("remove")
@click.argument("client_id")
@pass_ctx
def remove(ctx: CliContext, client_id: str) -> None:
    """Supprimer un client, ses autorisations et ses jetons."""
    from idp.storage.oidc_store import SqlOidcStore

    with ctx.services.uow() as uow:
        removed = SqlOidcStore(uow.session).remove_client(client_id)
        uow.commit()
    if not removed:
        raise CommandFailed(f"client inconnu : {client_id}")
    click.echo(f"client supprimé : {client_id}")


@oidc.command("rotate-secret")
@click.argument("client_id")
@pass_ctx
def rotate_secret_command(ctx: CliContext, client_id: str) -> None:
    """Remplacer le secret d'un client (l'ancien cesse aussitôt de fonctionner)."""
    from idp.oidc.registration import rotate_secret

    services = ctx.services
    with services.uow() as uow:
        secret = rotate_secret(uow, client_id, services.clock.now())
        uow.commit()
    click.echo(f"nouveau client_secret : {secret}")
    click.echo("Notez ce secret maintenant : il ne sera plus affiché.")


COMMANDS = [oidc]
