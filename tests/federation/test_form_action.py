"""The CSP ``form-action`` of the FranceConnect pages (SECURITY S31): the confirmation steps of a login begun by
a service allow that service's origin, a logout confirmation of a session opened through the provider allows
the provider's (its ``end_session`` comes first), and the account page's « Lier » form allows the provider's
authorization endpoint; nothing more when nothing is pending."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import DEFAULT_PASSWORD, LoginHelper
from flask.testing import FlaskClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fc_support import (  # noqa: E402,F401 - fixtures
    CLIENT_SECRET,
    PHONE_KARIM,
    FcBrowser,
    Upstream,
    federation_settings,
    last_code,
    link_karim,
    make_register,
    upstream,
)

from idp.cas.registry import registration_for  # noqa: E402
from idp.settings import DeliverySettings, ProtocolSettings, Settings  # noqa: E402
from idp.storage.cas_store import CasServiceRecord, SqlCasStore  # noqa: E402
from idp.wiring import Services  # noqa: E402

SERVICE = "https://ent.example.fr/app/"


@pytest.fixture
def settings(base_settings: Settings, upstream: Upstream) -> Settings:
    """The federation's settings with CAS enabled: a service for the login to come from."""
    return dataclasses.replace(base_settings, delivery=DeliverySettings(background=False),
                               federation=federation_settings(upstream.issuer, timeout_seconds=2),
                               federation_client_secret=CLIENT_SECRET, protocols=ProtocolSettings(enabled=("cas",)))


def form_action(response: Any) -> list[str]:
    """The sources of the ``form-action`` directive of the answer's CSP."""
    directives = [d.split() for d in response.headers["Content-Security-Policy"].split(";")]
    return next(d[1:] for d in directives if d and d[0] == "form-action")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _cas_request(client: FlaskClient, services: Services) -> str:
    """A login begun at a registered CAS service (``idp cas add``); returns the pending request's id."""
    scheme, host, stored = registration_for(SERVICE, "prefix", allow_http=False)
    with services.uow() as uow:
        SqlCasStore(uow.session).add_service(CasServiceRecord(service_id="ent", name="ENT", match="prefix",
                                                              pattern=stored, scheme=scheme, host=host), "",
                                             services.clock.now())
        uow.commit()
    started = client.get("/cas/login", query_string={"service": SERVICE})
    assert started.status_code == 303 and started.headers["Location"].startswith("/login/")
    return str(started.headers["Location"]).split("/login/")[1]


def test_confirmation_steps_allow_the_origin_of_the_service_that_asked(client: FlaskClient, services: Services,
                                                                       upstream: Upstream) -> None:
    make_register(services)
    request_id = _cas_request(client, services)
    assert form_action(client.get(f"/login/{request_id}")) == ["'self'", "https://ent.example.fr"]
    browser = FcBrowser(client, upstream)
    answer = browser.login("karim", start=f"/franceconnect?demande={request_id}")
    assert answer.headers["Location"] == "/franceconnect/code"
    page = client.get("/franceconnect/code")
    assert page.status_code == 200 and form_action(page) == ["'self'", "https://ent.example.fr"]
    wrong = browser.code("AAAAAA")
    assert wrong.status_code == 400 and form_action(wrong) == ["'self'", "https://ent.example.fr"]
    assert last_code(services, PHONE_KARIM)


def test_confirmation_steps_without_a_service_keep_self(client: FlaskClient, services: Services,
                                                        upstream: Upstream) -> None:
    make_register(services)
    FcBrowser(client, upstream).login("karim")
    assert form_action(client.get("/franceconnect/code")) == ["'self'"]


def test_logout_confirmation_of_a_federated_session_allows_the_provider(client: FlaskClient, services: Services,
                                                                        upstream: Upstream,
                                                                        account_factory: Any) -> None:
    link_karim(client, services, upstream, account_factory)
    confirm = client.get("/logout")
    assert "Me déconnecter" in confirm.get_data(as_text=True)
    assert form_action(confirm) == ["'self'", _origin(upstream.issuer)]


def test_account_page_allows_the_provider_while_not_linked(client: FlaskClient, services: Services,
                                                           upstream: Upstream, account_factory: Any,
                                                           login: LoginHelper) -> None:
    make_register(services)
    account = account_factory("Marie", "Dupont")
    login(account.identifier, DEFAULT_PASSWORD)
    assert form_action(client.get("/compte")) == ["'self'", _origin(upstream.issuer)]
    assert form_action(client.get("/services")) == ["'self'"]
