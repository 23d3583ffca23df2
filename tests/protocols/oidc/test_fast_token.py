"""The token endpoint's fast path (idp.oidc.fasttoken): it answers the usual code exchanges and refresh grants
exactly as the general path would, and hands every other request to authlib before writing anything, so that
replays, reuse (O21), mismatches and authentication errors keep their precise answers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import jwt as pyjwt
import pytest
import requests
from sqlalchemy import select

from idp.core.clock import FrozenClock
from idp.oidc.server import audit_event
from idp.settings import Settings
from idp.storage.models import AuditEventRow
from idp.wiring import Services

from .conftest import Browser, Clients, jwks_of, s256, verify_jwt


class GeneralPath:
    """Counts the requests the general (authlib) path handled."""

    def __init__(self, server: Any) -> None:
        self.calls = 0
        original = server.create_token_response

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return original(*args, **kwargs)

        server.create_token_response = counted


@pytest.fixture
def general(services: Services) -> Iterator[GeneralPath]:
    server = services.frontends["oidc"].server  # type: ignore[attr-defined]
    spy = GeneralPath(server)
    yield spy
    del server.create_token_response


def refresh(browser: Browser, rp: Any, token: str, auth: str = "basic", **extra: Any) -> Any:
    return browser.post_token(rp, {"grant_type": "refresh_token", "refresh_token": token, **extra}, auth=auth)


@pytest.mark.parametrize("auth", ["basic", "post"])
def test_usual_exchange_and_refresh_skip_the_general_path(browser: Browser, clients: Clients, parent: Any,
                                                          client: Any, settings: Settings, general: GeneralPath,
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
    assert general.calls == 0


def test_es256_client_gets_es256_from_the_fast_path(browser: Browser, clients: Clients, parent: Any, client: Any,
                                                    settings: Settings, general: GeneralPath) -> None:
    rp = clients(refresh_tokens=True, id_token_alg="ES256")
    first = browser.tokens(rp, parent.identifier)
    second = refresh(browser, rp, first["refresh_token"]).get_json()
    for token in (first["id_token"], second["id_token"]):
        assert pyjwt.get_unverified_header(token)["alg"] == "ES256"
        verify_jwt(token, jwks_of(client), audience=rp.client_id, issuer=settings.server.base_url,
                   algorithms=("ES256",))
    assert general.calls == 0


def test_reuse_after_a_fast_rotation_revokes_the_grant(browser: Browser, clients: Clients, parent: Any,
                                                       general: GeneralPath, services: Services) -> None:
    rp = clients(refresh_tokens=True)
    first = browser.tokens(rp, parent.identifier)
    second = refresh(browser, rp, first["refresh_token"]).get_json()
    assert general.calls == 0
    reuse = refresh(browser, rp, first["refresh_token"])
    assert reuse.status_code == 400 and reuse.get_json()["error"] == "invalid_grant"
    assert general.calls == 1  # the general path explained it and revoked the grant
    assert refresh(browser, rp, second["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert browser.userinfo(second["access_token"]).status_code == 401
    with services.uow() as uow:
        events = uow.session.scalars(select(AuditEventRow.event).where(AuditEventRow.account_id == parent.id)).all()
    assert audit_event("oidc_refresh_reused") in events


def test_code_replay_after_a_fast_exchange_revokes_its_tokens(browser: Browser, clients: Clients, parent: Any,
                                                              general: GeneralPath) -> None:
    rp = clients(refresh_tokens=True)
    code = browser.code_flow(rp, parent.identifier)["code"]
    first = browser.token(rp, code).get_json()
    assert general.calls == 0
    again = browser.token(rp, code)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant" and general.calls == 1
    assert browser.userinfo(first["access_token"]).status_code == 401
    assert refresh(browser, rp, first["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_requests_the_fast_path_declines_get_the_general_answers(browser: Browser, clients: Clients, parent: Any,
                                                                 general: GeneralPath) -> None:
    rp = clients(refresh_tokens=True)
    first = browser.tokens(rp, parent.identifier)
    wrong = browser.post_token(rp, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
                               auth="post")  # registered for Basic
    assert wrong.status_code in (400, 401) and wrong.get_json()["error"] == "invalid_client"
    scoped = refresh(browser, rp, first["refresh_token"], scope="openid")
    assert scoped.status_code == 200 and scoped.get_json()["scope"] == "openid"
    calls = general.calls
    assert calls == 2
    other = clients("Autre", refresh_tokens=True, redirect_uris=("https://autre.test/cb",))
    stolen = refresh(browser, other, scoped.get_json()["refresh_token"])
    assert stolen.status_code == 400 and stolen.get_json()["error"] == "invalid_grant"
    code = browser.code_flow(rp, parent.identifier)["code"]
    mismatch = browser.token(rp, code, redirect_uri="https://rp.ecole.test/ailleurs")
    assert mismatch.status_code == 400 and mismatch.get_json()["error"] == "invalid_grant"
    assert general.calls == calls + 2


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


def test_fast_path_answers_503_when_the_database_is_down(settings: Settings) -> None:
    import dataclasses
    import time

    from idp import create_app
    from idp.oidc.models import OidcClient
    from idp.storage.oidc_store import ClientRecord, digest
    from idp.wiring import build_services

    url = "postgresql://idp@127.0.0.1:1/nowhere"
    broken = dataclasses.replace(settings, database=dataclasses.replace(settings.database, url=url,
                                                                        pool_timeout_seconds=1))
    services = build_services(broken)
    app = create_app(broken, services)
    server = services.frontends["oidc"].server  # type: ignore[attr-defined]
    record = ClientRecord(client_id="ent", name="ENT", auth_method="client_secret_basic",
                          redirect_uris=("https://rp.ecole.test/callback",), scopes=("openid",),
                          secret_hash=digest("s" * 43), refresh_tokens=True)
    server._clients["ent"] = (time.monotonic() + 60, OidcClient(record))  # as a previous request left it
    import base64

    basic = {"Authorization": "Basic " + base64.b64encode(b"ent:" + b"s" * 43).decode()}
    for form in ({"grant_type": "refresh_token", "refresh_token": "r" * 43},
                 {"grant_type": "authorization_code", "code": "c" * 43, "redirect_uri": "https://rp.ecole.test/callback"}):
        response = app.test_client().post("/oidc/token", data=form, headers=basic)
        assert response.status_code == 503, response.get_data(as_text=True)
        assert response.get_json()["error"] == "temporarily_unavailable"
        assert response.headers["Cache-Control"] == "no-store"
