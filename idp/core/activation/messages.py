"""The short plain-French texts sent by SMS and e-mail (never logged: they carry codes and identifiers)."""

from __future__ import annotations

import datetime as dt


def activation_code(product: str, code: str, minutes: int) -> str:
    """SMS carrying the activation code."""
    return (f"{product} : votre code de sécurité est {code} (valable {minutes} min). "
            "Ne le communiquez à personne.")


def reset_code(product: str, code: str, minutes: int) -> str:
    """SMS or e-mail body carrying a password reset code."""
    return (f"{product} : code pour choisir un nouveau mot de passe : {code} (valable {minutes} min). "
            "Si vous n'avez rien demandé, ignorez ce message.")


def contact_code(product: str, code: str, minutes: int) -> str:
    """Code confirming a new phone number or e-mail address."""
    return (f"{product} : code pour confirmer cette nouvelle coordonnée : {code} (valable {minutes} min). "
            "Si vous n'avez rien demandé, ignorez ce message.")


def identifiers(product: str, found: list[tuple[str, str]]) -> str:
    """The identifiers of the accounts using this phone number or address."""
    listed = " ; ".join(f"{ident} ({label})" for ident, label in found)
    if len(found) == 1:
        return f"{product} : votre identifiant est {listed}."
    return f"{product} : vos identifiants sont {listed}."


def password_changed(product: str, identifier: str, at: dt.datetime) -> str:
    """Notice after a password change or reset (W12, A15)."""
    return (f"{product} : le mot de passe du compte {identifier} a été modifié le {at:%d/%m/%Y à %H:%M} (UTC). "
            "Si ce n'est pas vous, contactez votre établissement.")


def login_locked(product: str, identifier: str, at: dt.datetime) -> str:
    """Notice after a lockout (A22): sent at most once per lockout window."""
    return (f"{product} : tentatives de connexion échouées sur le compte {identifier} le {at:%d/%m/%Y à %H:%M} "
            "(UTC). La connexion est suspendue quelques minutes. Si ce n'est pas vous, choisissez un nouveau "
            "mot de passe avec « Mot de passe oublié ».")


def contact_changed(product: str, identifier: str, what: str) -> str:
    """Notice to the old address or number after a change (A17)."""
    return (f"{product} : {what} du compte {identifier} vient d'être modifié(e). "
            "Si ce n'est pas vous, contactez votre établissement.")


def email_confirmation(product: str, link: str, hours: int) -> tuple[str, str]:
    """Subject and body of the e-mail confirmation link."""
    return (f"{product} : confirmez votre adresse électronique",
            f"Bonjour,\n\nPour confirmer votre adresse électronique, ouvrez ce lien (valable {hours} h) :\n\n"
            f"{link}\n\nSi vous n'avez rien demandé, ignorez ce message.\n")
