"""The token endpoint and UserInfo as WSGI handlers (``idp.oidc.token_endpoint``): the only implementation of
each (no Flask view), authlib's framework-free server behind the token endpoint, each code and refresh token
redeemed by one conditional UPDATE (replays and reuse revoke the grant), bugs answered in JSON."""

from __future__ import annotations

import logging
import threading
from typing import Any

import jwt as pyjwt
import pytest
import requests
from flask import Flask
from sqlalchemy import select

from idp.core.clock import FrozenClock
from idp.oidc.server import audit_event
from idp.settings import Settings
from idp.storage.models import AuditEventRow
from idp.wiring import Services

from .conftest import Browser, Clients, jwks_of, s256, verify_jwt

BACK_CHANNEL = ("/oidc/token", "/oidc/userinfo", "/oidc/revoke", "/oidc/introspect")


def refresh(browser: Browser, rp: Any, token: str, auth: str = "basic", **extra: Any) -> Any:
    return browser.post_token(rp, {"grant_type": "refresh_token", "refresh_token": token, **extra}, auth=auth)


def test_no_flask_view_answers_a_back_channel_path(app: Flask) -> None:
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert not rules & set(BACK_CHANNEL)
    assert "/oidc/authorize" in rules and "/oidc/logout" in rules


@pytest.mark.parametrize("auth", ["basic", "post"])
def test_exchange_and_refresh(browser: Browser, clients: Clients, parent: Any, client: Any, settings: Settings,
                              clock: FrozenClock, auth: str) -> None:
    method = "client_secret_basic" if auth == "basic" else "client_secret_post"
    rp = clients(refresh_tokens=True, auth_method=method)
    verifier = "v" * 50
    query = browser.code_flow(rp, parent.identifier, nonce="n-1", code_challenge=s256(verifier),
                              code_challenge_method="S256")
    exchange = browser.token(rp, query["code"], auth=auth, code_verifier=verifier)
    assert exchange.status_code == 200, exchange.get_data(as_text=True)
    assert exchange.headers["Cache-Control"] == "no-store" and exchange.headers["Pragma"] == "no-cache"
    assert exchange.headers["Content-Type"] == "application/json"
    assert exchange.headers["X-Content-Type-Options"] == "nosniff" and len(exchange.headers["X-Correlation-Id"]) == 16
    first = exchange.get_json()
    assert set(first) == {"token_type", "access_token", "expires_in", "scope", "refresh_token", "id_token"}
    assert first["token_type"] == "Bearer" and first["expires_in"] == 600 and first["scope"] == "openid profile"
    claims = verify_jwt(first["id_token"], jwks_of(client), audience=rp.client_id, issuer=settings.server.base_url)
    assert claims["nonce"] == "n-1" and claims["acr"] == "urn:idp:acr:password" and claims["amr"] == ["pwd"]
    clock.advance(seconds=5)
    second = refresh(browser, rp, first["refresh_token"], auth=auth).get_json()
    renewed = verify_jwt(second["id_token"], jwks_of(client), audience=rp.client_id, issuer=settings.server.base_url)
    assert renewed["sub"] == claims["sub"] and renewed["sid"] == claims["sid"] and "nonce" not in renewed
    assert renewed["iat"] == claims["iat"] + 5 and renewed["auth_time"] == claims["auth_time"]
    assert browser.userinfo(second["access_token"]).status_code == 200


def test_es256_client(browser: Browser, clients: Clients, parent: Any, client: Any, settings: Settings) -> None:
    rp = clients(refresh_tokens=True, id_token_alg="ES256")
    first = browser.tokens(rp, parent.identifier)
    second = refresh(browser, rp, first["refresh_token"]).get_json()
    for token in (first["id_token"], second["id_token"]):
        assert pyjwt.get_unverified_header(token)["alg"] == "ES256"
        verify_jwt(token, jwks_of(client), audience=rp.client_id, issuer=settings.server.base_url,
                   algorithms=("ES256",))


def test_reuse_and_replay_are_audited(browser: Browser, clients: Clients, parent: Any, services: Services) -> None:
    """Revocation itself: ``test_tokens_lifecycle``; here the audit lines a reuse and a replay leave."""
    rp = clients(refresh_tokens=True)
    first = browser.tokens(rp, parent.identifier)
    refresh(browser, rp, first["refresh_token"])
    assert refresh(browser, rp, first["refresh_token"]).status_code == 400
    code = browser.code_flow(rp, parent.identifier)["code"]
    browser.token(rp, code)
    assert browser.token(rp, code).status_code == 400
    with services.uow() as uow:
        events = uow.session.scalars(select(AuditEventRow.event).where(AuditEventRow.account_id == parent.id)).all()
    assert audit_event("oidc_refresh_reused") in events and audit_event("oidc_code_replayed") in events


def test_code_replay_revokes_its_tokens(browser: Browser, clients: Clients, parent: Any) -> None:
    rp = clients(refresh_tokens=True)
    code = browser.code_flow(rp, parent.identifier)["code"]
    first = browser.token(rp, code).get_json()
    again = browser.token(rp, code)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    assert browser.userinfo(first["access_token"]).status_code == 401
    assert refresh(browser, rp, first["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_refusals_are_named_and_redeem_nothing(browser: Browser, clients: Clients, parent: Any) -> None:
    rp = clients(refresh_tokens=True)
    first = browser.tokens(rp, parent.identifier)
    wrong = browser.post_token(rp, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
                               auth="post")  # registered for Basic
    assert wrong.status_code in (400, 401) and wrong.get_json()["error"] == "invalid_client"
    wider = refresh(browser, rp, first["refresh_token"], scope="openid profile email")
    assert wider.status_code == 400 and wider.get_json()["error"] == "invalid_scope"
    scoped = refresh(browser, rp, first["refresh_token"], scope="openid")  # still redeemable once
    assert scoped.status_code == 200 and scoped.get_json()["scope"] == "openid"
    other = clients("Autre", refresh_tokens=True, redirect_uris=("https://autre.test/cb",))
    stolen = refresh(browser, other, scoped.get_json()["refresh_token"])
    assert stolen.status_code == 400 and stolen.get_json()["error"] == "invalid_grant"
    code = browser.code_flow(rp, parent.identifier)["code"]
    mismatch = browser.token(rp, code, redirect_uri="https://rp.ecole.test/ailleurs")
    assert mismatch.status_code == 400 and mismatch.get_json()["error"] == "invalid_grant"
    assert browser.token(rp, code).status_code == 200  # the mismatch redeemed nothing


def test_parallel_refresh_with_one_token_has_one_winner_and_revokes(live: Any) -> None:
    from conftest import AccountFactory

    from .conftest import OicRp

    account = AccountFactory(live.services)("Marie", "Dupont")
    rp = OicRp(live, Clients(live.services)(refresh_tokens=True), "client_secret_basic")
    url, _, _ = rp.request_url()
    code = rp.parse(rp.follow(url, account.identifier))["code"]
    auth = (rp.registered.client_id, rp.registered.secret)
    tokens = requests.post(rp.provider["token_endpoint"], auth=auth, timeout=30,
                           data={"grant_type": "authorization_code", "code": code,
                                 "redirect_uri": rp.redirect_uri}).json()
    barrier = threading.Barrier(10)
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def use() -> None:
        session = requests.Session()
        barrier.wait()
        answer = session.post(rp.provider["token_endpoint"], auth=auth, timeout=30,
                              data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
        with lock:
            results.append({"status": answer.status_code, **answer.json()})

    threads = [threading.Thread(target=use) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    winners = [r for r in results if r["status"] == 200]
    assert len(results) == 10 and len(winners) == 1, results
    assert all(r.get("error") == "invalid_grant" for r in results if r["status"] != 200)
    # the losers were reuse: the whole grant is revoked, the winner's new refresh token included
    again = requests.post(rp.provider["token_endpoint"], auth=auth, timeout=30,
                          data={"grant_type": "refresh_token", "refresh_token": winners[0]["refresh_token"]})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_methods_and_bugs_are_answered_in_json(client: Any, services: Services, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    refused = client.get("/oidc/token")
    assert refused.status_code == 405 and refused.headers["Allow"] == "POST"
    assert refused.get_json() == {"error": "invalid_request"} and refused.headers["Cache-Control"] == "no-store"
    server = services.frontends["oidc"].server  # type: ignore[attr-defined]

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(server, "create_token_response", broken)
    with caplog.at_level(logging.ERROR, logger="idp.oidc"):
        response = client.post("/oidc/token", data={"grant_type": "authorization_code", "code": "x"})
    assert response.status_code == 500 and response.get_json() == {"error": "server_error"}
    assert any("unexpected error on POST /oidc/token" in r.getMessage() for r in caplog.records)
