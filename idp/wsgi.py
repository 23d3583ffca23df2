"""WSGI entry point for gunicorn: ``gunicorn 'idp.wsgi:app'`` (configuration from IDP_CONFIG)."""

from __future__ import annotations

from idp import create_app

app = create_app()
