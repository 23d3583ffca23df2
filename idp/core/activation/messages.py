"""The short texts sent by SMS and e-mail (never logged: they carry codes and identifiers).

Written in French and translated into the language of the page the person was on (``idp.core.i18n``); every
time is given in the families' time zone (Europe/Paris) and every e-mail has a subject.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from idp.core.i18n import _, ngettext

FAMILIES_TIME_ZONE = ZoneInfo("Europe/Paris")


def local(at: dt.datetime) -> str:
    """A moment as families read it: « 04/12/2026 à 17:05 », Europe/Paris (stored moments are UTC)."""
    moment = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    local_at = moment.astimezone(FAMILIES_TIME_ZONE)
    date, time = local_at.strftime("%d/%m/%Y"), local_at.strftime("%H:%M")
    return _("%(date)s à %(time)s", date=date, time=time)


def code_subject(product: str) -> str:
    """Subject of an e-mail carrying a code."""
    return _("%(product)s : votre code de sécurité", product=product)


def activation_code(product: str, code: str, minutes: int) -> str:
    """SMS carrying the activation code."""
    return ngettext("%(product)s : votre code de sécurité est %(code)s (valable %(n)s min). "
                    "Ne le communiquez à personne.",
                    "%(product)s : votre code de sécurité est %(code)s (valable %(n)s min). "
                    "Ne le communiquez à personne.", minutes, product=product, code=code)


def reset_code(product: str, code: str, minutes: int) -> str:
    """SMS or e-mail body carrying a password reset code."""
    return ngettext("%(product)s : code pour choisir un nouveau mot de passe : %(code)s (valable %(n)s min). "
                    "Si vous n'avez rien demandé, ignorez ce message.",
                    "%(product)s : code pour choisir un nouveau mot de passe : %(code)s (valable %(n)s min). "
                    "Si vous n'avez rien demandé, ignorez ce message.", minutes, product=product, code=code)


def contact_code(product: str, code: str, minutes: int) -> str:
    """Code confirming a new phone number or e-mail address."""
    return ngettext("%(product)s : code pour confirmer cette nouvelle coordonnée : %(code)s (valable %(n)s min). "
                    "Si vous n'avez rien demandé, ignorez ce message.",
                    "%(product)s : code pour confirmer cette nouvelle coordonnée : %(code)s (valable %(n)s min). "
                    "Si vous n'avez rien demandé, ignorez ce message.", minutes, product=product, code=code)


def identifiers(product: str, found: list[tuple[str, str]]) -> str:
    """The identifiers of the accounts using this phone number or address."""
    listed = " ; ".join(f"{ident} ({_(label)})" for ident, label in found)
    if len(found) == 1:
        return _("%(product)s : votre identifiant est %(listed)s.", product=product, listed=listed)
    return _("%(product)s : vos identifiants sont %(listed)s.", product=product, listed=listed)


def identifiers_subject(product: str) -> str:
    """Subject of the e-mail giving the identifiers."""
    return _("%(product)s : votre identifiant", product=product)


def password_changed(product: str, identifier: str, at: dt.datetime) -> str:
    """Notice after a password change or reset (W12, A15)."""
    return _("%(product)s : le mot de passe du compte %(identifier)s a été modifié le %(when)s. "
             "Si ce n'est pas vous, contactez votre établissement.", product=product, identifier=identifier,
             when=local(at))


def password_changed_subject(product: str) -> str:
    """Subject of the password-change notice."""
    return _("%(product)s : mot de passe modifié", product=product)


def login_locked(product: str, identifier: str, at: dt.datetime) -> str:
    """Notice after a lockout (A22): sent at most once per lockout window."""
    return _("%(product)s : tentatives de connexion échouées sur le compte %(identifier)s le %(when)s. "
             "La connexion est suspendue quelques minutes. Si ce n'est pas vous, choisissez un nouveau "
             "mot de passe avec « Mot de passe oublié ».", product=product, identifier=identifier, when=local(at))


def login_locked_subject(product: str) -> str:
    """Subject of the lockout notice."""
    return _("%(product)s : tentatives de connexion échouées", product=product)


def contact_changed(product: str, identifier: str, phone: bool) -> tuple[str, str]:
    """Subject and text of the notice to the old address or number after a change (A17)."""
    if phone:
        return (_("%(product)s : numéro de téléphone modifié", product=product),
                _("%(product)s : le numéro de téléphone du compte %(identifier)s vient d'être modifié. "
                  "Si ce n'est pas vous, contactez votre établissement.", product=product, identifier=identifier))
    return (_("%(product)s : adresse mail modifiée", product=product),
            _("%(product)s : l'adresse mail du compte %(identifier)s vient d'être modifiée. "
              "Si ce n'est pas vous, contactez votre établissement.", product=product, identifier=identifier))


def email_confirmation(product: str, link: str, hours: int) -> tuple[str, str]:
    """Subject and body of the e-mail confirmation link."""
    return (_("%(product)s : confirmez votre adresse mail", product=product),
            ngettext("Bonjour,\n\nPour confirmer votre adresse mail, ouvrez ce lien (valable %(n)s heure) :\n\n"
                     "%(link)s\n\nSi vous n'avez rien demandé, ignorez ce message.\n",
                     "Bonjour,\n\nPour confirmer votre adresse mail, ouvrez ce lien (valable %(n)s heures) :\n\n"
                     "%(link)s\n\nSi vous n'avez rien demandé, ignorez ce message.\n", hours, link=link))
