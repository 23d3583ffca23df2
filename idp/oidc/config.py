"""Lifetimes and limits of the OpenID Connect provider (SECURITY §3 defaults)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from idp.core.authn.model import AuthMethod


@dataclass(frozen=True)
class OidcPolicy:
    """What the provider issues and accepts; tests and benchmarks may pass their own."""

    code_ttl: dt.timedelta = dt.timedelta(seconds=60)
    access_token_ttl: dt.timedelta = dt.timedelta(minutes=10)
    id_token_ttl: dt.timedelta = dt.timedelta(minutes=10)
    refresh_idle: dt.timedelta = dt.timedelta(hours=24)
    refresh_absolute: dt.timedelta = dt.timedelta(days=14)
    #: A client assertion may live at most this long (RFC 7523; SECURITY O10).
    assertion_max_lifetime: dt.timedelta = dt.timedelta(minutes=5)
    #: Accepted clock difference for JWTs we verify (SECURITY R08: 30 s default, 60 s maximum).
    clock_skew: dt.timedelta = dt.timedelta(seconds=30)
    consent_ttl: dt.timedelta = dt.timedelta(minutes=15)
    logout_token_ttl: dt.timedelta = dt.timedelta(minutes=2)
    backchannel_timeout_seconds: float = 2.0


#: ``acr`` per way of logging in (discovery ``acr_values_supported``).
ACR = {
    AuthMethod.PASSWORD: "urn:idp:acr:password",
    AuthMethod.PROVISIONAL: "urn:idp:acr:provisional",
    AuthMethod.SMS: "urn:idp:acr:sms",
    AuthMethod.FEDERATION: "urn:idp:acr:federation",
}

#: ``amr`` values (RFC 8176 where one exists).
AMR = {
    AuthMethod.PASSWORD: ("pwd",),
    AuthMethod.PROVISIONAL: ("pwd",),
    AuthMethod.SMS: ("sms",),
    AuthMethod.FEDERATION: ("fed",),
}
