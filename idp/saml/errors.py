"""SAML errors: requests we cannot trust get a French page (never a POST anywhere); requests we can trust
but must refuse get a SAML status at the ACS taken from metadata (SECURITY conventions)."""

from __future__ import annotations

from idp.errors import IdpError, UntrustedRequest


class SamlInvalidRequest(IdpError):
    """The message is malformed, too large, carries a DTD, or was not meant for us (400)."""

    code = "saml_invalid_request"
    description = "Requête invalide : la demande de connexion envoyée par le service n'est pas lisible."
    http_status = 400


class SamlUnknownServiceProvider(UntrustedRequest):
    """The issuer has no registered metadata (SECURITY S11)."""

    code = "saml_unknown_sp"
    description = "Cette demande de connexion provient d'un service qui n'est pas enregistré."


class SamlUntrustedEndpoint(UntrustedRequest):
    """The ACS URL, index or binding is not in the SP's metadata (SECURITY S10)."""

    code = "saml_untrusted_acs"
    description = ("L'adresse de retour demandée par le service n'est pas celle qui a été enregistrée : "
                   "la connexion est refusée.")


class SamlUnsigned(IdpError):
    """The SP's metadata requires signed requests and this one is not (SECURITY S01)."""

    code = "saml_unsigned"
    description = "Requête SAML non signée : ce service doit signer ses demandes de connexion."
    http_status = 403


class SamlBadSignature(IdpError):
    """A signature is present but invalid, wrapped, or made with a refused algorithm (S02–S06)."""

    code = "saml_bad_signature"
    description = "La signature de la demande envoyée par le service est invalide."
    http_status = 403


class SamlReplay(IdpError):
    """The request ID was already used (SECURITY S14)."""

    code = "saml_replay"
    description = "Cette demande de connexion a déjà été utilisée. Retournez sur le service pour recommencer."
    http_status = 400


class SamlRequestDenied(IdpError):
    """A trusted request the IdP refuses: answered with a SAML status at the SP's registered ACS."""

    code = "saml_request_denied"
    description = "La demande de connexion a été refusée."

    def __init__(self, status: str, sub_status: str | None, message: str = "") -> None:
        self.status = status
        self.sub_status = sub_status
        self.message = message
        super().__init__()
