"""Every failure the CAS front-end can meet, and its wire form (CAS 3.0 §2.5.3, §2.7.3).

``CAS_CODE`` gives each ``TicketProblem`` its error code and a description for the service's developers;
``LOGIN_FAILURE`` says what ``/cas/login`` does for each ``AuthnFailure`` of the common login: go back to the
(registered) service without a ticket, as ``gateway`` requires (§2.1.1), or show a page.
"""

from __future__ import annotations

import enum

from idp.cas.tickets import TicketProblem
from idp.errors import AuthnFailure

CAS_CODE: dict[TicketProblem, tuple[str, str]] = {
    TicketProblem.MISSING_PARAMETER: ("INVALID_REQUEST", "Paramètres obligatoires absents (ticket et service, "
                                      "ou pgt et targetService)."),
    TicketProblem.UNSUPPORTED_FORMAT: ("INVALID_REQUEST", "Format non pris en charge : XML ou JSON."),
    TicketProblem.UNKNOWN_TICKET: ("INVALID_TICKET", "Ticket inconnu ou déjà utilisé."),
    TicketProblem.EXPIRED: ("INVALID_TICKET", "Ticket expiré."),
    TicketProblem.WRONG_SERVICE: ("INVALID_SERVICE", "Le service ne correspond pas à celui du ticket ; "
                                  "le ticket est invalidé."),
    TicketProblem.NOT_FROM_NEW_LOGIN: ("INVALID_TICKET", "renew demandé mais le ticket ne provient pas d'une "
                                       "nouvelle saisie des identifiants."),
    TicketProblem.PROXY_TICKET_REFUSED: ("INVALID_TICKET_SPEC", "Ticket de proxy présenté à un point de "
                                         "validation de tickets de service ; utilisez proxyValidate."),
    TicketProblem.PROXY_NOT_ALLOWED: ("UNAUTHORIZED_SERVICE_PROXY", "Ce service n'est pas autorisé à "
                                      "utiliser le mode proxy."),
    TicketProblem.BAD_PROXY_CALLBACK: ("INVALID_PROXY_CALLBACK", "L'adresse de rappel du proxy (pgtUrl) doit "
                                       "être en https sur l'hôte du service, avec un certificat valide, et "
                                       "répondre 200."),
    TicketProblem.UNKNOWN_PGT: ("INVALID_TICKET", "Ticket d'octroi de proxy inconnu ou expiré."),
    TicketProblem.UNAUTHORIZED_TARGET: ("UNAUTHORIZED_SERVICE", "Le service cible n'est pas enregistré."),
    TicketProblem.OUTAGE: ("INTERNAL_ERROR", "Service momentanément indisponible, réessayez."),
}


class LoginFailureAction(enum.Enum):
    """What ``/cas/login`` does when the common login cannot answer."""

    RETURN_WITHOUT_TICKET = "return_without_ticket"
    ERROR_PAGE = "error_page"


LOGIN_FAILURE: dict[AuthnFailure, LoginFailureAction] = {
    AuthnFailure.PASSIVE_LOGIN_REQUIRED: LoginFailureAction.RETURN_WITHOUT_TICKET,
    AuthnFailure.USER_CANCELLED: LoginFailureAction.RETURN_WITHOUT_TICKET,
    AuthnFailure.ACCOUNT_UNAVAILABLE: LoginFailureAction.ERROR_PAGE,
    AuthnFailure.REQUEST_EXPIRED: LoginFailureAction.ERROR_PAGE,
}
