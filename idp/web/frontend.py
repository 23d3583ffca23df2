"""What a protocol front-end offers the common login: a name and where to resume a request after login."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from flask import Blueprint

from idp.core.authn.model import AuthnRequest


class ProtocolFrontend(Protocol):
    """A protocol (SAML, OIDC, CAS, or the portal itself) plugged into the common login."""

    name: str

    def blueprint(self) -> Blueprint:
        """The routes of this protocol."""
        ...

    def resume_url(self, request_id: str) -> str:
        """Where the browser goes once the person has logged in for ``request_id``."""
        ...

    def answer_targets(self, req: AuthnRequest) -> Sequence[str]:
        """The registered URLs the answer to ``req`` is sent to (its origins join the CSP ``form-action`` of
        the pages of that request, ``idp.web.form_targets``); empty when the answer stays on our pages."""
        ...


def completing_protocols(frontends: dict[str, ProtocolFrontend]) -> frozenset[str]:
    """Front-ends that need nothing from ``resume`` (attribute ``completes_at_login = True``, the portal): the
    password login completes their request itself and sends the browser to their ``completed_url()``."""
    return frozenset(name for name, f in frontends.items() if getattr(f, "completes_at_login", False))
