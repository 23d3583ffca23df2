"""The change-password step a login goes through when ``must_change_password`` is set (a security campaign).

The login checked the old password and opened a ``PASSWORD_CHANGE`` session that answers nothing. Here the
person chooses a new password (the policy, and not the old one); every session of the account ends (single
logout hooks run), a new full session opens and the pending request, if any, is marked authenticated by it so
the front-end that sent the person gets its answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from idp.core.accounts.model import Account, AccountState
from idp.core.accounts.service import AccountService
from idp.core.authn.flow import AuthnFlow
from idp.core.authn.model import AuthMethod, AuthnRequest
from idp.core.authn.sessions import LogoutHooks, find_session_with_account
from idp.core.clock import Clock
from idp.core.i18n import _
from idp.core.passwords.hashing import PasswordHasher
from idp.core.passwords.policy import MSG_MISMATCH
from idp.core.ports import AuditEvent, UnitOfWorkFactory
from idp.errors import AuthnRequestExpired, PasswordRejected

PASSWORD_CHANGED_FORCED = "account.password_changed_forced"


@dataclass(frozen=True)
class ChangeDone:
    """The new session's cookie and the request to answer (None for a login started at the portal)."""

    token: str
    request: AuthnRequest | None


class ForcedPasswordChange:
    """The step between a login and any answer, for an account whose password must change."""

    def __init__(self, uow: UnitOfWorkFactory, accounts: AccountService, hasher: PasswordHasher, flow: AuthnFlow,
                 clock: Clock, logout_hooks: LogoutHooks) -> None:
        self._uow = uow
        self._accounts = accounts
        self._hasher = hasher
        self._flow = flow
        self._clock = clock
        self._hooks = logout_hooks

    def pending(self, token: str | None) -> Account:
        """The account behind a ``PASSWORD_CHANGE`` session still due to change, or ``AuthnRequestExpired``."""
        with self._uow.autocommit() as uow:
            found = find_session_with_account(uow, token, self._flow.session_policy, self._clock)
            uow.commit()
        if found is None or found[0].auth_method is not AuthMethod.PASSWORD_CHANGE \
                or not found[1].must_change_password or found[1].state is not AccountState.ACTIVE:
            raise AuthnRequestExpired()
        return found[1]

    def change(self, token: str | None, new: str, confirmation: str, *, request_id: str, browser_id: str, ip: str,
               user_agent: str = "") -> ChangeDone:
        """Set the new password, end every session, open a full one; ``PasswordRejected`` with the reasons."""
        account = self.pending(token)
        if new != confirmation:
            raise PasswordRejected([_(MSG_MISMATCH)])
        self._accounts.check_new_password(new, self._accounts.password_context(account))
        if self._hasher.verify(account.password_hash, new[:1024]):
            raise PasswordRejected([_("Choisissez un mot de passe différent de l'ancien.")])
        hashed = self._hasher.hash(new)
        with self._uow() as uow:
            now = self._clock.now()
            uow.accounts.set_password_hash(account.id, hashed, now, changed=True)  # clears must_change_password
            ended = uow.sessions.end_all(account.id, now)
            new_token, _session, request = self._flow.open_after_step(uow, account, AuthMethod.PASSWORD,
                                                               request_id=request_id, browser_id=browser_id, ip=ip,
                                                               user_agent=user_agent, old_token=token)
            uow.audit.record(AuditEvent(event=PASSWORD_CHANGED_FORCED, at=now, account_id=account.id,
                                        subject=account.identifier, ip=ip,
                                        details={"sessions_ended": len(ended)}))
            uow.commit()
        self._hooks.run(ended)
        return ChangeDone(token=new_token, request=request)
