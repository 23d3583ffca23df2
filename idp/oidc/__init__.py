"""OpenID Connect provider (OIDC Core 1.0, Discovery, RP-Initiated and Back-Channel Logout) on authlib.

``install(services)`` plugs it into the common login: it loads the signing keys (never generating any:
``idp init`` does), builds the authlib server, registers the ``oidc`` front-end and appends the single-logout
hook that tells OIDC clients when an SSO session ends, whichever protocol ended it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from idp.wiring import Services


def install(services: Services) -> None:
    """Register the OIDC front-end, its server and its logout hook in ``services``."""
    from idp.oidc.config import OidcPolicy
    from idp.oidc.consents import OidcConsents
    from idp.oidc.frontend import OidcFrontend
    from idp.oidc.keyset import OidcKeySet
    from idp.oidc.logout import OidcLogout
    from idp.oidc.server import OidcServer

    settings = services.settings
    keys = OidcKeySet(settings.path(settings.keys.directory))
    policy = services.extras.get("oidc_policy") or OidcPolicy()
    server = OidcServer(services, keys, policy)
    logout = OidcLogout(services, server)
    services.frontends["oidc"] = OidcFrontend(services, server)
    services.extras["oidc_logout"] = logout
    services.extras["consents"] = OidcConsents(server)
    services.extras["logout_hooks"].append(logout.session_ended)
