"""Provisional credentials: issued by the school (letters), used once to reach the first-login steps.

``issue`` creates (or reissues) provisional accounts for a school, a class or one pupil, and optionally for
their legal representatives. At the first login the person chooses a password (different from the provisional
one), confirms a birth date (their own for a pupil, one of their children's for a parent) and gives an e-mail
address (required for a parent, optional for a pupil as the seeds show), confirmed by a link valid 24 h. The
account is active as soon as the form is accepted; the address becomes "verified" when the link is opened.
A parent holding a second letter can instead attach its records to the account they already have.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from idp import metrics
from idp.core.accounts.identifiers import identifier_base, normalise_login_input
from idp.core.accounts.model import Account, AccountState, NewAccount, Profile
from idp.core.accounts.service import AccountService
from idp.core.activation import codes, events, messages
from idp.core.activation.common import Completion, FlowKit
from idp.core.activation.errors import FlowExpired, FormProblem, StepNotAllowed, TooManyAttempts
from idp.core.activation.model import Channel, ChildRecord, RepresentativeRecord, StudentRecord
from idp.core.authn import throttle
from idp.core.authn.flow import AuthnFlow
from idp.core.authn.model import AuthMethod, SsoSession
from idp.core.authn.policy import check_profile
from idp.core.authn.sessions import find_session
from idp.core.i18n import _
from idp.core.passwords.hashing import HashParameters, PasswordHasher
from idp.core.passwords.policy import MSG_MISMATCH, PasswordContext
from idp.core.ports import UnitOfWork
from idp.errors import InvalidCredentials, LoginThrottled, NotFound, PasswordRejected

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
MAX_EMAIL = 254
#: Letters and digits a person copies from paper without confusing them (no 0/O, 1/l/I).
_PASSWORD_GROUPS = ("ABCDEFGHJKMNPQRSTUVWXYZ", "abcdefghjkmnpqrstuvwxyz", "23456789")
BATCH = 200


def new_provisional_password() -> str:
    """Like ``Kx7p-Rm4q-T9bc``: 12 characters from a 54-symbol alphabet (about 69 bits), easy to copy."""
    alphabet = "".join(_PASSWORD_GROUPS)
    while True:
        chars = [secrets.choice(alphabet) for _ in range(12)]
        if all(any(c in group for c in chars) for group in _PASSWORD_GROUPS):
            return "-".join("".join(chars[i:i + 4]) for i in range(0, 12, 4))


def email_problem(email: str) -> str:
    """A French reason why an address cannot be used, or ``""``."""
    if len(email) > MAX_EMAIL or not EMAIL_RE.match(email):
        return _("Adresse mail invalide : elle a la forme nom@exemple.fr.")
    return ""


@dataclass(frozen=True)
class IssuedCredential:
    """One letter: who, the provisional identifier and password, until when."""

    profile: Profile
    identifier: str
    password: str
    expires_at: dt.datetime
    family_name: str
    given_names: str
    uai: str
    school: str
    class_code: str = ""
    children: tuple[str, ...] = ()
    reissued: bool = False


@dataclass(frozen=True)
class IssueReport:
    """What a letter run produced and what it left alone (accounts already active)."""

    issued: list[IssuedCredential] = field(default_factory=list)
    skipped_active: int = 0


@dataclass(frozen=True)
class _Pending:
    profile: Profile
    family_name: str
    given_names: str
    uai: str
    school: str
    class_code: str
    account_id: int | None
    ine: str = ""
    representative: tuple[str, str] | None = None
    children: tuple[str, ...] = ()


class ProvisionalCredentials:
    """Issue provisional credentials (``idp account issue-provisional``) and run the first login."""

    def __init__(self, kit: FlowKit, accounts: AccountService, hasher: PasswordHasher, flow: AuthnFlow,
                 base_url: str, workers: int = 2) -> None:
        self.kit = kit
        self._accounts = accounts
        self._hasher = hasher
        self._flow = flow
        self._base_url = base_url.rstrip("/")
        self._workers = workers
        # Provisional passwords are random (about 69 bits): a costly hash adds nothing against guessing them and
        # would make a 2,000-letter run take minutes. They are only used once; the chosen password gets the
        # full parameters (and a provisional hash is upgraded at its first login by ``needs_rehash``).
        self._letter_hasher = PasswordHasher(HashParameters(time_cost=1, memory_kib=8192, parallelism=1),
                                             max_concurrent=workers)

    # --- issuing ----------------------------------------------------------------------------------

    def issue(self, uai: str, *, class_code: str = "", ine: str = "", parents: bool = False,
              actor: str = "cli", only_representative: tuple[str, str] | None = None) -> IssueReport:
        """Create or reissue provisional accounts for the selected pupils (and their representatives).

        ``only_representative`` (UAI, register id): that legal representative of the selected pupils alone (the
        staff console's letter for one parent)."""
        parents = parents or only_representative is not None
        kit = self.kit
        with kit.uow() as uow:
            store = kit.stores(uow)
            students = list(store.students_for_letters(uai.upper(), class_code, ine))
            if not students:
                raise NotFound("aucun élève présent ne correspond à cette sélection")
            reps = list(store.representatives_of([s.id for s in students])) if parents else []
            kids = store.children_of([r.id for r, _ in reps]) if reps else []
        todo, skipped = self._select(students, reps, kids)
        if only_representative is not None:
            todo = [t for t in todo if t.representative == only_representative]
        passwords = [new_provisional_password() for _ in todo]
        with ThreadPoolExecutor(max_workers=self._workers) as pool:
            hashes = list(pool.map(self._letter_hasher.hash, passwords))
        expires = kit.clock.now() + kit.limits.provisional_valid
        issued: list[IssuedCredential | None] = [None] * len(todo)
        for start in range(0, len(todo), BATCH):
            # A creation locks its name base until the batch commits (``AccountRepository.add``): each batch takes
            # them in one order, so two runs at once cannot wait for each other. The letters keep their order.
            batch = sorted(range(start, min(start + BATCH, len(todo))),
                           key=lambda i: identifier_base(todo[i].given_names, todo[i].family_name))
            with kit.uow() as uow:
                for i in batch:
                    issued[i] = self._write(uow, todo[i], passwords[i], hashes[i], expires, actor)
                uow.commit()
        return IssueReport(issued=[credential for credential in issued if credential is not None],
                           skipped_active=skipped)

    @staticmethod
    def _select(students: Sequence[StudentRecord], reps: Sequence[tuple[RepresentativeRecord, str]],
                kids: Sequence[ChildRecord]) -> tuple[list[_Pending], int]:
        todo: list[_Pending] = []
        skipped = 0
        for s in students:
            if s.account_state in ("", AccountState.PROVISIONAL.value):
                todo.append(_Pending(Profile.STUDENT, s.family_name, s.given_names, s.uai, s.school, s.class_code,
                                     s.account_id, ine=s.ine))
            else:
                skipped += 1
        children: dict[int, list[str]] = {}
        for kid in kids:
            children.setdefault(kid.representative_id, []).append(f"{kid.given_names} {kid.family_name}")
        for rep, state in reps:
            if state in ("", AccountState.PROVISIONAL.value):
                todo.append(_Pending(Profile.PARENT, rep.family_name, rep.given_names, rep.uai, rep.school, "",
                                     rep.account_id, representative=(rep.uai, rep.external_id),
                                     children=tuple(sorted(children.get(rep.id, [])))))
            else:
                skipped += 1
        return todo, skipped

    def _write(self, uow: UnitOfWork, item: _Pending, password: str, hashed: str, expires: dt.datetime,
               actor: str) -> IssuedCredential:
        reissued = item.account_id is not None
        if item.account_id is not None:
            if not uow.accounts.set_provisional(item.account_id, hashed, expires):
                raise StepNotAllowed("Un compte de cette sélection a été activé pendant l'envoi : relancez la commande.")
            account = uow.accounts.get(item.account_id)
            assert account is not None
        else:
            account = self._accounts.create(NewAccount(
                profile=item.profile, family_name=item.family_name, given_names=item.given_names,
                state=AccountState.PROVISIONAL, password_hash=hashed, provisional_expires_at=expires),
                actor=actor, uow=uow)
            claimed = uow.accounts.claim_register(
                account.id, student_ines=[item.ine] if item.ine else [],
                representatives=[item.representative] if item.representative else [])
            if claimed != 1:
                raise StepNotAllowed("Un élève ou un responsable de cette sélection vient d'être rattaché à un "
                                     "autre compte : relancez la commande.")
        self.kit.audit(uow, events.PROVISIONAL_ISSUED, account.id, account.identifier,
                       {"actor": actor, "uai": item.uai, "reissued": reissued})
        return IssuedCredential(profile=item.profile, identifier=account.identifier, password=password,
                                expires_at=expires, family_name=item.family_name, given_names=item.given_names,
                                uai=item.uai, school=item.school, class_code=item.class_code,
                                children=item.children, reissued=reissued)

    # --- the first login --------------------------------------------------------------------------

    def current(self, session_token: str | None) -> tuple[SsoSession, Account]:
        """The provisional session and account behind the cookie, or ``FlowExpired``."""
        with self.kit.uow() as uow:
            session = find_session(uow, session_token, self._flow.session_policy, self.kit.clock)
            account = uow.accounts.get(session.account_id) if session else None
            uow.commit()
        if session is None or account is None or session.auth_method is not AuthMethod.PROVISIONAL \
                or account.state is not AccountState.PROVISIONAL:
            raise FlowExpired(_("Connectez-vous avec vos identifiants provisoires pour activer votre compte."))
        return session, account

    def password_context(self, account: Account) -> PasswordContext:
        """What the new password must not contain: the account's context and its pupils' birth years."""
        with self.kit.uow() as uow:
            years = tuple(r["birth_date"].year for r in uow.accounts.linked_records(account.id))
        return replace(self._accounts.password_context(account), birth_years=years)

    @metrics.activation_step("provisional", "complete")
    def complete(self, session_token: str | None, *, request_id: str, browser_id: str, password: str,
                 confirmation: str, birth_date: dt.date | None, email: str, ip: str,
                 user_agent: str = "") -> Completion:
        """Choose the password, confirm a birth date, give an e-mail: the account becomes active."""
        session, account = self.current(session_token)
        email = email.strip()
        problems = self._form_problems(account, password, confirmation, birth_date, email)
        if problems:
            raise FormProblem(problems)
        with self.kit.uow() as uow:
            records = uow.accounts.linked_records(account.id)
        self._check_birth_date(account, records, birth_date, ip)
        try:
            self._accounts.check_new_password(password, self.password_context(account))
        except PasswordRejected as exc:
            raise FormProblem(exc.reasons) from None
        if self._hasher.verify(account.password_hash, password):
            raise FormProblem([_("Le nouveau mot de passe doit être différent du mot de passe provisoire.")])
        return self._activate(account, self._hasher.hash(password), email, session_token=session_token,
                              request_id=request_id, browser_id=browser_id, ip=ip, user_agent=user_agent)

    @staticmethod
    def _form_problems(account: Account, password: str, confirmation: str, birth_date: dt.date | None,
                       email: str) -> list[str]:
        problems = []
        if not password:
            problems.append(_("Choisissez un mot de passe."))
        elif password != confirmation:
            problems.append(_(MSG_MISMATCH))
        if birth_date is None:
            problems.append(_("Indiquez une date de naissance complète : jour, mois et année (par exemple 7, 3 et 2015)."))
        if email and email_problem(email):
            problems.append(email_problem(email))
        if not email and account.profile is Profile.PARENT:
            problems.append(_("Indiquez votre adresse mail : elle vous permettra de récupérer votre compte."))
        return problems

    def _check_birth_date(self, account: Account, records: Sequence[dict[str, object]], birth_date: dt.date | None,
                          ip: str) -> None:
        if any(r["birth_date"] == birth_date for r in records):
            return
        kit = self.kit
        key = f"provbirth:{account.id}"
        with kit.uow() as uow:
            counter = uow.throttle.record_failure(key, kit.clock.now(), dt.timedelta(hours=1))
            kit.audit(uow, events.ACTIVATION_BIRTHDATE_FAILED, account.id, account.identifier,
                      {"failures": counter.failures}, ip)
            if counter.failures >= kit.limits.birthdate_failures:
                ended = uow.sessions.end_all(account.id, kit.clock.now())
                kit.audit(uow, events.ACTIVATION_BIRTHDATE_LOCKED, account.id, account.identifier,
                          {"uai": sorted({str(r["uai"]) for r in records})}, ip)
                uow.commit()
                kit.logout_hooks.run(ended)
                raise TooManyAttempts(_("Date de naissance incorrecte à plusieurs reprises : reconnectez-vous plus "
                                        "tard avec vos identifiants provisoires, ou contactez votre établissement."))
            uow.commit()
        raise FormProblem([_("La date de naissance ne correspond pas aux informations de l'établissement.")])

    def _activate(self, account: Account, password_hash: str, email: str, *, session_token: str | None,
                  request_id: str, browser_id: str, ip: str, user_agent: str) -> Completion:
        kit = self.kit
        with kit.uow() as uow:
            now = kit.clock.now()
            if not uow.accounts.activate_provisional(account.id, password_hash, now):
                raise StepNotAllowed()
            if email:
                uow.accounts.set_email(account.id, email, None)
                self._send_link(uow, account, email)
            uow.throttle.reset(f"provbirth:{account.id}")
            cookie, session, request = self._flow.open_after_step(
                uow, account, AuthMethod.PASSWORD, request_id=request_id, browser_id=browser_id, ip=ip,
                user_agent=user_agent, old_token=session_token)
            kit.audit(uow, events.PROVISIONAL_COMPLETED, account.id, account.identifier, {"email": bool(email)}, ip)
            uow.commit()
        kit.wake()
        return Completion(identifier=account.identifier, token=cookie, session=session, request=request)

    def _send_link(self, uow: UnitOfWork, account: Account, email: str) -> None:
        kit = self.kit
        token = codes.new_token()
        now = kit.clock.now()
        kit.stores(uow).add_email_token(codes.keyed_hash(kit.secret, "email-link", token), account.id, email, now,
                                        now + kit.limits.email_link_ttl)
        hours = int(kit.limits.email_link_ttl.total_seconds() // 3600)
        subject, body = messages.email_confirmation(kit.product, f"{self._base_url}/courriel/{token}", hours)
        kit.queue(uow, kit.stores(uow), Channel.MAIL, email, body, subject=subject, purpose="email_link",
                  account_id=account.id)

    @metrics.activation_step("provisional", "email")
    def confirm_email(self, token: str) -> Account:
        """Open the confirmation link: the address becomes verified (once, within 24 h)."""
        kit = self.kit
        token_hash = codes.keyed_hash(kit.secret, "email-link", token[:100])
        with kit.uow() as uow:
            store = kit.stores(uow)
            link = store.get_email_token(token_hash)
            now = kit.clock.now()
            account = uow.accounts.get(link.account_id) if link else None
            if link is None or account is None or link.used_at is not None or now >= link.expires_at \
                    or account.email.lower() != link.email.lower():
                raise FlowExpired(_("Ce lien de confirmation a expiré ou a déjà servi. Vous pouvez indiquer à "
                                    "nouveau votre adresse depuis la page « Mon compte »."))
            if not store.use_email_token(token_hash, now):
                raise FlowExpired()
            uow.accounts.set_email(account.id, link.email, now)
            kit.audit(uow, events.EMAIL_CONFIRMED, account.id, account.identifier, {})
            uow.commit()
        return account

    # --- a second letter for a parent who already has an account ---------------------------------

    @metrics.activation_step("provisional", "attach")
    def attach(self, session_token: str | None, *, request_id: str, browser_id: str, identifier: str,
               password: str, ip: str, user_agent: str = "") -> Completion:
        """Move this letter's records to the parent's existing account (its password proves it), close this one."""
        _, provisional = self.current(session_token)
        if provisional.profile is not Profile.PARENT:
            raise StepNotAllowed()
        existing = self._check_existing(identifier, password, ip)
        kit = self.kit
        with kit.uow() as uow:
            moved = kit.stores(uow).move_representatives(provisional.id, existing.id)
            uow.accounts.set_state(provisional.id, AccountState.CLOSED, kit.clock.now())
            cookie, session, request = self._flow.open_after_step(
                uow, existing, AuthMethod.PASSWORD, request_id=request_id, browser_id=browser_id, ip=ip,
                user_agent=user_agent, old_token=session_token)
            kit.audit(uow, events.PROVISIONAL_ATTACHED, existing.id, existing.identifier,
                      {"records": moved, "closed": provisional.identifier}, ip)
            uow.commit()
        return Completion(identifier=existing.identifier, token=cookie, session=session, request=request)

    def _check_existing(self, identifier: str, password: str, ip: str) -> Account:
        """Check an identifier and password with the login's throttling (the same keys and delays)."""
        kit = self.kit
        ident = normalise_login_input(identifier)
        keys = throttle.keys_for(ident, ip)
        policy = self._flow._throttle  # noqa: SLF001 - the login's own throttling policy
        with kit.uow() as uow:
            counters = uow.throttle.get_many([keys.identifier, keys.ip, keys.network])
            wait = throttle.wait_seconds(counters, kit.clock.now())
            account = uow.accounts.by_identifier(ident) if ident and not wait else None
        if wait:
            raise LoginThrottled(wait)
        ok = self._hasher.verify(account.password_hash if account else None, password[:1024])
        if not ok or account is None or account.state is not AccountState.ACTIVE:
            with kit.uow() as uow:
                throttle.record_failure(keys, uow.throttle, policy, kit.clock.now())
                uow.commit()
            raise InvalidCredentials()
        # Only a parent's account takes children; the login's rule, after the password (no failure counted).
        check_profile(account, Profile.PARENT, "Cet identifiant est celui d'un compte « Élève » : saisissez "
                      "l'identifiant et le mot de passe de votre compte « Représentant légal ».")
        return account

