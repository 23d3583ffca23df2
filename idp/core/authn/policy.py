"""Small named checks that decide whether an existing SSO session may answer an authentication request."""

from __future__ import annotations

from idp.core.authn.model import AuthMethod, AuthnRequest, SsoSession

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
