"""Small named checks deciding how an authorization request meets the common login (OIDC Core 3.1.2.1).

Kept out of the views (STYLE: "prompt branching" belongs in small policy checks, like node-oidc-provider's
``check_max_age``): ``prompt``, ``max_age`` and ``id_token_hint`` become the common login's ``force_authn``
and ``passive`` flags.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from authlib.oauth2.rfc6749.errors import InvalidRequestError

KNOWN_PROMPTS = frozenset({"none", "login", "consent", "select_account"})


@dataclass(frozen=True)
class LoginDemand:
    """What the request asks of the login: re-authenticate, stay silent, ask consent again."""

    force_authn: bool
    passive: bool
    consent: bool


def parse_prompt(value: str | None) -> frozenset[str]:
    """``prompt`` values; ``none`` with anything else is ``invalid_request`` (OIDC Core 3.1.2.1)."""
    prompts = frozenset((value or "").split())
    if "none" in prompts and len(prompts) > 1:
        raise InvalidRequestError("prompt=none cannot be combined with other values.")
    return prompts & KNOWN_PROMPTS


def parse_max_age(value: str | None) -> int | None:
    """``max_age`` in seconds, or None; anything but a non-negative integer is ``invalid_request``."""
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 10:
        raise InvalidRequestError("max_age must be a non-negative integer.")
    return int(value)


def max_age_exceeded(max_age: int | None, authn_instant: dt.datetime | None, now: dt.datetime) -> bool:
    """The existing login is older than ``max_age`` allows (oidcc-max-age-1)."""
    if max_age is None or authn_instant is None:
        return False
    return (now - authn_instant).total_seconds() > max_age


def login_demand(prompts: frozenset[str], too_old: bool, hint_mismatch: bool) -> LoginDemand:
    """Combine the checks into the flags the common login takes."""
    passive = "none" in prompts
    return LoginDemand(force_authn=not passive and ("login" in prompts or too_old or hint_mismatch),
                       passive=passive, consent="consent" in prompts)
