"""The school's side beyond one family: the inbox (and the families' requests for help), the activation funnel
per school and class, and campaigns (forced password change, sessions ended) — all scoped to the caller."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections import defaultdict
from typing import Any

from idp.core.activation.common import FlowKit
from idp.core.activation.errors import FormProblem, SendLimited
from idp.core.activation.matching import name_problem
from idp.core.i18n import _, current_language
from idp.core.staff.console import StaffConsole
from idp.core.staff.errors import OutOfScope, ReferentOnly
from idp.core.staff.model import CampaignTarget, FunnelRow, InboxItem, StaffContext

INBOX_KINDS = {"wrong_link": "Lien contesté", "birthdate": "Dates de naissance refusées",
               "help_request": "Demande d'aide"}
ROUTES = ("sms", "letter", "franceconnect")
_REFERENCE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def month_start(now: dt.datetime) -> dt.datetime:
    """The first instant of the current month (UTC): "logged in this month"."""
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


class SchoolDesk:
    """Inbox, funnel and campaigns of the console."""

    def __init__(self, console: StaffConsole, kit: FlowKit, help_requests_per_hour: int) -> None:
        self.console = console
        self.kit = kit
        self._per_hour = help_requests_per_hour

    # --- requests for help (families, no login) -----------------------------------------------------

    def schools(self) -> list[tuple[str, str]]:
        """Every school of the register, for the families' form."""
        with self.kit.uow() as uow:
            return self.console.store(uow).schools(None)

    def request_help(self, uai: str, family_name: str, given_names: str, children: str, contact: str,
                     message: str, context: str, ip: str) -> str:
        """Store a family's request for help in its school's inbox; returns the reference shown to the parent."""
        fields = {field: problem for field, problem in (("nom", name_problem(family_name, "nom")),
                                                         ("prenom", name_problem(given_names, "prénom"))) if problem}
        if not children.strip():
            fields["enfants"] = _("Indiquez le nom, le prénom et la classe de vos enfants.")
        if len(contact.strip()) < 6:
            fields["contact"] = _("Indiquez un numéro de téléphone ou une adresse électronique où l'établissement "
                                  "peut vous répondre.")
        too_long = len(children) > 1000 or len(message) > 2000 or len(contact) > 254
        kit = self.kit
        with kit.uow() as uow:
            inbox = self.console.inbox_store(uow)
            if not inbox.school_exists(uai):
                fields["uai"] = _("Choisissez l'établissement de vos enfants dans la liste.")
            if fields or too_long:
                raise FormProblem([_("Votre message est trop long : résumez-le.")] if too_long else [], fields)
            ip_key = hashlib.sha256(f"help\0{ip}".encode()).hexdigest()
            now = kit.clock.now()
            if inbox.count_help_requests(ip_key, now - dt.timedelta(hours=1)) >= self._per_hour:
                raise SendLimited(3600, _("Vous avez déjà envoyé plusieurs demandes : l'établissement vous "
                                          "répondra. Réessayez dans une heure si besoin."))
            reference = "AIDE-" + "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(8))
            # The page's language is kept with the request: the school answers in the language it was typed in.
            inbox.add_help_request(reference, uai, family_name.strip(), given_names.strip(), children.strip(),
                                   contact.strip(), message.strip(), context[:40], ip_key, now,
                                   language=current_language())
            kit.audit(uow, "help.requested", None, "", {"uai": uai, "reference": reference, "context": context[:40]},
                      ip)
            uow.commit()
        return reference

    # --- the inbox ----------------------------------------------------------------------------------

    def inbox(self, ctx: StaffContext, uai: str = "", status: str = "new") -> list[InboxItem]:
        """Items of the caller's schools (one school if given: it must be in scope), new or handled."""
        if uai and not ctx.scope.allows(uai):
            raise OutOfScope()
        with self.kit.uow() as uow:
            items = self.console.inbox_store(uow).items(ctx.scope, uai)
        return [i for i in items if not status or i.status == status]

    def handle(self, ctx: StaffContext, kind: str, item_id: int) -> InboxItem:
        """Mark an item handled (once); ``OutOfScope`` for an item of another school or an unknown one."""
        with self.kit.uow() as uow:
            inbox = self.console.inbox_store(uow)
            item = next((i for i in inbox.items(ctx.scope) if i.kind == kind and i.id == item_id), None)
            if item is None:
                raise OutOfScope()
            if inbox.mark_handled(kind, item_id, ctx.member.id, self.kit.clock.now()):
                records = [f"student:{item.student_id}"] if item.student_id else []
                self.console.audit(uow, ctx, "staff.inbox_handled", None, records,
                                   {"kind": kind, "item": item_id, "uai": item.uai})
            uow.commit()
        return item

    # --- the funnel ---------------------------------------------------------------------------------

    def funnel(self, ctx: StaffContext, uai: str) -> list[FunnelRow]:
        """The school's line then one per class, pupils then legal representatives (a representative of
        children in two classes counts in both classes, once for the school)."""
        if not ctx.scope.allows(uai):
            raise OutOfScope()
        with self.kit.uow() as uow:
            if not self.console.inbox_store(uow).school_exists(uai):
                raise OutOfScope()
            rows = self.console.inbox_store(uow).funnel_rows(ctx.scope, uai)
            routes = self.console.store(uow).routes(sorted({r[3] for r in rows if r[3] is not None}))
            name = self.console.store(uow).school_name(uai)
        since = month_start(self.kit.clock.now())
        groups: dict[tuple[str, str], dict[int, tuple[int | None, str, Any]]] = defaultdict(dict)
        for class_code, profile, record_id, account_id, state, last in rows:
            groups[("", profile)][record_id] = (account_id, state, last)
            groups[(class_code or "—", profile)][record_id] = (account_id, state, last)
        out = []
        for (label, profile), members in sorted(groups.items(), key=lambda g: (g[0][0] != "", g[0][0],
                                                                               g[0][1] != "student")):
            out.append(self._row(label or name, profile, members, routes, since))
        return out

    @staticmethod
    def _row(label: str, profile: str, members: dict[int, tuple[int | None, str, Any]], routes: dict[int, str],
             since: dt.datetime) -> FunnelRow:
        accounts = [(a, s, last) for a, s, last in members.values() if a is not None and s != "closed"]
        activated = [(a, s, last) for a, s, last in accounts if s in ("active", "locked")]
        by_route = {r: sum(1 for a, _, _ in activated if routes.get(a) == r) for r in ROUTES}
        return FunnelRow(label=label, profile=profile, in_register=len(members), with_account=len(accounts),
                         activated=len(activated),
                         logged_in_this_month=sum(1 for _, _, last in accounts if last is not None and last >= since),
                         by_route=by_route)

    # --- campaigns ----------------------------------------------------------------------------------

    def check_campaigns(self, ctx: StaffContext, uai: str) -> None:
        """Campaigns of a school: 404 outside the caller's schools, 403 for its secrétariat."""
        if not ctx.scope.allows(uai):
            raise OutOfScope()
        if not ctx.scope.leads(uai):
            raise ReferentOnly()

    def campaign_population(self, ctx: StaffContext, target: CampaignTarget) -> list[int]:
        """The accounts a campaign would touch (shown as a count before it runs)."""
        self.check_campaigns(ctx, target.uai)
        if target.profile not in ("", "student", "parent"):
            raise OutOfScope()
        with self.kit.uow() as uow:
            return self.console.store(uow).campaign_accounts(ctx.scope, target.uai, target.class_code, target.profile)

    def run_campaign(self, ctx: StaffContext, target: CampaignTarget, *, force_change: bool, end_sessions: bool,
                     expected: int) -> tuple[int, int]:
        """Force a password change at next login and/or end every session of the population; refuses when the
        population changed since it was shown. Returns (accounts flagged, sessions ended)."""
        if not (force_change or end_sessions):
            raise FormProblem(["Choisissez au moins une action : changement de mot de passe ou fin des sessions."])
        accounts = self.campaign_population(ctx, target)
        if len(accounts) != expected:
            raise FormProblem([f"La population a changé ({len(accounts)} comptes au lieu de {expected}) : "
                               "vérifiez-la de nouveau avant de lancer la campagne."])
        ended: list[Any] = []
        kit = self.kit
        with kit.uow() as uow:
            flagged = self.console.store(uow).force_password_change(accounts) if force_change else 0
            if end_sessions:
                now = kit.clock.now()
                for account_id in accounts:
                    ended.extend(uow.sessions.end_all(account_id, now))
            self.console.audit(uow, ctx, "staff.campaign", None, [],
                               {"uai": target.uai, "class": target.class_code, "profile": target.profile,
                                "accounts": len(accounts), "password_change": flagged,
                                "sessions_ended": len(ended)})
            uow.commit()
        kit.logout_hooks.run(ended)
        return flagged, len(ended)

