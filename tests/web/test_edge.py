"""The WSGI edge (``idp.web.edge``): one correlation id per request, in the answer and the log context, and the
security headers on every answer (pages and back-channel handlers alike), a page's own headers kept; behind a
trusted proxy every handler sees the client's address."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from conftest import DEFAULT_PASSWORD, AccountFactory, csrf_from
from flask.testing import FlaskClient
from sqlalchemy import select

from idp import create_app
from idp.observability import correlation_id
from idp.settings import ProtocolSettings, Settings
from idp.storage.models import AuditEventRow
from idp.web.security import CSP
from idp.wiring import Services

SECURITY = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy",
            "Cross-Origin-Opener-Policy")


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    return dataclasses.replace(base_settings, protocols=ProtocolSettings(enabled=("cas",)))


@pytest.mark.parametrize("method,path,status", [("GET", "/login", 200), ("GET", "/cas/serviceValidate", 200),
                                                ("POST", "/cas/validate", 200), ("GET", "/nulle-part", 404)])
def test_every_answer_carries_the_headers_once(client: FlaskClient, method: str, path: str, status: int) -> None:
    response = client.open(path, method=method)
    assert response.status_code == status
    for name in (*SECURITY, "Cache-Control", "X-Correlation-Id"):
        assert len(response.headers.getlist(name)) == 1, (path, name)
    assert len(response.headers["X-Correlation-Id"]) == 16


def test_a_pages_own_headers_are_kept_and_static_files_may_be_cached(client: FlaskClient) -> None:
    assert client.get("/login").headers["Content-Security-Policy"] == CSP
    cas_post_page = "default-src 'none'"  # the CAS POST answer page sets its own CSP (form-action the service)
    assert cas_post_page not in client.get("/login").headers["Content-Security-Policy"]
    static = client.get("/static/idp.css")
    assert static.status_code == 200 and "no-store" not in static.headers.get("Cache-Control", "")


def test_the_correlation_id_is_the_requests_in_a_view_and_not_left_behind(
        client: FlaskClient, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    begin = services.flow.begin

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(correlation_id.get())
        return begin(*args, **kwargs)

    monkeypatch.setattr(services.flow, "begin", spy)
    response = client.get("/login")
    assert response.status_code == 200 and seen == [response.headers["X-Correlation-Id"]]
    assert correlation_id.get() == ""


def test_behind_a_trusted_proxy_the_login_sees_the_clients_address(settings: Settings, services: Services,
                                                                   account_factory: AccountFactory) -> None:
    proxied = dataclasses.replace(settings, server=dataclasses.replace(settings.server, trusted_proxies=1))
    app = create_app(proxied, dataclasses.replace(services, settings=proxied))
    account = account_factory()
    client = app.test_client()
    via = {"X-Forwarded-For": "203.0.113.7"}
    form = client.get("/login?profil=parent", headers=via)
    posted = client.post("/login?profil=parent", headers=via,
                         data={"identifiant": account.identifier, "mot_de_passe": DEFAULT_PASSWORD,
                               "csrf_token": csrf_from(form.get_data(as_text=True))})
    assert posted.status_code == 303 and "X-Correlation-Id" in posted.headers
    with services.uow() as uow:
        ips = uow.session.scalars(select(AuditEventRow.ip).where(AuditEventRow.event == "login.success")).all()
    assert ips == ["203.0.113.7"]
