"""Errors of the activation, recovery and account flows: each with a plain French message, translated where shown."""

from __future__ import annotations

from idp.core.i18n import N_, _
from idp.errors import IdpError

#: Said when an address has started too many code-based démarches in an hour (A03, A18).
TOO_MANY_STARTS = N_("Trop de demandes depuis cette connexion. Réessayez dans une heure.")
_HOUR, _DAY = 3600, 86400


class FlowExpired(IdpError):
    """The transaction is unknown, belongs to another browser, has expired or has ended."""

    code = "flow_expired"
    title = N_("Démarche expirée")
    description = N_("Cette démarche a expiré ou a été ouverte dans un autre navigateur. Recommencez depuis le début.")
    http_status = 400


class StepNotAllowed(IdpError):
    """A step was posted out of order, replayed, or for something the transaction does not hold (A09)."""

    code = "step_not_allowed"
    title = N_("Étape non autorisée")
    description = N_("Cette étape n'est pas disponible : reprenez la démarche là où vous l'aviez laissée.")
    http_status = 403


class FormProblem(IdpError):
    """What was typed cannot be used; the page is shown again with the reasons.

    ``fields`` maps a form field's name to the reason written next to it (the page also lists them at the
    top); ``reasons`` are about the form as a whole (and, for older callers, every reason)."""

    code = "form_problem"
    description = N_("Vérifiez les informations saisies.")

    def __init__(self, reasons: list[str], fields: dict[str, str] | None = None) -> None:
        self.fields = dict(fields or {})
        self.reasons = reasons or list(self.fields.values())
        super().__init__(" ".join(self.reasons))


class CodeRejected(IdpError):
    """The code is wrong (attempts remain) or expired."""

    code = "code_rejected"
    description = N_("Code incorrect. Vérifiez le code reçu et réessayez.")


class CodeExpired(CodeRejected):
    """The code's 30 minutes are over (or it was replaced by a newer one)."""

    code = "code_expired"
    description = N_("Code expiré, demandez-en un nouveau.")


class TooManyAttempts(IdpError):
    """Five wrong codes, or three wrong birth dates: the transaction is cancelled (A04, A08)."""

    code = "too_many_attempts"
    title = N_("Trop d'essais")
    description = N_("Trop d'essais incorrects : pour votre sécurité, cette démarche est annulée. "
                   "Recommencez depuis le début.")
    http_status = 403


class SendLimited(IdpError):
    """A resend asked too early or too often (A03): the person is told how long to wait."""

    code = "send_limited"
    title = N_("Trop de demandes")
    description = N_("Trop de demandes. Réessayez dans quelques minutes.")
    http_status = 429

    def __init__(self, retry_after_seconds: int, description: str | None = None) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__(description)


class AlreadyActivated(IdpError):
    """The register records were claimed by another account meanwhile (A10)."""

    code = "already_activated"
    title = N_("Compte déjà activé")
    description = N_("Compte déjà activé, connectez-vous avec votre identifiant et votre mot de passe.")
    http_status = 409


class ContactChangeRefused(SendLimited):
    """A code « Mon compte » will not send (issue 21): too many from this address, this account or to this
    destination, or the hourly SMS budget of account changes spent. The page says why and what to do."""

    def __init__(self, reason: str, sms: bool) -> None:
        self.reason = reason
        wait, text = _CONTACT_REFUSALS[reason, sms]
        super().__init__(wait, _(text))


_ACCOUNT_LIMIT_SMS = N_("Vous avez déjà demandé le nombre maximal de codes de confirmation aujourd'hui. Réessayez "
                        "demain : votre numéro actuel reste valable d'ici là.")
_ACCOUNT_LIMIT_MAIL = N_("Vous avez déjà demandé le nombre maximal de codes de confirmation aujourd'hui. Réessayez "
                         "demain : votre adresse actuelle reste valable d'ici là.")
_RECIPIENT_LIMIT_SMS = N_("Ce numéro a déjà reçu le nombre maximal de codes aujourd'hui. Vérifiez ce que vous avez "
                          "saisi, ou réessayez demain.")
_RECIPIENT_LIMIT_MAIL = N_("Cette adresse a déjà reçu le nombre maximal de codes aujourd'hui. Vérifiez ce que vous "
                           "avez saisi, ou réessayez demain.")
_SMS_BUDGET_SPENT = N_("Trop de changements de numéro sont demandés en ce moment : l'envoi des SMS de confirmation "
                       "est suspendu pour une heure au plus. Réessayez plus tard ; votre numéro actuel reste valable.")
#: (reason, by SMS) → (seconds to wait, the text the page shows); whole sentences, so that each is translated.
_CONTACT_REFUSALS = {
    ("address", True): (_HOUR, TOO_MANY_STARTS), ("address", False): (_HOUR, TOO_MANY_STARTS),
    ("account", True): (_DAY, _ACCOUNT_LIMIT_SMS), ("account", False): (_DAY, _ACCOUNT_LIMIT_MAIL),
    ("recipient", True): (_DAY, _RECIPIENT_LIMIT_SMS), ("recipient", False): (_DAY, _RECIPIENT_LIMIT_MAIL),
    ("budget", True): (_HOUR, _SMS_BUDGET_SPENT), ("budget", False): (_HOUR, _SMS_BUDGET_SPENT),
}
