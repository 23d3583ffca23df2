"""Token endpoint: single-use codes (O03, O04, O06), binding (O05), PKCE S256 only (O07), client
authentication (O08, O10), ID token contents (O11), response hygiene (O19), outage (R01)."""

from __future__ import annotations

import dataclasses
import secrets
import threading
from typing import Any

import pytest
import requests

from idp import create_app
from idp.core.clock import FrozenClock
from idp.settings import Settings
from idp.wiring import build_services

from .conftest import REDIRECT, Browser, Clients, jwks_of, s256, verify_jwt


def _code(browser: Browser, rp: Any, identifier: str | None, **params: Any) -> str:
    return browser.code_flow(rp, identifier, **params)["code"]


def test_token_response_headers_and_shape(browser: Browser, clients: Clients, parent: Any) -> None:
    rp = clients()
    response = browser.token(rp, _code(browser, rp, parent.identifier))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Pragma"] == "no-cache"
    body = response.get_json()
    assert body["token_type"] == "Bearer" and isinstance(body["expires_in"], int) and body["expires_in"] == 600
    assert len(body["access_token"]) >= 43  # 256 bits, base64url
    assert "refresh_token" not in body  # refresh tokens are off by default


def test_id_token_contents(browser: Browser, clients: Clients, parent: Any, client: Any, settings: Settings,
                           clock: FrozenClock) -> None:
    import base64
    import hashlib

    import jwt as pyjwt

    rp = clients()
    query = browser.code_flow(rp, parent.identifier, nonce="n-0S6_WzA2Mj", max_age="3600")
    body = browser.token(rp, query["code"]).get_json()
    claims = verify_jwt(body["id_token"], jwks_of(client), audience=rp.client_id, issuer=settings.server.base_url)
    assert pyjwt.get_unverified_header(body["id_token"])["alg"] == "RS256"
    assert claims["iss"] == settings.server.base_url
    assert claims["aud"] == rp.client_id and "azp" not in claims
    assert claims["exp"] > claims["iat"] and claims["iat"] == int(clock.now().timestamp())
    assert claims["nonce"] == "n-0S6_WzA2Mj" and isinstance(claims["auth_time"], int)
    assert 0 < len(claims["sub"]) <= 255 and claims["sub"].isascii()
    digest = hashlib.sha256(body["access_token"].encode()).digest()[:16]
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert claims["acr"] == "urn:idp:acr:password" and claims["amr"] == ["pwd"]
    assert len(claims["sid"]) >= 32
    assert "family_name" not in claims  # profile claims come from userinfo


def test_es256_id_tokens_for_clients_that_registered_it(browser: Browser, clients: Clients, parent: Any,
                                                        client: Any, settings: Settings) -> None:
    import jwt as pyjwt

    rp = clients(id_token_alg="ES256")
    body = browser.tokens(rp, parent.identifier)
    assert pyjwt.get_unverified_header(body["id_token"])["alg"] == "ES256"
    claims = verify_jwt(body["id_token"], jwks_of(client), audience=rp.client_id, issuer=settings.server.base_url,
                        algorithms=("ES256",))
    assert claims["at_hash"]


def test_sub_is_stable_per_client_and_pairwise_between_sectors(browser: Browser, clients: Clients, parent: Any,
                                                               client: Any, settings: Settings) -> None:
    def sub(rp: Any) -> str:
        body = browser.tokens(rp, parent.identifier)
        return verify_jwt(body["id_token"], jwks_of(client), audience=rp.client_id,
                          issuer=settings.server.base_url)["sub"]

    ent = clients("ENT", redirect_uris=("https://ent.ecole.test/cb",))
    vie = clients("Vie scolaire", redirect_uris=("https://vie.ecole.test/cb",))
    same_sector = clients("ENT mobile", redirect_uris=("https://ent.ecole.test/mobile",))
    first = sub(ent)
    assert sub(ent) == first and sub(same_sector) == first
    assert sub(vie) != first
    public_a = clients("A", subject_type="public", redirect_uris=("https://a.test/cb",))
    public_b = clients("B", subject_type="public", redirect_uris=("https://b.test/cb",))
    assert sub(public_a) == sub(public_b) != first


def test_code_replay_revokes_what_the_first_exchange_issued(browser: Browser, clients: Clients, parent: Any) -> None:
    rp = clients(refresh_tokens=True)
    code = _code(browser, rp, parent.identifier)
    first = browser.token(rp, code).get_json()
    assert browser.userinfo(first["access_token"]).status_code == 200
    again = browser.token(rp, code)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    assert again.headers["Cache-Control"] == "no-store"
    assert browser.userinfo(first["access_token"]).status_code == 401
    refresh = browser.post_token(rp, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert refresh.status_code == 400 and refresh.get_json()["error"] == "invalid_grant"


def test_parallel_double_redemption_has_exactly_one_winner(live: Any) -> None:
    from conftest import AccountFactory

    from .conftest import OicRp

    account = AccountFactory(live.services)("Marie", "Dupont")
    rp = OicRp(live, Clients(live.services)(), "client_secret_basic")
    url, _, _ = rp.request_url()
    code = rp.parse(rp.follow(url, account.identifier))["code"]
    barrier = threading.Barrier(20)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def redeem() -> None:
        session = requests.Session()
        barrier.wait()
        answer = session.post(rp.provider["token_endpoint"], auth=(rp.registered.client_id, rp.registered.secret),
                              data={"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri},
                              timeout=30)
        with lock:
            results.append((answer.status_code, answer.json().get("error", "")))

    threads = [threading.Thread(target=redeem) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 20
    assert sum(1 for status, _ in results if status == 200) == 1, results
    assert all(error == "invalid_grant" for status, error in results if status != 200), results


def test_code_bound_to_client_and_redirect_uri(browser: Browser, clients: Clients, parent: Any) -> None:
    a = clients("A", redirect_uris=(REDIRECT, REDIRECT + "2"))
    b = clients("B")
    code = _code(browser, a, parent.identifier)
    stolen = browser.token(b, code)
    assert stolen.status_code == 400 and stolen.get_json()["error"] == "invalid_grant"
    wrong_uri = browser.token(a, code, redirect_uri=REDIRECT + "2")
    assert wrong_uri.status_code == 400 and wrong_uri.get_json()["error"] == "invalid_grant"
    missing = browser.token(a, code, redirect_uri=None)
    assert missing.status_code == 400 and missing.get_json()["error"] == "invalid_grant"


def test_code_expires_after_60_seconds(browser: Browser, clients: Clients, parent: Any, clock: FrozenClock) -> None:
    rp = clients()
    code = _code(browser, rp, parent.identifier)
    clock.advance(seconds=61)
    response = browser.token(rp, code)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"


def test_unknown_code_and_missing_code(browser: Browser, clients: Clients) -> None:
    rp = clients()
    assert browser.token(rp, "nope").get_json()["error"] == "invalid_grant"
    response = browser.post_token(rp, {"grant_type": "authorization_code", "redirect_uri": REDIRECT})
    assert response.get_json()["error"] == "invalid_request"


@pytest.mark.parametrize("grant_type", ["password", "client_credentials", "implicit", "urn:x", ""])
def test_unsupported_grant_types(browser: Browser, clients: Clients, grant_type: str) -> None:
    rp = clients()
    response = browser.post_token(rp, {"grant_type": grant_type, "username": "a", "password": "b"})
    assert response.status_code == 400 and response.get_json()["error"] == "unsupported_grant_type"


# --- PKCE (O07) ------------------------------------------------------------------------------------


def test_pkce_s256_round_trip_and_mismatch(browser: Browser, clients: Clients, parent: Any) -> None:
    rp = clients()
    verifier = secrets.token_urlsafe(48)
    code = _code(browser, rp, parent.identifier, code_challenge=s256(verifier), code_challenge_method="S256")
    bad = browser.token(rp, code, code_verifier=secrets.token_urlsafe(48))
    assert bad.status_code == 400 and bad.get_json()["error"] == "invalid_grant"
    code = _code(browser, rp, None, code_challenge=s256(verifier), code_challenge_method="S256")
    assert browser.token(rp, code, code_verifier=verifier).status_code == 200


@pytest.mark.parametrize("method", ["plain", None, "S512"])
def test_pkce_plain_or_missing_method_is_refused(browser: Browser, clients: Clients, method: str | None) -> None:
    rp = clients()
    response = browser.authorize(rp, code_challenge="a" * 43, code_challenge_method=method, state="k")
    assert response.status_code == 302
    query = browser_query(response)
    assert query["error"] == "invalid_request" and query["state"] == "k" and "code" not in query


def test_public_client_needs_pkce(browser: Browser, clients: Clients, parent: Any) -> None:
    app = clients("Application mobile", auth_method="none")
    assert app.secret == ""
    query = browser_query(browser.authorize(app, state="m"))
    assert query["error"] == "invalid_request"
    verifier = secrets.token_urlsafe(48)
    code = _code(browser, app, parent.identifier, code_challenge=s256(verifier), code_challenge_method="S256")
    missing = browser.token(app, code, auth="none")
    assert missing.status_code == 400 and missing.get_json()["error"] == "invalid_request"
    code = _code(browser, app, None, code_challenge=s256(verifier), code_challenge_method="S256")
    assert browser.token(app, code, auth="none", code_verifier=verifier).status_code == 200


def test_pkce_downgrade_is_refused(browser: Browser, clients: Clients, parent: Any) -> None:
    rp = clients()
    code = _code(browser, rp, parent.identifier)
    response = browser.token(rp, code, code_verifier=secrets.token_urlsafe(48))
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"


@pytest.mark.parametrize("verifier", ["a" * 42, "a" * 129, "a" * 42 + "!", "é" * 43])
def test_pkce_verifier_abnf(browser: Browser, clients: Clients, parent: Any, verifier: str) -> None:
    rp = clients()
    code = _code(browser, rp, parent.identifier, code_challenge=s256(verifier), code_challenge_method="S256")
    response = browser.token(rp, code, code_verifier=verifier)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"


def browser_query(response: Any) -> dict[str, str]:
    from .conftest import query_of

    return query_of(response.headers["Location"])


# --- client authentication (O08) -------------------------------------------------------------------


def _assert_invalid_client(response: Any) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.get_json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.headers["Cache-Control"] == "no-store"


def test_wrong_secret_basic_and_post(browser: Browser, clients: Clients, parent: Any) -> None:
    basic = clients("Basic")
    post = clients("Post", auth_method="client_secret_post")
    code = _code(browser, basic, parent.identifier)
    _assert_invalid_client(browser.post_token(dataclasses.replace(basic, secret="faux"),
                                              {"grant_type": "authorization_code", "code": code,
                                               "redirect_uri": REDIRECT}))
    code = _code(browser, post, None)
    _assert_invalid_client(browser.post_token(dataclasses.replace(post, secret="faux"),
                                              {"grant_type": "authorization_code", "code": code,
                                               "redirect_uri": REDIRECT}, auth="post"))
    assert browser.token(post, code, auth="post").status_code == 200  # the failed try did not burn the code


def test_method_not_registered_is_invalid_client(browser: Browser, clients: Clients, parent: Any) -> None:
    post = clients("Post", auth_method="client_secret_post")
    code = _code(browser, post, parent.identifier)
    _assert_invalid_client(browser.token(post, code, auth="basic"))
    _assert_invalid_client(browser.token(post, code, auth="none"))


def test_unknown_client_and_no_authentication(browser: Browser, clients: Clients) -> None:
    rp = clients()
    _assert_invalid_client(browser.post_token(dataclasses.replace(rp, record=dataclasses.replace(
        rp.record, client_id="inconnu")), {"grant_type": "authorization_code", "code": "x"}))
    _assert_invalid_client(browser.client.post("/oidc/token", data={"grant_type": "authorization_code", "code": "x"}))


def test_two_authentication_methods_at_once_are_refused(browser: Browser, clients: Clients, parent: Any) -> None:
    rp = clients()
    code = _code(browser, rp, parent.identifier)
    response = browser.client.post("/oidc/token", headers=rp.basic(), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_secret": rp.secret})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"
    assert browser.token(rp, code).status_code == 200


@pytest.mark.parametrize("header", ["Basic !!!", "Basic " + "bm9jb2xvbg==", "Basic //79Ong=", "Basic", "Digest x",
                                    "Basic  ", "Bearer  ", "Basic Og==",
                                    "Basic " + "eDp5" * 3000])
def test_malformed_client_credentials_are_invalid_client(browser: Browser, header: str) -> None:
    response = browser.client.post("/oidc/token", headers={"Authorization": header},
                                   data={"grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT})
    assert response.status_code in (401, 413), response.status_code
    if response.status_code == 401:
        assert response.get_json()["error"] == "invalid_client"


def test_odd_assertion_header_is_a_clean_invalid_client(browser: Browser) -> None:
    import base64
    import json

    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    assertion = f"{b64({'alg': 'RS256' + chr(34) + chr(92) + chr(10)})}.{b64({'sub': 'x' * 70})}.sig"
    response = browser.client.post("/oidc/token", data={
        "grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion})
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"


def test_secrets_are_stored_hashed(clients: Clients, services: Any) -> None:
    from sqlalchemy import select

    from idp.storage.oidc_store import OidcClientRow, OidcCodeRow, OidcTokenRow

    rp = clients()
    with services.uow() as uow:
        row = uow.session.scalars(select(OidcClientRow)).one()
        assert rp.secret not in row.secret_hash and len(row.secret_hash) == 64
        assert uow.session.scalars(select(OidcCodeRow)).all() == []
        assert uow.session.scalars(select(OidcTokenRow)).all() == []


def test_stored_codes_and_tokens_are_hashes(browser: Browser, clients: Clients, parent: Any, services: Any) -> None:
    from sqlalchemy import select

    from idp.storage.oidc_store import OidcCodeRow, OidcTokenRow

    rp = clients()
    code = _code(browser, rp, parent.identifier)
    body = browser.token(rp, code).get_json()
    with services.uow() as uow:
        stored = [r.code_hash for r in uow.session.scalars(select(OidcCodeRow))]
        stored += [r.token_hash for r in uow.session.scalars(select(OidcTokenRow))]
    assert code not in stored and body["access_token"] not in stored and len(stored) == 2


# --- outage (R01) ----------------------------------------------------------------------------------


def test_token_endpoint_when_the_database_is_down(settings: Settings) -> None:
    url = "postgresql://idp@127.0.0.1:1/nowhere"
    broken = dataclasses.replace(settings, database=dataclasses.replace(settings.database, url=url,
                                                                        pool_timeout_seconds=1))
    app = create_app(broken, build_services(broken))
    response = app.test_client().post("/oidc/token", data={"grant_type": "authorization_code", "code": "x"},
                                      headers={"Authorization": "Basic YTpi"})
    assert response.status_code == 503
    assert response.get_json()["error"] == "temporarily_unavailable"
    assert response.headers["Retry-After"] == "30" and response.headers["Cache-Control"] == "no-store"
    userinfo = app.test_client().get("/oidc/userinfo", headers={"Authorization": "Bearer x" * 5})
    assert userinfo.status_code == 503 and userinfo.get_json()["error"] == "temporarily_unavailable"


def test_authorization_endpoint_when_the_database_is_down(settings: Settings) -> None:
    # The browser gets the application's outage page (one handler for every blueprint): what to do, when to retry.
    url = "postgresql://idp@127.0.0.1:1/nowhere"
    broken = dataclasses.replace(settings, database=dataclasses.replace(settings.database, url=url,
                                                                        pool_timeout_seconds=1))
    app = create_app(broken, build_services(broken))
    before = _outages()
    response = app.test_client().get("/oidc/authorize", query_string={
        "response_type": "code", "client_id": "ent", "redirect_uri": "https://ent.example/cb", "scope": "openid"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
    assert "Service momentanément indisponible" in response.get_data(as_text=True)
    assert _outages() == before + 1  # counted in idp_db_unavailable_total, as every other outage page


def _outages() -> float:
    from idp import metrics

    text = metrics.render()[0].decode()
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith('idp_db_unavailable_total{backend="database"}'))
