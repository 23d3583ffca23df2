"""SAML 2.0 identity provider front-end (issue 3): metadata, SSO, IdP-initiated SSO, single logout.

``install(services)`` is called by ``idp.wiring.install_protocols`` when ``saml`` is in ``[protocols] enabled``.
"""

from __future__ import annotations

from idp.wiring import Services


def install(services: Services) -> None:
    """Register the SAML front-end and its single-logout chain (keys are read now: fails closed, R12)."""
    from idp.saml.idp import SamlIdp

    idp = SamlIdp(services)
    services.frontends[idp.name] = idp
    services.extras.setdefault("logout_redirects", []).append(idp.slo.start_from_logout)
    services.extras.setdefault("logout_chain_targets", []).append(idp.slo.logout_targets)
