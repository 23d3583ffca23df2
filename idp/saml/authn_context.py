"""``RequestedAuthnContext`` (SAML Core 3.3.2.2.1) and the ``AuthnContextClassRef`` of our answers.

A login here is a password over TLS (``PasswordProtectedTransport``), a one-time code sent to a mobile
phone at activation (``MobileOneFactorUnregistered``) or a login at a federated identity provider
(``PreviousSession``). A request is checked against those three before anything is shown: when none can
satisfy it, the SP gets ``Responder/NoAuthnContext`` at once; otherwise the classes that satisfy it travel
with the request, and the answer carries the class of the session only if it is one of them (else a fresh
password login is asked for when that satisfies, or ``NoAuthnContext`` is answered).

"Stronger" is not defined by the standard; this IdP ranks the classes below (a one-time code to a mobile
and a password over TLS are both one factor). Classes we do not know cannot be compared: they only match
``exact``ly, which we never do.
"""

from __future__ import annotations

from saml2.samlp import STATUS_NO_AUTHN_CONTEXT, STATUS_REQUESTER, STATUS_RESPONDER

from idp.core.authn.model import AuthMethod

CLASSES = "urn:oasis:names:tc:SAML:2.0:ac:classes:"
UNSPECIFIED = CLASSES + "unspecified"
PREVIOUS_SESSION = CLASSES + "PreviousSession"
PASSWORD = CLASSES + "Password"
PASSWORD_PROTECTED_TRANSPORT = CLASSES + "PasswordProtectedTransport"
MOBILE_ONE_FACTOR = CLASSES + "MobileOneFactorUnregistered"

#: How each way of logging in is announced.
AUTHN_CLASSES: dict[AuthMethod, str] = {
    AuthMethod.PASSWORD: PASSWORD_PROTECTED_TRANSPORT,
    AuthMethod.PROVISIONAL: PASSWORD_PROTECTED_TRANSPORT,
    AuthMethod.SMS: MOBILE_ONE_FACTOR,
    AuthMethod.FEDERATION: PREVIOUS_SESSION,
}
#: The classes this IdP can produce, and the one a fresh login on the login page produces.
PRODUCED = (PASSWORD_PROTECTED_TRANSPORT, MOBILE_ONE_FACTOR, PREVIOUS_SESSION)
FRESH_LOGIN = PASSWORD_PROTECTED_TRANSPORT

#: Strength ranks of the classes we can compare (SAML Authn Context 3.4); higher is stronger.
RANK: dict[str, int] = {
    UNSPECIFIED: 0, CLASSES + "InternetProtocol": 1, CLASSES + "InternetProtocolPassword": 2,
    PREVIOUS_SESSION: 1, PASSWORD: 2, PASSWORD_PROTECTED_TRANSPORT: 3, MOBILE_ONE_FACTOR: 3,
    CLASSES + "MobileOneFactorContract": 3, CLASSES + "Kerberos": 3, CLASSES + "SecureRemotePassword": 3,
    CLASSES + "TimeSyncToken": 4, CLASSES + "SoftwarePKI": 4, CLASSES + "TLSClient": 4, CLASSES + "X509": 4,
    CLASSES + "MobileTwoFactorUnregistered": 4, CLASSES + "MobileTwoFactorContract": 4,
    CLASSES + "Smartcard": 5, CLASSES + "SmartcardPKI": 5,
}
COMPARISONS = ("exact", "minimum", "maximum", "better")


class AuthnContextRefused(Exception):
    """The request's ``RequestedAuthnContext`` cannot be met (or is malformed): a status for the SP."""

    def __init__(self, status: str, sub_status: str | None, message: str) -> None:
        super().__init__(message)
        self.status, self.sub_status, self.message = status, sub_status, message


def _satisfies(produced: str, comparison: str, requested: tuple[str, ...]) -> bool:
    if comparison == "exact":
        return produced in requested
    ranks = [RANK[r] for r in requested if r in RANK]
    if not ranks:
        return False
    rank = RANK[produced]
    if comparison == "minimum":
        return rank >= min(ranks)
    if comparison == "maximum":
        return rank <= max(ranks)
    return rank > max(ranks)  # "better": stronger than every class listed


def acceptable_classes(comparison: str | None, class_refs: tuple[str, ...], has_decl_refs: bool) -> tuple[str, ...]:
    """The classes we produce that satisfy the request, in order of preference; raise when there are none."""
    comparison = (comparison or "exact").strip()
    if comparison not in COMPARISONS:
        raise AuthnContextRefused(STATUS_REQUESTER, None, "RequestedAuthnContext : Comparison invalide")
    if not class_refs:
        # Authentication context declarations (AuthnContextDeclRef) are not supported.
        raise AuthnContextRefused(STATUS_RESPONDER, STATUS_NO_AUTHN_CONTEXT,
                                  "déclarations de contexte non prises en charge" if has_decl_refs
                                  else "RequestedAuthnContext vide")
    found = tuple(c for c in PRODUCED if _satisfies(c, comparison, class_refs))
    if not found:
        raise AuthnContextRefused(STATUS_RESPONDER, STATUS_NO_AUTHN_CONTEXT,
                                  "aucun moyen de connexion ne répond au contexte demandé")
    return found


def session_class(method: AuthMethod) -> str:
    """The ``AuthnContextClassRef`` announced for a session opened this way."""
    return AUTHN_CLASSES[method]
