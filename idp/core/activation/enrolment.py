"""Parent self-enrolment by SMS ("Je n'ai pas de compte"), as a server-side state machine.

    start (names + mobile) ── code_sent ── code ──► code_verified ── children ──► children_ok ── password ──► done
                                  │                     └──► existing (the parent already has an account)
                                  └── 5 wrong codes / 3 wrong birth dates / all links refused ──► cancelled

The first step answers the same whatever the register says (SECURITY A01): a transaction and a code are made
in every case, the SMS is queued only when a representative matches, and sent after the answer. The account is
created in one transaction with the claim of every matching register record (``WHERE account_id IS NULL``):
two browsers finishing at once make exactly one account (A10).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from idp import metrics
from idp.core.accounts.model import AccountState, NewAccount, Profile
from idp.core.accounts.service import AccountService
from idp.core.activation import events, messages
from idp.core.activation.common import Completion, FlowKit
from idp.core.activation.dates import date_of
from idp.core.activation.errors import (
    AlreadyActivated,
    FlowExpired,
    FormProblem,
    StepNotAllowed,
    TooManyAttempts,
)
from idp.core.activation.matching import (
    mask_e164,
    mobile_problem,
    name_problem,
    names_match,
    parse_phone,
    register_forms,
    sms_destination,
)
from idp.core.activation.model import Channel, ChildRecord, RepresentativeRecord, Transaction, TxKind, TxState
from idp.core.activation.ports import ActivationStore
from idp.core.authn.flow import AuthnFlow, browser_hash
from idp.core.authn.model import AuthMethod
from idp.core.i18n import N_, _, ngettext
from idp.core.passwords.hashing import PasswordHasher
from idp.core.passwords.policy import MSG_MISMATCH, NO_CONTEXT, PasswordContext
from idp.core.ports import UnitOfWork
from idp.errors import IdentifierTaken, IdpError, PasswordRejected

KIND = TxKind.PARENT_SMS.value
DATES_PROBLEM = N_("Les dates de naissance saisies ne correspondent pas aux informations de l'établissement.")


@dataclass(frozen=True)
class ChildView:
    """A child as the "Je confirme mon lien avec l'élève" step shows it."""

    index: int
    name: str
    school: str


@dataclass(frozen=True)
class ChildAnswer:
    """What the parent said about one child: legal representative or not, and the birth date typed."""

    is_representative: bool | None
    birth_date: dt.date | None
    #: Why the date typed cannot be read (``idp.core.activation.dates.read_date``), "" when it can.
    date_problem: str = ""


@dataclass(frozen=True)
class EnrolmentView:
    """Everything the pages of the flow show; never anything the register would reveal before the code."""

    state: TxState
    masked_phone: str
    request_id: str
    resend_wait: int
    sends_left: int
    delivery_problem: bool
    children: list[ChildView] = field(default_factory=list)
    identifier: str = ""
    cancel_reason: str = ""
    failures_left: int = 0
    #: The SMS could not be handed to the gateway yet and waits for another attempt (the page says "delayed").
    delivery_delayed: bool = False
    #: At the password step: what the new password must not contain (names, children, identifier, years).
    avoid: PasswordContext = NO_CONTEXT


class ParentEnrolment:
    """The SMS self-enrolment of legal representatives.

    The federation route (``idp.core.federation.enrolment``) reuses these steps with its own transaction
    kind and session method, and links the upstream identity in ``_after_create``.
    """

    kind: str = KIND
    auth_method: AuthMethod = AuthMethod.SMS
    #: The SMS route stops once the code shows an account exists ("connectez-vous"); federation goes on.
    stop_at_existing: bool = True

    def __init__(self, kit: FlowKit, accounts: AccountService, hasher: PasswordHasher, flow: AuthnFlow) -> None:
        self.kit = kit
        self._accounts = accounts
        self._hasher = hasher
        self._flow = flow

    # --- step 1 -----------------------------------------------------------------------------------

    @metrics.activation_step("sms", "start")
    def start(self, family_name: str, given_name: str, phone: str, *, ip: str, browser_id: str,
              request_id: str = "") -> tuple[str, str]:
        """Search the register and send a code to the number it holds; returns (token, typed number masked)."""
        problems = {"nom": name_problem(family_name, "nom"), "prenom": name_problem(given_name, "prénom"),
                    "telephone": mobile_problem(phone, self.kit.limits.default_region)}
        typed = parse_phone(phone, self.kit.limits.default_region)
        if any(problems.values()) or typed is None:
            raise FormProblem([], {field: text for field, text in problems.items() if text})
        kit = self.kit
        with kit.uow() as uow:
            store = kit.stores(uow)
            kit.check_starts(store, ip, (self.kind,))
            matched = self._match(store, family_name, given_name, typed)
            destination = self._destination(matched)
            pending = self._pending_request(uow, request_id, browser_id)
            token, tx = kit.new_transaction(
                store, self.kind, browser_id, ip, request_id=pending, channel=Channel.SMS.value,
                destination=destination or "",
                data={"typed_phone": mask_e164(typed), "reps": [r.id for r in matched]})
            text = messages.activation_code
            sent = kit.send_code(uow, store, tx, purpose=self.kind, channel=Channel.SMS, destination=destination,
                                 limit_key_value=typed, text_for=lambda c, m: text(kit.product, c, m))
            kit.audit(uow, events.ACTIVATION_STARTED, None, "", {"matched": len(matched), "sms": sent,
                                                                 "about": [f"rep:{r.id}" for r in matched]}, ip)
            # The staff console's "number typed does not match the register" (staff only); looked up whether
            # or not the number matched, so the answer's timing tells nothing (A01).
            named = [r for r in store.representatives_by_name(family_name) if
                     names_match(family_name, given_name, r.family_name, r.given_names)]
            if named and not matched:
                kit.audit(uow, events.ACTIVATION_PHONE_MISMATCH, None, "",
                          {"typed": mask_e164(typed), "about": [f"rep:{r.id}" for r in named]}, ip)
            uow.commit()
        kit.wake()
        return token, mask_e164(typed)

    def _match(self, store: ActivationStore, family: str, given: str, typed: str) -> list[RepresentativeRecord]:
        found: dict[int, RepresentativeRecord] = {}
        for form in register_forms(typed):
            for record in store.representatives_by_phone(form):
                if names_match(family, given, record.family_name, record.given_names):
                    found[record.id] = record
        return sorted(found.values(), key=lambda r: r.id)

    def _destination(self, matched: list[RepresentativeRecord]) -> str | None:
        for record in matched:
            dest = sms_destination(record.mobile_phone, self.kit.limits.allowed_regions)
            if dest:
                return dest
        return None

    def _pending_request(self, uow: UnitOfWork, request_id: str, browser_id: str) -> str:
        if not request_id or len(request_id) > 64:
            return ""
        request = uow.authn_requests.get(request_id, browser_hash(browser_id))
        if request is None or request.completed_at is not None:
            return ""
        if request.expires_at is not None and self.kit.clock.now() >= request.expires_at:
            return ""
        return request.id

    # --- views and resend -------------------------------------------------------------------------

    def view(self, token: str | None, browser_id: str) -> EnrolmentView:
        """The state of the flow, for the page of its current step."""
        kit = self.kit
        with kit.uow() as uow:
            store = kit.stores(uow)
            tx = kit.load(store, token, browser_id, self.kind)
            identifier = ""
            avoid = NO_CONTEXT
            if tx.state in (TxState.EXISTING, TxState.DONE):
                account_id = tx.account_id or tx.data.get("existing_account")
                account = uow.accounts.get(int(account_id)) if account_id else None
                identifier = account.identifier if account else ""
            elif tx.state is TxState.CHILDREN_OK:
                # Shown only to whoever proved the code and the birth dates: the identifier reserved for the account.
                identifier = tx.reserved_identifier
                avoid = self._context(store, tx, self._records(store, tx))
            problem = tx.state is TxState.CODE_SENT and kit.delivery_problem(store, tx, Channel.SMS)
            delayed = tx.state is TxState.CODE_SENT and not problem and kit.delivery_delayed(store, tx)
        children = [ChildView(i, c["name"], c["school"]) for i, c in enumerate(tx.data.get("children", []))]
        return EnrolmentView(
            state=tx.state, masked_phone=tx.data.get("typed_phone", ""), request_id=tx.request_id,
            resend_wait=kit.resend_wait(tx), sends_left=max(0, kit.limits.sends_per_transaction - tx.sends),
            delivery_problem=problem, children=children, identifier=identifier,
            cancel_reason=tx.data.get("cancel_reason", ""),
            failures_left=kit.limits.birthdate_failures - tx.failures, delivery_delayed=delayed, avoid=avoid)

    @metrics.activation_step("sms", "resend")
    def resend(self, token: str | None, browser_id: str) -> None:
        """"Renvoyer le SMS": a new code replaces the old one, within the limits (A03, A05)."""
        kit = self.kit
        with kit.uow() as uow:
            store = kit.stores(uow)
            tx = kit.load(store, token, browser_id, self.kind)
            if tx.state is not TxState.CODE_SENT:
                raise StepNotAllowed()
            text = messages.activation_code
            kit.send_code(uow, store, tx, purpose=self.kind, channel=Channel.SMS, destination=tx.destination or None,
                          limit_key_value=tx.data.get("typed_phone", ""),
                          text_for=lambda c, m: text(kit.product, c, m))
            uow.commit()
        kit.wake()

    # --- step 2: the code -------------------------------------------------------------------------

    @metrics.activation_step("sms", "code")
    def verify_code(self, token: str | None, browser_id: str, code: str) -> TxState:
        """Check the SMS code; then list the children, or say that an account already exists."""
        kit = self.kit
        with kit.uow() as uow:
            store = kit.stores(uow)
            tx = kit.load(store, token, browser_id, self.kind)
            if tx.state is not TxState.CODE_SENT:
                raise StepNotAllowed()
            kit.check_code(uow, store, tx, code)
            reps = self._records(store, tx)
            now = kit.clock.now()
            existing = next((r.account_id for r in reps if r.account_id is not None), None)
            if not reps:
                kit.cancel(uow, store, tx, "no_record")
                return TxState.CANCELLED
            if existing is not None and self.stop_at_existing:
                store.move(tx.id, [TxState.CODE_SENT], TxState.EXISTING, now,
                           data={**tx.data, "existing_account": existing})
                kit.audit(uow, events.ACTIVATION_EXISTING, existing, "", {})
                uow.commit()
                return TxState.EXISTING
            children = self._children(store, reps)
            if not children:
                kit.cancel(uow, store, tx, "no_child")
                return TxState.CANCELLED
            listed = [{"student": c.student_id, "rep": c.representative_id, "name": f"{c.given_names} {c.family_name}",
                       "school": c.school} for c in children]
            store.move(tx.id, [TxState.CODE_SENT], TxState.CODE_VERIFIED, now, data={**tx.data, "children": listed})
            kit.audit(uow, events.ACTIVATION_CODE_VERIFIED, None, "", {"children": len(children)})
            uow.commit()
        return TxState.CODE_VERIFIED

    def _records(self, store: ActivationStore, tx: Transaction) -> list[RepresentativeRecord]:
        wanted = set(tx.data.get("reps", []))
        if not wanted or not tx.destination:
            return []
        found: dict[int, RepresentativeRecord] = {}
        for form in register_forms(tx.destination):
            for record in store.representatives_by_phone(form):
                if record.id in wanted:
                    found[record.id] = record
        return sorted(found.values(), key=lambda r: r.id)

    def _children(self, store: ActivationStore, reps: list[RepresentativeRecord]) -> list[ChildRecord]:
        seen: dict[int, ChildRecord] = {}
        for child in store.children_of([r.id for r in reps]):
            seen.setdefault(child.student_id, child)
        return list(seen.values())

    # --- step 3: the children ---------------------------------------------------------------------

    @metrics.activation_step("sms", "children")
    def confirm_children(self, token: str | None, browser_id: str, answers: dict[int, ChildAnswer]) -> TxState:
        """Check the birth dates of every child the parent confirms; report the links they refuse (A08)."""
        kit = self.kit
        with kit.uow() as uow:
            store = kit.stores(uow)
            tx = kit.load(store, token, browser_id, self.kind)
            if tx.state is not TxState.CODE_VERIFIED:
                raise StepNotAllowed()
            listed = tx.data.get("children", [])
            self._check_answers(listed, answers)
            current = {(c.student_id, c.representative_id): c for c in self._children_all(store, tx)}
            confirmed = [c for i, c in enumerate(listed) if answers[i].is_representative]
            refused = [current[(c["student"], c["rep"])] for i, c in enumerate(listed)
                       if not answers[i].is_representative and (c["student"], c["rep"]) in current]
            now = kit.clock.now()
            if not confirmed:
                self._report(uow, store, tx, refused)
                kit.cancel(uow, store, tx, "declined")
                return TxState.CANCELLED
            right = all((c["student"], c["rep"]) in current
                        and current[(c["student"], c["rep"])].birth_date == answers[i].birth_date
                        for i, c in enumerate(listed) if answers[i].is_representative)
            if not right:
                self._wrong_dates(uow, store, tx)
            self._report(uow, store, tx, refused)
            reps = self._records(store, tx)
            if not reps:
                raise StepNotAllowed()
            if store.move(tx.id, [TxState.CODE_VERIFIED], TxState.CHILDREN_OK, now,
                          data={**tx.data, "confirmed": [c["student"] for c in confirmed]}):
                # Reserved now, so the password step can show it to password managers: the account gets it.
                self._accounts.reserve_identifier(uow, tx.id, reps[0].given_names, reps[0].family_name)
            uow.commit()
        return TxState.CHILDREN_OK

    def _children_all(self, store: ActivationStore, tx: Transaction) -> list[ChildRecord]:
        return list(store.children_of(list(tx.data.get("reps", []))))

    @staticmethod
    def _check_answers(listed: list[dict[str, object]], answers: dict[int, ChildAnswer]) -> None:
        problems: dict[str, str] = {}
        for i, child in enumerate(listed):
            answer = answers.get(i)
            if answer is None or answer.is_representative is None:
                problems[f"lien_{i}"] = _("Indiquez si vous êtes le représentant légal de %(name)s.",
                                          name=child["name"])
            elif answer.is_representative and answer.birth_date is None:
                problems[f"naissance_{i}_jour"] = answer.date_problem or _(
                    "Indiquez %(subject)s : jour, mois et année.", subject=date_of(str(child["name"])))
        if problems:
            raise FormProblem([], problems)

    def _wrong_dates(self, uow: UnitOfWork, store: ActivationStore, tx: Transaction) -> None:
        kit = self.kit
        failures = store.add_failure(tx.id, kit.clock.now())
        schools = sorted({c["school"] for c in tx.data.get("children", [])})
        records = [f"rep:{r}" for r in tx.data.get("reps", [])]
        kit.audit(uow, events.ACTIVATION_BIRTHDATE_FAILED, None, "", {"failures": failures, "about": records})
        if failures >= kit.limits.birthdate_failures:
            uais = sorted({r.uai for r in self._records(store, tx)})
            # Visible to the schools: the staff console lists events whose details name their UAI.
            kit.audit(uow, events.ACTIVATION_BIRTHDATE_LOCKED, None, "", {"uai": uais, "schools": schools,
                                                                          "about": records})
            kit.cancel(uow, store, tx, "birthdates")
            raise TooManyAttempts(_("Dates de naissance incorrectes à plusieurs reprises : pour votre sécurité, "
                                    "la démarche est annulée et l'établissement en est informé."))
        uow.commit()
        left = kit.limits.birthdate_failures - failures
        tries = ngettext("Il vous reste %(n)s essai.", "Il vous reste %(n)s essais.", left)
        raise FormProblem([f"{_(DATES_PROBLEM)} {tries}"])

    def _report(self, uow: UnitOfWork, store: ActivationStore, tx: Transaction, refused: list[ChildRecord]) -> None:
        for child in refused:
            store.report_wrong_link(child, tx.id, self.kit.clock.now())
            self.kit.audit(uow, events.ACTIVATION_WRONG_LINK, None, "", {
                "uai": child.uai, "about": [f"student:{child.student_id}", f"rep:{child.representative_id}"]})

    # --- step 4: the password ---------------------------------------------------------------------

    @metrics.activation_step("sms", "password")
    def choose_password(self, token: str | None, browser_id: str, password: str, confirmation: str, *,
                        ip: str, user_agent: str = "", old_token: str | None = None) -> Completion:
        """Create the account (exactly once), claim every matching record, open the SSO session."""
        kit = self.kit
        with kit.uow() as uow:
            store = kit.stores(uow)
            tx = kit.load(store, token, browser_id, self.kind)
            if tx.state is TxState.DONE:
                return self._repeat(uow, tx)
            if tx.state is not TxState.CHILDREN_OK:
                raise StepNotAllowed()
            reps = self._records(store, tx)
            if not reps:
                raise StepNotAllowed()
            context = self._context(store, tx, reps)
        if password != confirmation:
            raise FormProblem([_(MSG_MISMATCH)])
        try:
            self._accounts.check_new_password(password, context)
        except PasswordRejected as exc:
            raise FormProblem(exc.reasons) from None
        password_hash = self._hasher.hash(password)
        return self._create(tx, reps, password_hash, browser_id=browser_id, ip=ip, user_agent=user_agent,
                            old_token=old_token)

    def _context(self, store: ActivationStore, tx: Transaction, reps: list[RepresentativeRecord]) -> PasswordContext:
        """The parent's and the confirmed children's names, their birth years and the coming identifier."""
        if not reps:
            return NO_CONTEXT
        confirmed = set(tx.data.get("confirmed", []))
        kids = [c for c in self._children(store, reps) if c.student_id in confirmed]
        names = (reps[0].family_name, reps[0].given_names, *(f"{k.family_name} {k.given_names}" for k in kids))
        return PasswordContext(identifier=tx.reserved_identifier, names=names,
                               birth_years=tuple(k.birth_date.year for k in kids))

    def _create(self, tx: Transaction, reps: list[RepresentativeRecord], password_hash: str, *, browser_id: str,
                ip: str, user_agent: str, old_token: str | None) -> Completion:
        kit = self.kit
        with kit.uow() as uow:
            store = kit.stores(uow)
            now = kit.clock.now()
            rep = reps[0]
            # The reserved identifier's lock before the transaction row: a reservation holding that lock may release
            # this row's expired reservation, so the other order could deadlock. A double click waits here, then
            # finds the identifier taken and the transaction done.
            try:
                account = self._accounts.create(NewAccount(profile=Profile.PARENT, family_name=rep.family_name,
                                                           given_names=rep.given_names, state=AccountState.ACTIVE,
                                                           password_hash=password_hash),
                                                actor="activation", uow=uow, reserved_by=tx.id)
            except IdentifierTaken:
                uow.rollback()
                return self._settled(uow, tx, FlowExpired())
            if not store.move(tx.id, [TxState.CHILDREN_OK], TxState.DONE, now):
                uow.rollback()
                return self._settled(uow, tx, StepNotAllowed())
            claimed = uow.accounts.claim_register(account.id, representatives=[(r.uai, r.external_id) for r in reps])
            if claimed != len(reps):
                uow.rollback()
                with kit.uow() as again:
                    kit.audit(again, events.ACTIVATION_CONFLICT, None, "", {"records": len(reps)}, ip)
                    again.commit()
                raise AlreadyActivated()
            uow.accounts.set_phone(account.id, tx.destination, now)
            store.move(tx.id, [TxState.DONE], TxState.DONE, now, account_id=account.id)
            cookie, session, request = self._flow.open_after_step(
                uow, account, self.auth_method, request_id=tx.request_id, browser_id=browser_id, ip=ip,
                user_agent=user_agent, old_token=old_token)
            self._after_create(uow, tx, account.id, session.id)
            kit.audit(uow, events.ACTIVATION_COMPLETED, account.id, account.identifier,
                      {"records": claimed, "uai": sorted({r.uai for r in reps})}, ip)
            uow.commit()
        return Completion(identifier=account.identifier, token=cookie, session=session, request=request)

    def _settled(self, uow: UnitOfWork, tx: Transaction, otherwise: IdpError) -> Completion:
        """A creation that lost: the same success when the transaction is done (the first click of a double
        click), else ``otherwise`` (the reservation had expired and its identifier was given to someone else:
        ``FlowExpired``, the person starts again and may get another identifier)."""
        current = self.kit.stores(uow).get_transaction(tx.id)
        if current is not None and current.state is TxState.DONE:
            return self._repeat(uow, current)
        raise otherwise

    def _after_create(self, uow: UnitOfWork, tx: Transaction, account_id: int, session_id: str) -> None:
        """Extra writes in the account's transaction (none for the SMS route)."""

    def _repeat(self, uow: UnitOfWork, tx: Transaction) -> Completion:
        """The same final POST again (double click): the same success, no second account, no new session."""
        account = uow.accounts.get(tx.account_id) if tx.account_id else None
        if account is None:
            raise StepNotAllowed()
        return Completion(identifier=account.identifier)

    # --- the end ----------------------------------------------------------------------------------

    def resume_target(self, token: str | None, browser_id: str) -> str:
        """The authentication request to resume after "Accéder à mes services" ("" for "Mes services")."""
        with self.kit.uow() as uow:
            tx = self.kit.load(self.kit.stores(uow), token, browser_id, self.kind)
            if tx.state is not TxState.DONE:
                raise StepNotAllowed()
            return tx.request_id
