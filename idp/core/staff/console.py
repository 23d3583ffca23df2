"""The staff console's family work: find a family, show it, help it (letters, unlock, sessions, identifier,
contact corrections). Every entry point takes the caller's ``StaffContext``; a record outside its scope is
``OutOfScope`` (answered 404), whatever the route: the one rule is ``_family`` / ``_person``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from idp.core.accounts.language import in_account_language
from idp.core.accounts.model import AccountState
from idp.core.accounts.service import AccountService
from idp.core.activation import messages
from idp.core.activation.common import FlowKit
from idp.core.activation.errors import FormProblem
from idp.core.activation.matching import mask_e164, parse_phone
from idp.core.activation.provisional import IssuedCredential, ProvisionalCredentials, email_problem
from idp.core.audit import mask_email
from idp.core.authn import throttle
from idp.core.ports import UnitOfWork
from idp.core.staff.errors import OutOfScope
from idp.core.staff.model import Correction, Family, Person, StaffContext
from idp.core.staff.ports import ConsoleStores, InboxStores

SEARCH_LIMIT = 50
QUIET_EVENTS = frozenset({"staff.family_viewed", "staff.search"})
CORRECTABLE = {"mobile_phone": "téléphone portable", "email": "adresse électronique"}


@dataclass(frozen=True)
class CorrectionView:
    """A school correction and whether the register has since taken over."""

    correction: Correction
    superseded: bool


def correction_state(person: Person, correction: Correction) -> bool:
    """True when a register import after the correction carries a value: the register wins (and says so)."""
    current = person.mobile_phone if correction.field == "mobile_phone" else person.email
    imported_after = person.register_updated_at is not None and person.register_updated_at > correction.created_at
    return bool(current) and (current != correction.register_value or imported_after)


class StaffConsole:
    """Family search and help actions, scoped to the caller's schools."""

    def __init__(self, kit: FlowKit, console_store: ConsoleStores, inbox_store: InboxStores,
                 accounts: AccountService, provisional: ProvisionalCredentials) -> None:
        self.kit = kit
        self.store = console_store
        self.inbox_store = inbox_store
        self._accounts = accounts
        self._provisional = provisional

    # --- reading ------------------------------------------------------------------------------------

    def schools(self, ctx: StaffContext) -> list[tuple[str, str]]:
        """(UAI, name) of the caller's schools."""
        with self.kit.uow() as uow:
            return self.store(uow).schools(ctx.scope)

    def classes(self, ctx: StaffContext, uai: str) -> list[str]:
        """The classes of one of the caller's schools."""
        if not ctx.scope.allows(uai):
            raise OutOfScope()
        with self.kit.uow() as uow:
            return self.store(uow).classes(ctx.scope, uai)

    def search(self, ctx: StaffContext, text: str) -> list[Person]:
        """Pupils of the caller's schools matching the text (see ``SqlConsoleStore.search``)."""
        with self.kit.uow() as uow:
            found = self.store(uow).search(ctx.scope, text[:100], SEARCH_LIMIT)
            self.audit(uow, ctx, "staff.search", None, [], {"results": len(found)})
            uow.commit()
        return found

    def family(self, ctx: StaffContext, student_id: int) -> Family:
        """A pupil, their legal representatives, corrections, history and reports; ``OutOfScope`` otherwise."""
        with self.kit.uow() as uow:
            store = self.store(uow)
            student, reps = self._family(uow, ctx, student_id)
            people = [student, *reps]
            accounts = [p.account_id for p in people if p.account_id is not None]
            # Consultations stay in the audit trail (``idp audit``), not in what was done to the family.
            history = [h for h in store.history([p.key for p in people], accounts) if h.event not in QUIET_EVENTS]
            routes = store.routes(accounts)
            counters = uow.throttle.get_many([throttle.keys_for(p.identifier, "").identifier
                                              for p in people if p.identifier])
            locks = {}
            now = self.kit.clock.now()
            for p in people:
                counter = counters.get(throttle.keys_for(p.identifier, "").identifier) if p.identifier else None
                if p.account_id is not None and counter and counter.locked_until and counter.locked_until > now:
                    locks[p.account_id] = counter.locked_until
            inbox = self.inbox_store(uow).items(ctx.scope, student_id=student.id)
            family = Family(student=student, school_name=store.school_name(student.uai), representatives=reps,
                            corrections=store.corrections([r.id for r in reps]), history=history, routes=routes,
                            locks=locks, inbox=inbox)
            self.audit(uow, ctx, "staff.family_viewed", None, [student.key], {"uai": student.uai})
            uow.commit()
        return family

    def _family(self, uow: UnitOfWork, ctx: StaffContext, student_id: int) -> tuple[Person, list[Person]]:
        store = self.store(uow)
        student = store.student(ctx.scope, student_id)
        if student is None:
            raise OutOfScope()
        return student, store.representatives_of(ctx.scope, student_id)

    def _person(self, uow: UnitOfWork, ctx: StaffContext, student_id: int, kind: str, person_id: int) -> Person:
        """The pupil, or one of their legal representatives, in scope; ``OutOfScope`` for anything else."""
        student, reps = self._family(uow, ctx, student_id)
        for person in (student, *reps):
            if person.kind == kind and person.id == person_id:
                return person
        raise OutOfScope()

    def corrections(self, family: Family) -> dict[int, list[CorrectionView]]:
        """Each representative's corrections, with whether a later register import took over."""
        by_rep = {r.id: r for r in family.representatives}
        out: dict[int, list[CorrectionView]] = {}
        for c in family.corrections:
            out.setdefault(c.representative_id, []).append(CorrectionView(c, correction_state(by_rep[c.representative_id], c)))
        return out

    # --- help actions -------------------------------------------------------------------------------

    def reissue_letter(self, ctx: StaffContext, student_id: int, kind: str, person_id: int) -> list[IssuedCredential]:
        """New provisional credentials for one pupil or one legal representative (the printable letter)."""
        with self.kit.uow() as uow:
            person = self._person(uow, ctx, student_id, kind, person_id)
            student = self.store(uow).student(ctx.scope, student_id)
        if person.account_state not in ("none", AccountState.PROVISIONAL.value):
            raise FormProblem(["Ce compte est déjà activé : renvoyez plutôt l'identifiant ou invitez la personne à "
                               "utiliser « Mot de passe oublié »."])
        assert student is not None
        actor = f"staff:{ctx.member.id}"
        if kind == "student":
            report = self._provisional.issue(student.uai, ine=student.ine, actor=actor)
        else:
            report = self._provisional.issue(student.uai, ine=student.ine, actor=actor,
                                             only_representative=(person.uai, person.external_id))
        with self.kit.uow() as uow:
            self.audit(uow, ctx, "staff.letter_issued", None, [person.key], {"uai": person.uai,
                                                                          "letters": len(report.issued)})
            uow.commit()
        return report.issued

    def unlock(self, ctx: StaffContext, student_id: int, kind: str, person_id: int) -> None:
        """Unlock the account (locked by the helpdesk or by failed logins)."""
        person = self._account_person(ctx, student_id, kind, person_id)
        self._accounts.unlock(person.identifier, actor=f"staff:{ctx.member.id}")
        self._done(ctx, "staff.unlocked", person, {})

    def end_sessions(self, ctx: StaffContext, student_id: int, kind: str, person_id: int) -> int:
        """End every SSO session of the account (single logout hooks run as for a logout)."""
        person = self._account_person(ctx, student_id, kind, person_id)
        assert person.account_id is not None
        with self.kit.uow() as uow:
            ended = uow.sessions.end_all(person.account_id, self.kit.clock.now())
            self.audit(uow, ctx, "staff.sessions_ended", person.account_id, [person.key], {"sessions": len(ended)})
            uow.commit()
        self.kit.logout_hooks.run(ended)
        return len(ended)

    def resend_identifier(self, ctx: StaffContext, student_id: int, kind: str, person_id: int) -> str:
        """Send the identifier to the account's verified contact, else the school's correction, else the
        register's; returns where it went (masked) or raises ``FormProblem`` when there is nowhere."""
        person = self._account_person(ctx, student_id, kind, person_id)
        kit = self.kit
        with kit.uow() as uow:
            account = uow.accounts.get(person.account_id or 0)
            assert account is not None
            with in_account_language(kit.catalogues, account):  # the family's language, not the console's
                text = messages.identifiers(kit.product, [(account.identifier, account.profile.label)])
                subject = messages.identifiers_subject(kit.product)
            channel, destination = self._destination(uow, account, person)
            if not destination:
                raise FormProblem(["Aucun téléphone portable ni adresse électronique connu pour ce compte : "
                                   "remettez l'identifiant en main propre ou enregistrez une correction."])
            from idp.core.activation.model import Channel

            sent = kit.queue(uow, kit.stores(uow), Channel(channel), destination, text, purpose="staff_identifier",
                             subject=subject)
            shown = mask_e164(destination) if channel == "sms" else mask_email(destination)
            self.audit(uow, ctx, "staff.identifier_sent", account.id, [person.key],
                       {"channel": channel, "to": shown, "sent": sent})
            uow.commit()
        kit.wake()
        if not sent:
            raise FormProblem(["Trop de messages envoyés à ce destinataire aujourd'hui : réessayez demain."])
        return shown

    def _destination(self, uow: UnitOfWork, account: Any, person: Person) -> tuple[str, str]:
        if account.phone_verified and account.phone:
            return "sms", account.phone
        if account.email_verified and account.email:
            return "mail", account.email
        if person.kind == "rep":
            for c in self.store(uow).corrections([person.id]):
                if not correction_state(person, c):
                    phone = parse_phone(c.value, self.kit.limits.default_region) if c.field == "mobile_phone" else None
                    return ("sms", phone or "") if c.field == "mobile_phone" else ("mail", c.value)
            phone = parse_phone(person.mobile_phone, self.kit.limits.default_region) if person.mobile_phone else None
            if phone:
                return "sms", phone
            if person.email:
                return "mail", person.email
        return "", ""

    def correct_contact(self, ctx: StaffContext, student_id: int, person_id: int, field: str, value: str) -> None:
        """Record a corrected mobile number or address for a legal representative, apart from the register."""
        if field not in CORRECTABLE:
            raise FormProblem(["Choisissez le téléphone portable ou l'adresse électronique."])
        value = value.strip()
        if field == "mobile_phone":
            parsed = parse_phone(value, self.kit.limits.default_region)
            if parsed is None:
                raise FormProblem(["Ce numéro de téléphone portable n'est pas valide (exemple : 06 12 34 56 78)."])
            value = parsed
        elif problem := email_problem(value):
            raise FormProblem([problem])
        with self.kit.uow() as uow:
            person = self._person(uow, ctx, student_id, "rep", person_id)
            register_value = person.mobile_phone if field == "mobile_phone" else person.email
            self.store(uow).add_correction(person.id, field, value, register_value, ctx.member.id,
                                           self.kit.clock.now())
            shown = mask_e164(value) if field == "mobile_phone" else mask_email(value)
            self.audit(uow, ctx, "staff.contact_corrected", person.account_id, [person.key],
                       {"field": field, "value": shown, "uai": person.uai})
            uow.commit()

    def _account_person(self, ctx: StaffContext, student_id: int, kind: str, person_id: int) -> Person:
        with self.kit.uow() as uow:
            person = self._person(uow, ctx, student_id, kind, person_id)
        if person.account_id is None:
            raise FormProblem(["Cette personne n'a pas encore de compte."])
        return person

    def _done(self, ctx: StaffContext, event: str, person: Person, details: dict[str, Any]) -> None:
        with self.kit.uow() as uow:
            self.audit(uow, ctx, event, person.account_id, [person.key], {"uai": person.uai, **details})
            uow.commit()

    def audit(self, uow: UnitOfWork, ctx: StaffContext, event: str, account_id: int | None, records: list[str],
              details: dict[str, Any], ip: str = "") -> None:
        """A staff action in the audit trail: who (``staff``), what (event, records), when (the clock)."""
        self.kit.audit(uow, event, account_id, "", {"staff": ctx.member.id, "about": records, **details}, ip)

    def now(self) -> dt.datetime:
        """The console's clock (funnel months, campaigns)."""
        return self.kit.clock.now()
