"""Errors of the federation route, each with a plain French message."""

from __future__ import annotations

from idp.core.i18n import N_
from idp.errors import IdpError


class FederationRejected(IdpError):
    """The provider's answer cannot be trusted: unknown or replayed state, mix-up, bad token (F01–F04)."""

    code = "federation_rejected"
    title = N_("Connexion avec FranceConnect refusée")
    description = N_("La réponse de FranceConnect n'a pas pu être vérifiée : aucune connexion n'a été faite. "
                   "Recommencez depuis la page de connexion.")
    http_status = 400

    def __init__(self, reason: str) -> None:
        self.reason = reason  # for the logs and the audit trail, never shown
        super().__init__(self.description)


class FederationUnavailable(IdpError):
    """The provider does not answer, answers too slowly, or the circuit breaker is open (F07)."""

    code = "federation_unavailable"
    title = N_("FranceConnect est momentanément indisponible")
    description = N_("FranceConnect ne répond pas pour le moment. Vous pouvez vous connecter avec votre identifiant "
                   "et votre mot de passe, ou réessayer dans quelques minutes.")
    http_status = 503

    def __init__(self, reason: str = "") -> None:
        self.reason = reason
        super().__init__(self.description)
