"""``idp i18n``: the translation catalogues (idp/translations), for whoever adds a screen or a text."""

from __future__ import annotations

import click

from idp.cli.main import CommandFailed


@click.group("i18n")
def i18n() -> None:
    """Catalogues de traduction (fr source, en, ar, tr, pt, es)."""


@i18n.command("update")
@click.option("--add", "added", multiple=True, help="Créer le catalogue d'une nouvelle langue (code, ex. « it »).")
def update(added: tuple[str, ...]) -> None:
    """Extraire les textes des gabarits et du code, les fusionner dans chaque langue, compiler, vérifier.

    Les nouveaux textes arrivent vides : « idp i18n check » les liste jusqu'à ce qu'ils soient traduits."""
    from idp.web import catalogues

    template = catalogues.extract()
    catalogues.update(template, sorted({*catalogues.languages(), *added}))
    catalogues.compile_all()
    _report(catalogues.check(template))


@i18n.command("compile")
def compile_() -> None:
    """Compiler les catalogues (.po → .mo)."""
    from idp.web import catalogues

    click.echo("compilé : " + ", ".join(catalogues.compile_all()))


@i18n.command("check")
def check() -> None:
    """Échouer si un texte des gabarits ou du code manque à un catalogue, ou si un .mo n'est pas à jour."""
    from idp.web import catalogues

    _report(catalogues.check())


def _report(report: object) -> None:
    from idp.web.catalogues import Report

    assert isinstance(report, Report)
    for lang, missing in sorted(report.missing.items()):
        click.echo(f"{lang} : {len(missing)} texte(s) à traduire")
        for text in missing[:20]:
            click.echo(f"  - {text[:100]}")
    if report.stale:
        click.echo("à recompiler : " + ", ".join(report.stale))
    if not report.ok:
        raise CommandFailed("catalogues incomplets (traduire dans idp/translations/<langue>/LC_MESSAGES/messages.po "
                            "puis « idp i18n compile »)")
    click.echo("catalogues complets")


COMMANDS = [i18n]
