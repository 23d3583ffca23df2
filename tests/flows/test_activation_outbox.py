"""The development outbox: ``idp outbox`` reads what the outbox backends "sent"; /dev/outbox only in development."""

from __future__ import annotations

import dataclasses

import pytest
from flask.testing import FlaskClient
from test_activation_support import PHONE, Browser, flow_settings, make_family, text_of

from idp import create_app
from idp.settings import ServerSettings, Settings
from idp.wiring import Services, build_services


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    return flow_settings(base_settings)


def test_idp_outbox_shows_the_sms_and_filters_by_recipient(runner, client: FlaskClient, services: Services) -> None:
    make_family(services)
    Browser(client).start_activation()
    Browser(client).post("/identifiant-oublie", {"canal": "mail", "courriel": "x@example.fr"})
    result = runner("outbox", "--to", PHONE)  # delivers what is queued first, then lists
    assert result.exit_code == 0, result.output
    assert f"sms → {PHONE}" in result.output and "code de sécurité est" in result.output
    assert runner("outbox", "--to", "+33600000000").output == ""


def test_dev_outbox_page_only_in_development(client: FlaskClient, services: Services, settings: Settings,
                                            clean_db, clock) -> None:
    make_family(services)
    Browser(client).start_activation()
    services.delivery.run_pending()
    page = client.get("/dev/outbox")
    assert page.status_code == 200 and "code de sécurité est" in text_of(page)
    production = dataclasses.replace(settings, server=dataclasses.replace(settings.server, development=False))
    app = create_app(production, build_services(production, clock=clock, db=clean_db))
    assert app.test_client().get("/dev/outbox").status_code == 404


def test_server_settings_default_is_not_development() -> None:
    assert ServerSettings().development is False
