"""FranceConnect-style federation, the client side: the HTTP adapter of the upstream provider and the wiring.

``install(services)`` (called by ``build_services`` when ``[federation] enabled``) puts the
``FederationService`` in ``services.extras["federation"]``; the screens are in ``idp.web.federation``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from idp.core.federation.enrolment import FederatedEnrolment
from idp.core.federation.service import FederationService
from idp.federation.client import UpstreamClient, UpstreamConfig

if TYPE_CHECKING:
    from idp.wiring import Services

CALLBACK_PATH = "/franceconnect/retour"
LOGOUT_RETURN_PATH = "/franceconnect/deconnexion"


def upstream_config(services: Services) -> UpstreamConfig:
    """The pinned registration, from ``[federation]`` and the client secret."""
    settings = services.settings
    f = settings.federation
    base = settings.server.base_url.rstrip("/")
    return UpstreamConfig(
        issuer=f.issuer, authorization_endpoint=f.authorization_endpoint, token_endpoint=f.token_endpoint,
        userinfo_endpoint=f.userinfo_endpoint, end_session_endpoint=f.end_session_endpoint, jwks_uri=f.jwks_uri,
        client_id=f.client_id, client_secret=settings.federation_client_secret,
        redirect_uri=base + CALLBACK_PATH, post_logout_redirect_uri=base + LOGOUT_RETURN_PATH,
        scope=" ".join(f.scopes), acr_values=f.acr_values, algorithms=f.algorithms,
        timeout_seconds=float(f.timeout_seconds), clock_skew_seconds=f.clock_skew_seconds,
        jwks_refetch_seconds=f.jwks_refetch_seconds, breaker_failures=f.breaker_failures,
        breaker_open_seconds=f.breaker_open_seconds)


def install(services: Services, upstream: UpstreamClient | None = None) -> FederationService:
    """Build the federation service (tests may pass their own client, e.g. with a shorter timeout)."""
    from idp.storage.federation_store import SqlFederationStore

    def links(uow: object) -> SqlFederationStore:
        return SqlFederationStore(uow.session)  # type: ignore[attr-defined]

    reauth = services.account_settings.check_password
    kit = services.enrolment.kit
    enrolment = FederatedEnrolment(kit, services.accounts, services.hasher, services.flow, links, reauth)
    client = upstream or UpstreamClient(upstream_config(services), clock=lambda: services.clock.now().timestamp())
    service = FederationService(kit, services.flow, client, links, enrolment, reauth,
                                dt.timedelta(minutes=services.settings.federation.state_ttl_minutes))
    services.extras["federation"] = service
    return service
