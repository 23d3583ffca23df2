"""Each ``AuthnFailure`` of the common login as a SAML status (SAML Core 3.2.2.2); one table, tested complete."""

from __future__ import annotations

from saml2.samlp import (
    STATUS_AUTHN_FAILED,
    STATUS_NO_PASSIVE,
    STATUS_REQUEST_DENIED,
    STATUS_REQUESTER,
    STATUS_RESPONDER,
)

from idp.errors import AuthnFailure

#: failure -> (top-level status, second-level status)
SAML_STATUS: dict[AuthnFailure, tuple[str, str]] = {
    AuthnFailure.PASSIVE_LOGIN_REQUIRED: (STATUS_RESPONDER, STATUS_NO_PASSIVE),
    AuthnFailure.USER_CANCELLED: (STATUS_RESPONDER, STATUS_AUTHN_FAILED),
    AuthnFailure.ACCOUNT_UNAVAILABLE: (STATUS_RESPONDER, STATUS_AUTHN_FAILED),
    AuthnFailure.REQUEST_EXPIRED: (STATUS_REQUESTER, STATUS_REQUEST_DENIED),
}


def saml_status(failure: AuthnFailure) -> tuple[str, str]:
    """The SAML status pair for a failure of the common login."""
    return SAML_STATUS[failure]
