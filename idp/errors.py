"""One error hierarchy for the whole identity provider.

Each error carries a stable ``code`` and a French ``description`` meant for people; every front-end (the
web pages, each protocol, the command line) maps these to its own wire form in one place.
"""

from __future__ import annotations

import enum
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from idp.core.accounts.model import Profile

from idp.core.i18n import N_


class IdpError(Exception):
    """Base of every error the identity provider raises on purpose."""

    code: str = "error"
    title: str = N_("Une erreur est survenue")
    description: str = N_("Une erreur est survenue.")
    http_status: int = 400

    def __init__(self, description: str | None = None) -> None:
        if description is not None:
            self.description = description
        super().__init__(self.description)


class ConfigurationError(IdpError):
    """The configuration file or the environment is wrong; start-up stops."""

    code = "configuration"
    description = N_("Configuration invalide.")


class ServiceUnavailable(IdpError):
    """A dependency (database, Redis, SMS gateway) is down; try again later."""

    code = "temporarily_unavailable"
    title = N_("Service momentanément indisponible")
    description = N_("Service momentanément indisponible. Merci de réessayer dans quelques minutes.")
    http_status = 503


class UntrustedRequest(IdpError):
    """The request cannot be trusted (unknown client, unregistered return address): never redirect."""

    code = "untrusted_request"
    title = N_("Application non autorisée")
    description = N_("Cette demande de connexion ne provient pas d'un service connu.")
    http_status = 400


class InvalidCredentials(IdpError):
    """Unknown identifier or wrong password: the same message for both."""

    code = "invalid_credentials"
    description = N_("Identifiant ou mot de passe incorrect.")
    http_status = 401

    def __init__(self, description: str | None = None, *, tries_left: int | None = None) -> None:
        #: Failures still free before the identifier is locked (None when not counted, e.g. a provisional check).
        self.tries_left = tries_left
        super().__init__(description)


class LoginThrottled(IdpError):
    """Too many failures for this identifier or from this network; a temporary wait applies."""

    code = "throttled"
    title = N_("Trop de tentatives")
    description = N_("Trop de tentatives de connexion. Réessayez plus tard.")
    http_status = 429

    def __init__(self, retry_after_seconds: int, description: str | None = None) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__(description)

    @property
    def retry_after_minutes(self) -> int:
        """The wait in whole minutes, at least one: what the pages tell the person."""
        return max(1, math.ceil(self.retry_after_seconds / 60))


class WrongProfile(IdpError):
    """The password is right but the account belongs to the other profile than the one chosen: nobody is
    logged in. Only raised after the password was checked, so it tells nothing to who does not know it."""

    code = "wrong_profile"
    description = "Cet identifiant n'est pas celui d'un compte de ce profil."

    def __init__(self, profile: Profile, description: str | None = None) -> None:
        #: The account's own profile, which the screen names with a link to its form.
        self.profile = profile
        super().__init__(description)


class AccountUnavailable(IdpError):
    """The account exists and the password was right, but it is locked or closed."""

    code = "account_unavailable"
    title = N_("Compte indisponible")
    description = N_("Ce compte n'est pas utilisable. Contactez votre établissement.")
    http_status = 403


class PasswordRejected(IdpError):
    """A new password breaks the policy; ``reasons`` holds one French sentence per broken rule."""

    code = "password_rejected"
    description = N_("Le mot de passe ne respecte pas les règles.")

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("Le mot de passe ne respecte pas les règles : " + " ".join(reasons))


class IdentifierTaken(IdpError):
    """The identifier an activation reserved is no longer its own: the reservation ended with its transaction
    (expired) and another account or activation took the identifier meanwhile. The flow starts again."""

    code = "identifier_taken"
    description = "L'identifiant réservé pour ce compte a été attribué entre-temps."


class NotFound(IdpError):
    """The thing asked for does not exist (or no longer does)."""

    code = "not_found"
    title = N_("Page introuvable")
    description = N_("Élément introuvable.")
    http_status = 404


class AuthnRequestExpired(IdpError):
    """The authentication request behind this page has expired or was already used."""

    code = "authn_request_expired"
    title = N_("Demande de connexion expirée")
    description = N_("Cette demande de connexion a expiré. Retournez sur le service pour recommencer.")
    http_status = 400


class CsrfError(IdpError):
    """A form arrived without its anti-forgery token, or with a wrong one."""

    code = "csrf"
    title = N_("Page expirée")
    description = N_("La page a expiré ou a été ouverte dans un autre onglet. Rechargez-la et recommencez.")
    http_status = 400


class RegisterImportError(IdpError):
    """A register file cannot be imported; details are in the validation report."""

    code = "register_import"
    description = N_("Le fichier du registre n'a pas pu être importé.")


class AuthnFailure(enum.Enum):
    """Why an authentication request could not be satisfied; each protocol maps these to its wire form."""

    PASSIVE_LOGIN_REQUIRED = "passive_login_required"
    USER_CANCELLED = "user_cancelled"
    ACCOUNT_UNAVAILABLE = "account_unavailable"
    REQUEST_EXPIRED = "request_expired"


class AuthnFailed(IdpError):
    """An authentication request ends in a failure the service provider must be told about."""

    code = "authn_failed"
    description = N_("La connexion n'a pas pu aboutir.")

    def __init__(self, failure: AuthnFailure, description: str | None = None) -> None:
        self.failure = failure
        super().__init__(description)
