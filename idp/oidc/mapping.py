"""Wire forms of the OIDC front-end: each ``AuthnFailure`` becomes one OAuth/OIDC authorization error.

A trusted request that fails is answered at the *registered* ``redirect_uri`` with ``error``, ``state`` and
``iss`` (RFC 6749 §4.1.2.1, RFC 9207); an untrusted one never is (``OidcUntrusted``, a page in the person's
language: its title and description are catalogue keys, translated when rendered).
"""

from __future__ import annotations

from authlib.oauth2.rfc6749.errors import AccessDeniedError, OAuth2Error
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError

from idp.core.i18n import N_
from idp.errors import AuthnFailure, UntrustedRequest

OIDC_ERROR: dict[AuthnFailure, type[OAuth2Error]] = {
    AuthnFailure.PASSIVE_LOGIN_REQUIRED: LoginRequiredError,
    AuthnFailure.USER_CANCELLED: AccessDeniedError,
    AuthnFailure.ACCOUNT_UNAVAILABLE: AccessDeniedError,
    AuthnFailure.REQUEST_EXPIRED: LoginRequiredError,
}

#: ``prompt=none`` when the person would have to consent first (OIDC Core 3.1.2.6).
CONSENT_REQUIRED = ConsentRequiredError


def oauth_error(failure: AuthnFailure, redirect_uri: str, state: str | None) -> OAuth2Error:
    """The authorization error for a failed login, addressed to the registered redirect URI."""
    return OIDC_ERROR[failure](redirect_uri=redirect_uri, state=state)


class OidcUntrusted(UntrustedRequest):
    """An authorization or logout request we cannot answer at its return address: a page, no redirect."""

    title = N_("Demande refusée")


class UnknownClient(OidcUntrusted):
    """``client_id`` missing, unknown or disabled (SECURITY O02)."""

    code = "unknown_client"
    title = N_("Application inconnue")
    description = N_("Le service qui vous a envoyé ici n'est pas enregistré auprès de nous. "
                     "Retournez sur le site du service et signalez-lui ce problème.")


class InvalidRedirectUri(OidcUntrusted):
    """``redirect_uri`` missing or not byte-identical to a registered one (SECURITY O01, O02)."""

    code = "invalid_redirect_uri"
    title = N_("Adresse de retour non enregistrée")
    description = N_("L'adresse de retour demandée par ce service (redirect_uri invalide) ne fait pas partie de "
                     "celles qu'il a enregistrées. Par sécurité, nous ne vous y renvoyons pas. Retournez sur le "
                     "site du service et signalez-lui ce problème.")
