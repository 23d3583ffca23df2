"""SAML errors: requests we cannot trust get a page in the person's language (never a POST anywhere); requests we
can trust but must refuse get a SAML status at the ACS taken from metadata (SECURITY conventions).

Titles and descriptions are French catalogue keys (``N_``), translated when the page is rendered; each description
says what to do next, since the person cannot fix the service's request themselves."""

from __future__ import annotations

from idp.core.i18n import N_
from idp.errors import IdpError, UntrustedRequest

#: Texts raised at more than one place.
TOO_LARGE = N_("Requête invalide : la demande envoyée par le service est trop volumineuse. Retournez sur le "
               "service et recommencez ; si le problème persiste, signalez-le à votre établissement.")
RELAY_STATE_TOO_LONG = N_("Requête invalide : le paramètre RelayState est trop long. Retournez sur le service et "
                          "recommencez ; si le problème persiste, signalez-le à votre établissement.")
LOGOUT_EXPIRED = N_("Cette déconnexion a expiré. Fermez le navigateur pour terminer votre session.")


class SamlInvalidRequest(IdpError):
    """The message is malformed, too large, carries a DTD, or was not meant for us (400)."""

    code = "saml_invalid_request"
    title = N_("Demande de connexion illisible")
    description = N_("Requête invalide : la demande de connexion envoyée par le service n'est pas lisible. "
                     "Retournez sur le service et recommencez ; si le problème persiste, signalez-le à votre "
                     "établissement.")
    http_status = 400


class SamlUnknownServiceProvider(UntrustedRequest):
    """The issuer has no registered metadata (SECURITY S11)."""

    code = "saml_unknown_sp"
    description = N_("Cette demande de connexion provient d'un service qui n'est pas enregistré. Retournez sur le "
                     "site du service et signalez-lui ce problème.")


class SamlUntrustedEndpoint(UntrustedRequest):
    """The ACS URL, index or binding is not in the SP's metadata (SECURITY S10)."""

    code = "saml_untrusted_acs"
    description = N_("L'adresse de retour demandée par le service n'est pas celle qui a été enregistrée : la "
                     "connexion est refusée. Retournez sur le site du service et signalez-lui ce problème.")


class SamlUnsigned(IdpError):
    """The SP's metadata requires signed requests and this one is not (SECURITY S01)."""

    code = "saml_unsigned"
    title = N_("Demande de connexion refusée")
    description = N_("Requête SAML non signée : ce service doit signer ses demandes de connexion. Retournez sur "
                     "le site du service et signalez-lui ce problème.")
    http_status = 403


class SamlBadSignature(IdpError):
    """A signature is present but invalid, wrapped, or made with a refused algorithm (S02–S06)."""

    code = "saml_bad_signature"
    title = N_("Demande de connexion refusée")
    description = N_("La signature de la demande envoyée par le service est invalide. Retournez sur le site du "
                     "service et recommencez ; si le problème persiste, signalez-le à votre établissement.")
    http_status = 403


class SamlReplay(IdpError):
    """The request ID was already used (SECURITY S14)."""

    code = "saml_replay"
    title = N_("Demande de connexion déjà utilisée")
    description = N_("Cette demande de connexion a déjà été utilisée. Retournez sur le service pour recommencer.")
    http_status = 400


class SamlRequestDenied(IdpError):
    """A trusted request the IdP refuses: answered with a SAML status at the SP's registered ACS."""

    code = "saml_request_denied"
    description = N_("La demande de connexion a été refusée.")

    def __init__(self, status: str, sub_status: str | None, message: str = "") -> None:
        self.status = status
        self.sub_status = sub_status
        self.message = message
        super().__init__()
