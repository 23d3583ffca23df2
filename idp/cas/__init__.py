"""CAS 3.0 server front-end: ``/cas/login``, ``/cas/logout``, the validation endpoints and ``/cas/proxy``.

``install(services)`` plugs it into the common login: the front-end in ``services.frontends["cas"]``, the
server in ``services.extras["cas"]`` and the single-logout hook in ``services.extras["logout_hooks"]``.
The TGT is the common SSO session (``__Host-sso`` cookie): there is no separate CAS cookie.
Tickets live in Redis when ``[redis] url`` is set, else in the database (``idp.storage.cas_tickets``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Blueprint, current_app, url_for

from idp.core.authn.model import AuthnRequest
from idp.wiring import Services

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class CasFrontend:
    """The ``ProtocolFrontend`` of CAS."""

    name = "cas"

    def blueprint(self) -> Blueprint:
        """The ``/cas`` routes."""
        from idp.cas.views import bp

        return bp

    def __init__(self, services: Services) -> None:
        self._services = services

    def back_channel(self) -> dict[str, WsgiApp]:
        """The validation endpoints: WSGI handlers, not Flask views (``idp.cas.validation``)."""
        from idp.cas.validation import routes

        server = self._services.extras["cas"]
        settings = self._services.settings.server
        return routes(server, settings.max_body_bytes, settings.outage_retry_after_seconds)

    def resume_url(self, request_id: str) -> str:
        """After the common login, ``/cas/resume/<id>`` issues the ticket."""
        return url_for("cas.resume", request_id=request_id)

    def answer_targets(self, req: AuthnRequest) -> list[str]:
        """The service the ticket is sent to (CAS 3.0 §2.2.4), as long as it is still registered."""
        from idp.cas.registry import UnknownService

        try:
            url, _ = current_app.extensions["idp"].extras["cas"].resolve(str(req.payload.get("service", "")))
        except UnknownService:
            return []
        return [url.normalised]


def install(services: Services) -> None:
    """Register the CAS front-end, its server and its single-logout hook."""
    from idp.cas.server import CasServer
    from idp.cas.slo import SingleLogout

    services.frontends["cas"] = CasFrontend(services)
    services.extras["cas"] = CasServer(services)
    slo = SingleLogout(services)
    services.extras["cas_slo"] = slo
    services.extras["logout_hooks"].append(slo)
