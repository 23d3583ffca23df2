"""What a protocol front-end offers the common login: a name and where to resume a request after login."""

from __future__ import annotations

from typing import Protocol

from flask import Blueprint


class ProtocolFrontend(Protocol):
    """A protocol (SAML, OIDC, CAS, or the portal itself) plugged into the common login."""

    name: str

    def blueprint(self) -> Blueprint:
        """The routes of this protocol."""
        ...

    def resume_url(self, request_id: str) -> str:
        """Where the browser goes once the person has logged in for ``request_id``."""
        ...
