"""The CAS request parameters that change what ``/cas/login`` and the validations may do (CAS 3.0 §2.1.1,
§2.4.1, §2.5.1): parsed here once, for the Flask views and the validations alike.

CAS 3.0 §2.1.1: "if this parameter is set, single sign-on will be bypassed". A boolean parameter is therefore
*set* whenever it is present — ``renew``, ``renew=``, ``renew=true``, ``renew=1``, ``renew=yes`` — except with
the explicit value ``false`` (any case, surrounding spaces ignored). Reading an empty value as "not set" let
``renew`` (and ``renew=``) be answered from the SSO session without the password (issue 21, item 5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


def flag(value: str | None) -> bool:
    """A CAS boolean parameter: set when present with any value but an explicit ``false`` (§2.1.1)."""
    return value is not None and value.strip().lower() != "false"


@dataclass(frozen=True)
class LoginParameters:
    """What a ``/cas/login`` request asks (§2.1.1): the service, ``renew``, ``gateway`` and ``method``."""

    service: str
    renew: bool
    gateway: bool
    method: str  # "GET" (a redirect with the ticket) or what the service asked, upper-cased

    @property
    def passive(self) -> bool:
        """``gateway`` without ``renew`` (§2.1.1: the two together are undefined; ``renew`` wins, the safer)."""
        return self.gateway and not self.renew



def login_parameters(values: Mapping[str, str]) -> LoginParameters:
    """The ``/cas/login`` parameters of a query (first value of a repeated parameter, as werkzeug reads it)."""
    return LoginParameters(service=values.get("service", ""), renew=flag(values.get("renew")),
                           gateway=flag(values.get("gateway")), method=values.get("method", "GET").upper())
