"""``idp audit``: read the audit trail (logins, activations, staff actions…) with filters."""

from __future__ import annotations

import datetime as dt
import json

import click

from idp.cli.main import CliContext, pass_ctx
from idp.storage.audit_query import AuditFilter, read_audit


def _date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"date invalide : {value} (AAAA-MM-JJ ou AAAA-MM-JJTHH:MM)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@click.command("audit")
@click.option("--account", default="", help="Identifiant d'un compte (p.nomNN).")
@click.option("--school", default="", help="UAI : événements de cet établissement, de ses élèves et responsables.")
@click.option("--event", default="", help="Nom d'événement (login.failure) ou préfixe terminé par « . » ou « * » (staff.).")
@click.option("--since", default=None, help="Depuis (AAAA-MM-JJ[THH:MM], UTC).")
@click.option("--until", default=None, help="Jusqu'à, exclu (AAAA-MM-JJ[THH:MM], UTC).")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 100000))
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table lisible, ou une ligne JSON par événement.")
@pass_ctx
def audit(ctx: CliContext, account: str, school: str, event: str, since: str | None, until: str | None, limit: int,
          output: str) -> None:
    """Lire le journal d'audit (les plus récents, dans l'ordre chronologique)."""
    wanted = AuditFilter(account=account, school=school, event=event, since=_date(since), until=_date(until),
                         limit=limit)
    with ctx.services.db.sessionmaker() as session:
        events = read_audit(session, wanted)
    for e in events:
        if output == "json":
            click.echo(json.dumps({**e, "at": e["at"].isoformat()}, ensure_ascii=False))
        else:
            details = " ".join(f"{k}={v}" for k, v in e["details"].items())
            click.echo(f"{e['at']:%Y-%m-%d %H:%M:%S}  {e['event']:<32} {str(e['account']):<20} {e['ip']:<15} {details}")
    click.echo(f"{len(events)} événement(s)", err=True)


COMMANDS: list[click.Command] = [audit]
