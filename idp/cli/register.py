"""``idp import csv|siecle`` and ``idp purge``: load the school register, purge what has expired."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click

from idp.cli.main import CliContext, pass_ctx
from idp.core.register import validation
from idp.core.register.csv_format import FILE_NAMES, read_csv
from idp.core.register.records import ImportReport, Kind, Parsed
from idp.core.register.siecle import SiecleExport
from idp.errors import RegisterImportError

_FILE = click.Path(dir_okay=False, path_type=Path)
_OPTION_KINDS = {"etablissements": Kind.SCHOOL, "eleves": Kind.STUDENT, "responsables": Kind.REPRESENTATIVE,
                 "liens": Kind.LINK}


def _common(command: Callable[..., Any]) -> Callable[..., Any]:
    options = (
        click.option("--skip-invalid", is_flag=True,
                     help="Ignorer les lignes invalides (elles sont signalées) et importer les autres."),
        click.option("--dry-run", is_flag=True, help="Tout vérifier et compter, sans rien écrire."),
        click.option("--uai", "uais", multiple=True, metavar="UAI",
                     help="Établissement couvert par l'import même s'il n'a plus aucune ligne (répétable) : "
                          "ses élèves et responsables absents deviennent partants."),
    )
    for option in reversed(options):
        command = option(command)
    return command


@click.group("import")
def import_group() -> None:
    """Importer le registre : élèves, responsables légaux et liens (CSV documenté ou exports SIECLE)."""


@import_group.command("csv")
@click.argument("repertoire", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--etablissements", type=_FILE, metavar="FICHIER",
              help="etablissements.csv : uai;nom;type;academie;commune")
@click.option("--eleves", type=_FILE, metavar="FICHIER",
              help="eleves.csv : ine;uai;nom;prenoms;date_naissance;classe;niveau;code_postal[;id_siecle]")
@click.option("--responsables", type=_FILE, metavar="FICHIER",
              help="responsables.csv : uai;id_responsable;nom;prenoms;telephone_portable;courriel;code_postal")
@click.option("--liens", type=_FILE, metavar="FICHIER",
              help="liens.csv : ine;uai;id_responsable;lien;responsable_legal")
@_common
@pass_ctx
def import_csv(ctx: CliContext, /, repertoire: Path | None, skip_invalid: bool, dry_run: bool,
               uais: tuple[str, ...], **files: Path | None) -> ImportReport:
    """Importer des fichiers CSV (docs/register-format.md) ; REPERTOIRE peut contenir les quatre fichiers.

    Un fichier invalide n'importe rien (code de sortie 1) sauf avec --skip-invalid. Réimporter le même
    fichier ne change rien ; les personnes absentes d'un établissement importé deviennent partantes.
    """
    paths = _csv_paths(repertoire, files)
    today = ctx.services.clock.now().date()
    sources: dict[Kind, Iterable[Parsed]] = {kind: read_csv(path, kind, today) for kind, path in paths.items()}
    return _run(ctx, sources, {kind: path.name for kind, path in paths.items()}, uais, skip_invalid, dry_run)


@import_group.command("siecle")
@click.option("--eleves", type=_FILE, metavar="FICHIER", required=True,
              help="Export SIECLE ElevesSansAdresses.xml (un établissement).")
@click.option("--responsables", type=_FILE, metavar="FICHIER",
              help="Export SIECLE ResponsablesAvecAdresses.xml du même établissement.")
@click.option("--etablissements", type=_FILE, metavar="FICHIER",
              help="etablissements.csv, si l'établissement n'est pas encore dans la base.")
@_common
@pass_ctx
def import_siecle(ctx: CliContext, eleves: Path, responsables: Path | None, etablissements: Path | None,
                  skip_invalid: bool, dry_run: bool, uais: tuple[str, ...]) -> ImportReport:
    """Importer les exports XML SIECLE (BEE) d'un établissement : élèves, responsables et liens."""
    for path in (eleves, responsables, etablissements):
        _must_exist(path)
    today = ctx.services.clock.now().date()
    export = SiecleExport(eleves, responsables, today)
    sources: dict[Kind, Iterable[Parsed]] = {Kind.STUDENT: export.students()}
    names = {Kind.STUDENT: eleves.name}
    if etablissements is not None:
        sources[Kind.SCHOOL] = read_csv(etablissements, Kind.SCHOOL, today)
        names[Kind.SCHOOL] = etablissements.name
    if responsables is not None:
        sources[Kind.REPRESENTATIVE], sources[Kind.LINK] = export.representatives(), export.links()
        names[Kind.REPRESENTATIVE] = names[Kind.LINK] = responsables.name
    return _run(ctx, sources, names, uais, skip_invalid, dry_run)


@click.command("purge")
@pass_ctx
def purge(ctx: CliContext) -> None:
    """Purger les données personnelles des partants depuis plus de [register] purge_after_days jours
    (92 par défaut), effacer les comptes fermés sans fiche restante, supprimer les compteurs, demandes et
    sessions expirés. Sans danger si relancé."""
    from idp.storage.purge import SqlPurge

    services = ctx.services
    report = SqlPurge(services.db).run(services.clock.now(), ctx.settings.register.purge_after_days)
    labels = {"students": "élèves purgés", "representatives": "responsables purgés", "links": "liens supprimés",
              "accounts": "comptes effacés", "throttle_counters": "compteurs de tentatives supprimés",
              "authn_requests": "demandes de connexion expirées supprimées", "sso_sessions": "sessions supprimées",
              "protocol_state": "jetons, tickets et requêtes SAML/OIDC/CAS expirés supprimés",
              "activation_state": "transactions, codes et messages d'activation expirés supprimés"}
    click.echo("Purge terminée :")
    for name, label in labels.items():
        click.echo(f"  {label} : {getattr(report, name)}")


def _must_exist(path: Path | None) -> None:
    if path is not None and not path.is_file():
        raise RegisterImportError(f"fichier introuvable : {path}")


def _csv_paths(directory: Path | None, files: dict[str, Path | None]) -> dict[Kind, Path]:
    paths: dict[Kind, Path] = {}
    if directory is not None:
        if not directory.is_dir():
            raise RegisterImportError(f"répertoire introuvable : {directory}")
        paths = {kind: directory / name for kind, name in FILE_NAMES.items() if (directory / name).is_file()}
    for option, path in files.items():
        if path is not None:
            _must_exist(path)
            paths[_OPTION_KINDS[option]] = path
    if not paths:
        raise RegisterImportError("aucun fichier à importer (donnez un répertoire ou --etablissements, --eleves, "
                                  "--responsables, --liens)")
    return dict(sorted(paths.items(), key=lambda item: list(Kind).index(item[0])))


def _run(ctx: CliContext, sources: dict[Kind, Iterable[Parsed]], names: dict[Kind, str], uais: tuple[str, ...],
         skip_invalid: bool, dry_run: bool) -> ImportReport:
    from idp.storage.register import ImportRequest, SqlRegisterImport

    checked = []
    for uai in uais:
        try:
            checked.append(validation.uai(uai))
        except validation.Invalid as exc:
            raise RegisterImportError(f"--uai : {exc}") from None
    request = ImportRequest(sources, names, tuple(checked), skip_invalid, dry_run)
    services = ctx.services
    report = SqlRegisterImport(services.db, ctx.settings.register.batch_size).run(request, services.clock.now())
    _print_errors(report, skip_invalid)
    if report.applied or (dry_run and not report.has_fatal and (skip_invalid or not report.error_total)):
        if report.applied and not dry_run:
            _key_names(services)
        _print_summary(report, sources)
        return report
    if report.has_fatal:
        raise RegisterImportError("fichier illisible : rien n'a été importé.")
    raise RegisterImportError(f"{report.error_total} ligne(s) invalide(s) : rien n'a été importé "
                              "(corrigez-les, ou relancez avec --skip-invalid pour les ignorer).")


def _key_names(services: Any) -> None:
    """The comparison forms of the representatives' names, for federation matching, kept up to date here."""
    from sqlalchemy.exc import IntegrityError

    from idp.storage.federation_store import SqlFederationStore

    try:
        with services.uow() as uow:
            SqlFederationStore(uow.session).sync_name_keys()
            uow.commit()
    except IntegrityError:  # a login keyed the same rows meanwhile: the lookups finish the job lazily
        pass


def _print_errors(report: ImportReport, skip_invalid: bool) -> None:
    for error in report.errors:
        where = f"{error.file}:{error.line}" if error.line else error.file
        prefix = "ligne ignorée, " if skip_invalid and not error.fatal else ""
        click.echo(f"{where}: {prefix}{error.reason}", err=True)
    hidden = report.error_total - len(report.errors)
    if hidden > 0:
        click.echo(f"… et {hidden} autre(s) erreur(s), {report.error_total} au total.", err=True)


def _print_summary(report: ImportReport, sources: dict[Kind, Iterable[Parsed]]) -> None:
    seconds = f"{report.seconds:.1f}".replace(".", ",")
    if report.dry_run:
        click.echo(f"Vérification terminée en {seconds} s (--dry-run) : rien n'a été écrit. L'import ferait :")
    else:
        click.echo(f"Import terminé en {seconds} s.")
    for kind in Kind:
        if kind in sources:
            c = report.counts[kind]
            people = f"  partants {c.leaving:>7}  revenus {c.returned:>7}" if kind is not Kind.SCHOOL else ""
            rejected = f"  rejetés {c.invalid:>7}" if c.invalid else ""
            click.echo(f"  {kind.label:<16} ajoutés {c.added:>7}  modifiés {c.updated:>7}  "
                       f"inchangés {c.unchanged:>7}{people}{rejected}")


COMMANDS = [import_group, purge]
