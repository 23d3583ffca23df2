"""``idp keys rotate STAGE``: signing-key rollover in three stages (SECURITY R10, R11).

1. ``publish-next``: a next key is created and announced (SAML metadata lists both certificates) but does
   not sign; wait at least one metadata cache period (``cacheDuration``, 6 h) so partners fetch it.
2. ``promote``: the next key signs from now on; the old one stays announced.
3. ``retire``: once partners have refreshed, the old key is no longer announced and is deleted.

Running workers notice a change of the key files within seconds; no restart is needed.
"""

from __future__ import annotations

import click

from idp import keystore
from idp.cli.main import CliContext, CommandFailed, pass_ctx
from idp.oidc import keyset as oidc_keys

STAGES = ("publish-next", "promote", "retire", "status")


@click.group("keys")
def keys() -> None:
    """Clés de signature (rotation en trois étapes)."""


@keys.command("rotate")
@click.argument("stage", type=click.Choice(STAGES))
@pass_ctx
def rotate(ctx: CliContext, stage: str) -> None:
    """Rotation : publish-next (annoncer), promote (signer avec la nouvelle), retire (retirer l'ancienne)."""
    settings = ctx.settings
    directory = settings.path(settings.keys.directory)
    try:
        # OIDC first (when it is served): its refusals (next keys published less than 24 h ago…) come before
        # any change to the SAML key.
        oidc = "oidc" in settings.protocols.enabled
        if stage == "publish-next":
            if oidc:
                click.echo("OIDC : clés suivantes publiées " + ", ".join(oidc_keys.rotate_publish(directory)))
            created = keystore.publish_next(directory, settings.server.base_url, settings.keys.rsa_bits)
            click.echo(f"clé suivante publiée : {', '.join(created)} (elle ne signe pas encore)")
        elif stage == "promote":
            if oidc:
                click.echo("OIDC : les clés " + ", ".join(oidc_keys.rotate_promote(directory)) + " signent désormais")
            keystore.promote_next(directory)
            click.echo("la nouvelle clé signe désormais ; l'ancienne reste annoncée jusqu'à « retire »")
        elif stage == "retire":
            if oidc:
                click.echo("OIDC : clés retirées " + ", ".join(oidc_keys.rotate_retire(directory)))
            keystore.retire_previous(directory)
            click.echo("ancienne clé retirée")
    except keystore.KeyStoreError as exc:
        raise CommandFailed(str(exc)) from None
    click.echo(f"étape : {keystore.rollover_stage(directory)}")


COMMANDS = [keys]
