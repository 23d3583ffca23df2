"""The WSGI application, for ``idp serve`` (Granian) or any WSGI server: ``granian --interface wsgi idp.wsgi:app``
(configuration from IDP_CONFIG)."""

from __future__ import annotations

from idp import create_app

app = create_app()
