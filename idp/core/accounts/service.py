"""Account administration: create, lock, unlock, set a password (what the helpdesk and the flows call)."""

from __future__ import annotations

from typing import Any

from idp.core import audit
from idp.core.accounts.identifiers import identifier_base, normalise_login_input
from idp.core.accounts.model import Account, AccountState, NewAccount
from idp.core.authn import throttle
from idp.core.authn.sessions import LogoutHooks
from idp.core.clock import Clock
from idp.core.passwords.hashing import PasswordHasher
from idp.core.passwords.policy import PasswordContext, PasswordPolicy, check_password
from idp.core.ports import AuditEvent, UnitOfWork, UnitOfWorkFactory
from idp.errors import NotFound, PasswordRejected


class AccountService:
    """Operations on accounts that keep the audit trail, the password policy and the sessions right."""

    def __init__(self, uow_factory: UnitOfWorkFactory, hasher: PasswordHasher, policy: PasswordPolicy,
                 clock: Clock, logout_hooks: LogoutHooks | None = None) -> None:
        self._uow = uow_factory
        self._hasher = hasher
        self._policy = policy
        self._clock = clock
        self._logout_hooks = logout_hooks if logout_hooks is not None else LogoutHooks()

    def get(self, identifier: str) -> Account:
        """The account with this identifier, or ``NotFound``."""
        with self._uow() as uow:
            return self._get(uow, identifier)

    def _get(self, uow: UnitOfWork, identifier: str) -> Account:
        account = uow.accounts.by_identifier(normalise_login_input(identifier))
        if account is None:
            raise NotFound(f"aucun compte avec l'identifiant « {identifier[:64]} »")
        return account

    def password_context(self, account: Account) -> PasswordContext:
        """What a new password of this account must not contain: its identifier, its names and its relatives'."""
        with self._uow() as uow:
            names = tuple(uow.accounts.related_names(account.id))
        return PasswordContext(identifier=account.identifier, names=(account.family_name, account.given_names, *names))

    def check_new_password(self, password: str, context: PasswordContext) -> None:
        """Raise ``PasswordRejected`` with one French reason per broken rule."""
        violations = check_password(password, self._policy, context)
        if violations:
            raise PasswordRejected([v.message for v in violations])

    def reserve_identifier(self, uow: UnitOfWork, transaction_id: str, given_names: str, family_name: str) -> str:
        """Reserve the ``p.nomNN`` identifier the account of this activation transaction will have, for the flow to
        show it before the password is chosen (password managers file the password under it). While the
        transaction lives no one else is given it; ``create(..., reserved_by=transaction_id)`` then uses it."""
        return uow.accounts.reserve_identifier(identifier_base(given_names, family_name), transaction_id,
                                               self._clock.now())

    def create(self, new: NewAccount, password: str | None = None, *, actor: str = "system",
               uow: UnitOfWork | None = None, reserved_by: str | None = None) -> Account:
        """Create an account with a generated ``p.nomNN`` identifier (and a checked password if given).

        With ``uow``, the account is added inside the caller's transaction (not committed here), so a flow can
        create it and claim register records atomically; hash the password before opening that transaction.
        ``reserved_by`` is an activation transaction that ``reserve_identifier`` gave an identifier: the account
        gets exactly that one, or ``IdentifierTaken`` is raised if the transaction expired and lost it.
        """
        if password is not None:
            self.check_new_password(password, PasswordContext(names=(new.family_name, new.given_names)))
            new = NewAccount(**{**new.__dict__, "password_hash": self._hasher.hash(password)})
        if uow is not None:
            return self._add(uow, new, actor, reserved_by)
        with self._uow() as own:
            account = self._add(own, new, actor, reserved_by)
            own.commit()
        return account

    def _add(self, uow: UnitOfWork, new: NewAccount, actor: str, reserved_by: str | None) -> Account:
        account = uow.accounts.add(new, identifier_base(new.given_names, new.family_name), self._clock.now(),
                                   reserved_by=reserved_by)
        self._audit(uow, audit.ACCOUNT_CREATED, account, {"actor": actor, "state": new.state.value})
        return account

    def set_password(self, identifier: str, password: str, *, actor: str = "helpdesk") -> Account:
        """Set a new password (policy applied), end every session of the account, record who did it."""
        with self._uow() as uow:
            account = self._get(uow, identifier)
            names = (account.family_name, account.given_names, *uow.accounts.related_names(account.id))
            self.check_new_password(password, PasswordContext(identifier=account.identifier, names=names))
            now = self._clock.now()
            uow.accounts.set_password_hash(account.id, self._hasher.hash(password), now, changed=True)
            ended = uow.sessions.end_all(account.id, now)
            self._audit(uow, audit.PASSWORD_SET, account, {"actor": actor, "sessions_ended": len(ended)})
            uow.commit()
        self._logout_hooks.run(ended)
        return account

    def lock(self, identifier: str, *, actor: str = "helpdesk") -> Account:
        """Lock the account (no login until unlocked) and end its sessions."""
        with self._uow() as uow:
            account = self._get(uow, identifier)
            now = self._clock.now()
            uow.accounts.set_state(account.id, AccountState.LOCKED, now)
            ended = uow.sessions.end_all(account.id, now)
            self._audit(uow, audit.ACCOUNT_LOCKED, account, {"actor": actor, "sessions_ended": len(ended)})
            uow.commit()
        self._logout_hooks.run(ended)
        return account

    def unlock(self, identifier: str, *, actor: str = "helpdesk") -> Account:
        """Unlock: a locked account becomes active again and its login throttling is cleared."""
        with self._uow() as uow:
            account = self._get(uow, identifier)
            if account.state is AccountState.LOCKED:
                uow.accounts.set_state(account.id, AccountState.ACTIVE, self._clock.now())
            throttle.record_success(throttle.keys_for(account.identifier, ""), uow.throttle)
            self._audit(uow, audit.ACCOUNT_UNLOCKED, account, {"actor": actor})
            uow.commit()
        return account

    def _audit(self, uow: UnitOfWork, event: str, account: Account, details: dict[str, Any]) -> None:
        uow.audit.record(AuditEvent(event=event, at=self._clock.now(), account_id=account.id,
                                    subject=account.identifier, details=details))
