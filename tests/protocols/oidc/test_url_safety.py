"""Issue 21 item 4 for OIDC (SECURITY C15): ``redirect_uri`` and ``post_logout_redirect_uri`` go through the one
URL-safety check of ``idp.core.urls`` — refused at registration, and never followed at use even when a stored
registration (made before the rule) holds one byte for byte."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from sqlalchemy import update

from idp.oidc.registration import ClientRejected, ClientSpec, register
from idp.storage.oidc_store import OidcClientRow

from .conftest import REDIRECT, Browser, Clients, Registered, html_text

UNSAFE = ["https://rp.ecole.test/app/../callback", "https://rp.ecole.test/app/%2e%2e/callback",
          "https://rp.ecole.test/app/..%2Fcallback", "https://rp.ecole.test/app/%252e%252e/callback",
          "https://rp.ecole.test/app/..;/callback"]


def _stored(services: Any, rp: Registered, **columns: tuple[str, ...]) -> Registered:
    """Write URIs straight into the client's row, as a registration older than the rule left them."""
    with services.uow() as uow:
        uow.session.execute(update(OidcClientRow).where(OidcClientRow.client_id == rp.client_id)
                            .values(**{k: json.dumps(list(v)) for k, v in columns.items()}))
        uow.commit()
    services.frontends["oidc"].server.forget_clients()  # what the client cache does by itself within seconds
    return Registered(dataclasses.replace(rp.record, **columns), rp.secret)


@pytest.mark.parametrize("uri", UNSAFE)
@pytest.mark.parametrize("field", ["redirect_uris", "post_logout_redirect_uris"])
def test_registration_refuses_unsafe_uris(services: Any, uri: str, field: str) -> None:
    spec = ClientSpec(name="X", redirect_uris=(REDIRECT,)) if field != "redirect_uris" \
        else ClientSpec(name="X", redirect_uris=(uri,))
    if field == "post_logout_redirect_uris":
        spec = dataclasses.replace(spec, post_logout_redirect_uris=(uri,))
    with services.uow() as uow, pytest.raises(ClientRejected) as refused:
        register(uow, spec, services.clock.now())
    assert uri in refused.value.description


@pytest.mark.parametrize("uri", UNSAFE)
def test_authorize_never_redirects_to_an_unsafe_registered_uri(browser: Browser, clients: Clients, services: Any,
                                                               uri: str) -> None:
    rp = _stored(services, clients(), redirect_uris=(uri,))
    response = browser.authorize(rp, redirect_uri=uri)
    assert response.status_code == 400 and "Location" not in response.headers
    assert "redirect_uri invalide" in html_text(response)


@pytest.mark.parametrize("uri", UNSAFE[:3])
def test_logout_never_redirects_to_an_unsafe_registered_uri(browser: Browser, clients: Clients, services: Any,
                                                            parent: Any, uri: str) -> None:
    rp = clients(post_logout_redirect_uris=("https://rp.ecole.test/bye",))
    tokens = browser.tokens(rp, parent.identifier)
    _stored(services, rp, post_logout_redirect_uris=(uri,))
    response = browser.client.get("/oidc/logout", query_string={
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": uri, "state": "s"})
    assert response.status_code == 200 and "Location" not in response.headers
    assert "Vous êtes déconnecté" in html_text(response)
