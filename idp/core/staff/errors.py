"""Errors of the staff console (French titles and descriptions; the web edge maps them once)."""

from __future__ import annotations

from idp.errors import IdpError, NotFound


class StaffLoginRequired(IdpError):
    """No live staff session: the console sends the browser to its login page."""

    code = "staff_login_required"
    title = "Connexion nécessaire"
    description = "Votre session a expiré ou vous n'êtes pas connecté : connectez-vous à la console."
    http_status = 401


class SecondFactorRequired(IdpError):
    """A password was checked but the second factor not yet: nothing of the console is shown."""

    code = "second_factor_required"
    title = "Second facteur nécessaire"
    description = "Confirmez votre connexion avec votre clé d'accès ou le code de votre application."
    http_status = 401


class EnrolmentExpired(IdpError):
    """The enrolment link is unknown, used or expired."""

    code = "staff_enrolment_expired"
    title = "Lien d'inscription expiré"
    description = ("Ce lien d'inscription n'est plus valable (déjà utilisé ou expiré). Demandez à l'opérateur "
                   "un nouveau lien.")
    http_status = 400


class StaffCredentialsRejected(IdpError):
    """Wrong e-mail or password, or a disabled staff account (same answer for all)."""

    code = "staff_invalid_credentials"
    title = "Connexion impossible"
    description = "Adresse électronique ou mot de passe incorrect."
    http_status = 401


class SecondFactorRejected(IdpError):
    """A wrong TOTP code or a passkey answer that does not verify."""

    code = "second_factor_rejected"
    title = "Code refusé"
    description = "Ce code ou cette clé d'accès n'a pas été accepté. Réessayez."
    http_status = 400


class OutOfScope(NotFound):
    """A record of a school the staff member does not belong to: answered as if it did not exist (404)."""

    code = "not_found"
    title = "Introuvable"
    description = "Cette page n'existe pas."


class ReferentOnly(IdpError):
    """A campaign asked by the secrétariat: population-wide actions belong to the school's référent."""

    code = "staff_referent_only"
    title = "Réservé au référent numérique"
    description = ("Les campagnes (changement de mot de passe obligatoire, fin des sessions) sont réservées au "
                   "référent numérique de l'établissement. Transmettez-lui la demande.")
    http_status = 403
