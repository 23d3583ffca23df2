"""The confirmation of a first federated login, "as in the SMS route" (SECURITY F06).

The steps are the SMS enrolment's (``ParentEnrolment``): a code to the mobile number the register holds, then
the children's birth dates, then, when the parent has no account yet, the password; only the transaction
kind (``federation``) and the session method differ, and the upstream identity ``(issuer, sub)`` is linked in
the same database transaction as the account. When the parent already has an account, the birth dates end
the confirmation; alternatively the parent proves the record with that account's password.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from idp.core.accounts.identifiers import normalise_login_input
from idp.core.accounts.model import Account, AccountState
from idp.core.accounts.service import AccountService
from idp.core.activation.common import Completion, FlowKit
from idp.core.activation.enrolment import ParentEnrolment
from idp.core.activation.errors import AlreadyActivated, FormProblem, StepNotAllowed
from idp.core.activation.matching import mask_e164
from idp.core.activation.model import Channel, RepresentativeRecord, Transaction, TxKind, TxState
from idp.core.authn.flow import AuthnFlow
from idp.core.authn.model import AuthMethod
from idp.core.federation import events
from idp.core.federation.matching import PivotIdentity
from idp.core.federation.ports import FederationStoreFactory
from idp.core.i18n import N_, _
from idp.core.passwords.hashing import PasswordHasher
from idp.core.ports import UnitOfWork
from idp.core.recovery.service import IDENTIFIER_MISSING
from idp.errors import InvalidCredentials

#: Checks an account's password with the login's throttling (the account page's re-authentication).
Reauthenticate = Callable[[Account, str, str], None]
LINKABLE = (TxState.CODE_SENT, TxState.CODE_VERIFIED, TxState.CHILDREN_OK)
PASSWORD_MISSING = N_("Indiquez le mot de passe de ce compte.")


class FederatedEnrolment(ParentEnrolment):
    """The SMS enrolment's steps, for a person the upstream provider has identified."""

    kind = TxKind.FEDERATION.value
    auth_method = AuthMethod.FEDERATION
    stop_at_existing = False

    def __init__(self, kit: FlowKit, accounts: AccountService, hasher: PasswordHasher, flow: AuthnFlow,
                 links: FederationStoreFactory, reauthenticate: Reauthenticate) -> None:
        super().__init__(kit, accounts, hasher, flow)
        self._links = links
        self._reauthenticate = reauthenticate

    def begin(self, uow: UnitOfWork, group: list[RepresentativeRecord], answer: PivotIdentity, id_token: str, *,
              browser_id: str, ip: str, request_id: str) -> str | None:
        """In the callback's transaction: a transaction, and a code to the register's mobile number.

        Returns the transaction's token, or None when the record can be confirmed neither by SMS (no mobile
        number of an allowed region) nor by the password of an existing account."""
        kit = self.kit
        destination = self._destination(group)
        accounts = {r.account_id for r in group if r.account_id is not None}
        existing = accounts.pop() if len(accounts) == 1 else None
        if destination is None and existing is None:
            return None
        store = kit.stores(uow)
        kit.check_starts(store, ip, (self.kind,))
        token, tx = kit.new_transaction(
            store, self.kind, browser_id, ip, request_id=request_id, channel=Channel.SMS.value,
            destination=destination or "",
            data={"typed_phone": mask_e164(destination) if destination else "", "reps": [r.id for r in group],
                  "federation": {"iss": answer.issuer, "sub": answer.sub}, "id_token": id_token,
                  "existing_account": existing})
        if destination:
            text = self._text
            kit.send_code(uow, store, tx, purpose=self.kind, channel=Channel.SMS, destination=destination,
                          limit_key_value=destination, text_for=text)
        return token

    def _text(self, code: str, minutes: int) -> str:
        from idp.core.activation import messages

        return messages.activation_code(self.kit.product, code, minutes)

    def existing_account(self, token: str | None, browser_id: str) -> int | None:
        """The account the matched record already has, if any (never shown: it decides the last step)."""
        with self.kit.uow() as uow:
            tx = self.kit.load(self.kit.stores(uow), token, browser_id, self.kind)
        value = tx.data.get("existing_account")
        return int(value) if value else None

    # --- the last step for a parent who already has an account -----------------------------------

    def finish_existing(self, token: str | None, browser_id: str, *, ip: str, user_agent: str = "",
                        old_token: str | None = None) -> Completion:
        """Code and birth dates confirmed: link the identity to the account the record already has."""
        return self._finish(token, browser_id, (TxState.CHILDREN_OK,), ip=ip, user_agent=user_agent,
                            old_token=old_token)

    def finish_with_password(self, token: str | None, browser_id: str, identifier: str, password: str, *,
                             ip: str, user_agent: str = "", old_token: str | None = None) -> Completion:
        """The alternative proof: the existing account's identifier and password, typed in this flow.

        An empty field is a ``FormProblem`` on that field; a wrong identifier or password is ``InvalidCredentials``
        (the same for both), counted by the login's throttling, which raises ``LoginThrottled`` once it applies."""
        missing = {field: _(text) for field, text, typed in (("identifiant", IDENTIFIER_MISSING, identifier.strip()),
                                                             ("mot_de_passe", PASSWORD_MISSING, password)) if not typed}
        if missing:
            raise FormProblem([], missing)
        with self.kit.uow() as uow:
            tx = self.kit.load(self.kit.stores(uow), token, browser_id, self.kind)
            account_id = tx.data.get("existing_account")
            account = uow.accounts.get(int(account_id)) if account_id and tx.state in LINKABLE else None
        if account is None:
            raise StepNotAllowed()
        same = normalise_login_input(identifier) == account.identifier
        try:
            self._reauthenticate(account, password if same else "", ip)
        except FormProblem:
            raise InvalidCredentials() from None
        return self._finish(token, browser_id, LINKABLE, ip=ip, user_agent=user_agent, old_token=old_token)

    def _finish(self, token: str | None, browser_id: str, states: tuple[TxState, ...], *, ip: str,
                user_agent: str, old_token: str | None) -> Completion:
        kit = self.kit
        with kit.uow() as uow:
            store = kit.stores(uow)
            tx = kit.load(store, token, browser_id, self.kind)
            if tx.state is TxState.DONE:
                return self._repeat(uow, tx)
            account_id = int(tx.data.get("existing_account") or 0)
            account = uow.accounts.get(account_id) if account_id else None
            if account is None or account.state is not AccountState.ACTIVE:
                raise StepNotAllowed()
            if not store.move(tx.id, list(states), TxState.DONE, kit.clock.now(), account_id=account_id):
                raise StepNotAllowed()
            cookie, session, request = self._flow.open_after_step(
                uow, account, self.auth_method, request_id=tx.request_id, browser_id=browser_id, ip=ip,
                user_agent=user_agent, old_token=old_token)
            self._after_create(uow, tx, account_id, session.id)
            uow.commit()
        return Completion(identifier=account.identifier, token=cookie, session=session, request=request)

    def _after_create(self, uow: UnitOfWork, tx: Transaction, account_id: int, session_id: str) -> None:
        """Link ``(issuer, sub)`` to the account, in the account's own transaction (F05)."""
        identity: dict[str, Any] = tx.data.get("federation", {})
        links = self._links(uow)
        now = self.kit.clock.now()
        if not links.link(str(identity.get("iss", "")), str(identity.get("sub", "")), account_id, now):
            uow.rollback()
            raise AlreadyActivated(_("Cette identité FranceConnect est déjà liée à un compte : "
                                     "connectez-vous avec FranceConnect."))
        links.keep_id_token(session_id, str(identity.get("iss", "")), str(tx.data.get("id_token", "")), now)
        self.kit.audit(uow, events.FEDERATION_LINKED, account_id, "", {"route": "confirmation"})
