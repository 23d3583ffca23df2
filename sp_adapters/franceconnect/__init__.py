"""A FranceConnect-style OpenID provider (v2 behaviour) for development and tests.

``create_app(config)`` builds the Flask application; ``python -m sp_adapters.franceconnect`` runs it. It
signs with ES256 (key generated into the data directory at first start, published in its JWKS), answers
``acr`` ``eidas1``, returns userinfo as a signed JWT, ends sessions at ``session/end`` and refuses a ``state``
or ``nonce`` shorter than 32 characters, as FranceConnect does.
"""

from sp_adapters.franceconnect.app import ProviderConfig, create_app

__all__ = ["ProviderConfig", "create_app"]
