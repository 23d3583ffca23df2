"""Small named checks of the common login: whether an existing SSO session may answer an authentication
request, and whether the account whose password was typed belongs to the profile chosen."""

from __future__ import annotations

from idp.core.accounts.model import Account, AccountState, Profile
from idp.core.authn.model import AuthMethod, AuthnRequest, SsoSession
from idp.errors import WrongProfile

#: Methods that prove the person knows a durable secret; a provisional password is not one of them.
FULL_METHODS = frozenset({AuthMethod.PASSWORD, AuthMethod.SMS, AuthMethod.FEDERATION})


def session_can_answer(request: AuthnRequest, session: SsoSession | None) -> bool:
    """An existing session answers unless there is none, the request forces a login, or it was provisional."""
    if session is None or request.force_authn:
        return False
    return session.auth_method in FULL_METHODS


def must_fail_passive(request: AuthnRequest, session: SsoSession | None) -> bool:
    """A passive request that no session can answer fails instead of showing a login page (SAML IsPassive)."""
    return request.passive and not session_can_answer(request, session)


def session_may_resume(request: AuthnRequest, session: SsoSession, fresh: bool) -> bool:
    """A pending request is answered by the session that just logged in for it or by one that could answer it
    anyway, and never by a session without full credentials (provisional, or a password that must change)."""
    return session.auth_method in FULL_METHODS and (fresh or session_can_answer(request, session))


def account_may_answer(account: Account) -> bool:
    """Only an active account whose password need not change gets an answer from an existing session (a
    campaign's forced change sends the person through the login and its change-password step first)."""
    return account.state is AccountState.ACTIVE and not account.must_change_password


def check_profile(account: Account, chosen: Profile, description: str | None = None) -> None:
    """The profile chosen on the login screen is the profile that logs in: raise ``WrongProfile`` otherwise.

    Called only once the password is known to be right, so that the answer (which names the other profile)
    tells nothing about an identifier to someone who does not know its password (SECURITY W06).
    ``description`` replaces the screen's default text where the caller has no profile choice to link to.
    """
    if account.profile is not chosen:
        raise WrongProfile(account.profile, description)
