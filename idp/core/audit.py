"""Audit trail helpers: events are recorded through the ``AuditLog`` port, with personal data masked."""

from __future__ import annotations

import re

from idp.core.ports import AuditEvent

#: Event names used across the identity provider (one place, so the staff console can list them).
LOGIN_SUCCESS = "login.success"
LOGIN_FAILURE = "login.failure"
LOGIN_LOCKED = "login.locked"
LOGIN_THROTTLED = "login.throttled"
#: The right password typed on the other profile's form: nobody logged in, no failure counted.
LOGIN_WRONG_PROFILE = "login.wrong_profile"
LOGOUT = "logout"
ACCOUNT_CREATED = "account.created"
ACCOUNT_LOCKED = "account.locked"
ACCOUNT_UNLOCKED = "account.unlocked"
PASSWORD_SET = "account.password_set"
PASSWORD_REHASHED = "account.password_rehashed"
REGISTER_IMPORTED = "register.imported"
REGISTER_PURGED = "register.purged"

__all__ = ["AuditEvent", "mask_phone", "mask_email", "mask_identifier"]


def mask_phone(phone: str) -> str:
    """Keep only the last two digits of a phone number: ``+33612345678`` → ``06 •• •• •• 78``."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) < 4:
        return "••"
    if phone.startswith("+33") and len(digits) == 11:
        digits = "0" + digits[2:]
    head = digits[:2]
    return f"{head} •• •• •• {digits[-2:]}"


def mask_email(email: str) -> str:
    """Keep the first letter and the domain: ``marie.dupont@example.fr`` → ``m•••@example.fr``."""
    local, _, domain = email.partition("@")
    if not domain:
        return "•••"
    return f"{local[:1]}•••@{domain}"


def mask_identifier(identifier: str) -> str:
    """Cap what an unknown, typed identifier can put in the logs (it may be a mistyped password)."""
    cleaned = re.sub(r"[^a-z0-9.\-_@]", "?", identifier.lower())[:32]
    if re.fullmatch(r"[a-z]\.[a-z]{1,20}[0-9]{1,6}", cleaned):
        return cleaned
    return cleaned[:3] + "…" if len(cleaned) > 3 else cleaned
