"""Refresh rotation and reuse (O21), revocation (RFC 7009, O22), introspection (RFC 7662), userinfo (O20)."""

from __future__ import annotations

from typing import Any

import pytest

from idp.core.accounts.model import AccountState
from idp.core.clock import FrozenClock
from idp.settings import Settings

from .conftest import Browser, Clients, jwks_of, verify_jwt


def refresh(browser: Browser, rp: Any, token: str, **extra: Any) -> Any:
    return browser.post_token(rp, {"grant_type": "refresh_token", "refresh_token": token, **extra})


@pytest.fixture
def rt_client(clients: Clients) -> Any:
    return clients(refresh_tokens=True)


def test_refresh_rotates_and_returns_a_new_id_token(browser: Browser, rt_client: Any, parent: Any, client: Any,
                                                     settings: Settings, clock: FrozenClock) -> None:
    first = browser.tokens(rt_client, parent.identifier)
    clock.advance(seconds=5)
    response = refresh(browser, rt_client, first["refresh_token"])
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    second = response.get_json()
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    old = verify_jwt(first["id_token"], jwks_of(client), audience=rt_client.client_id, issuer=settings.server.base_url)
    new = verify_jwt(second["id_token"], jwks_of(client), audience=rt_client.client_id,
                     issuer=settings.server.base_url)
    assert new["sub"] == old["sub"] and new["auth_time"] == old["auth_time"] and new["iat"] > old["iat"]
    assert "nonce" not in new
    assert browser.userinfo(second["access_token"]).status_code == 200
    third = refresh(browser, rt_client, second["refresh_token"]).get_json()
    assert browser.userinfo(third["access_token"]).status_code == 200


def test_reuse_of_a_rotated_refresh_token_revokes_the_grant(browser: Browser, rt_client: Any, parent: Any) -> None:
    first = browser.tokens(rt_client, parent.identifier)
    second = refresh(browser, rt_client, first["refresh_token"]).get_json()
    reuse = refresh(browser, rt_client, first["refresh_token"])
    assert reuse.status_code == 400 and reuse.get_json()["error"] == "invalid_grant"
    assert refresh(browser, rt_client, second["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert browser.userinfo(second["access_token"]).status_code == 401
    assert browser.userinfo(first["access_token"]).status_code == 401


def test_refresh_scope_cannot_grow_but_may_shrink(browser: Browser, rt_client: Any, parent: Any) -> None:
    first = browser.tokens(rt_client, parent.identifier, scope="openid profile")
    grow = refresh(browser, rt_client, first["refresh_token"], scope="openid profile email")
    assert grow.status_code == 400 and grow.get_json()["error"] == "invalid_scope"
    shrink = refresh(browser, rt_client, first["refresh_token"], scope="openid")
    assert shrink.status_code == 200 and shrink.get_json()["scope"] == "openid"


def test_refresh_token_bound_to_client(browser: Browser, clients: Clients, rt_client: Any, parent: Any) -> None:
    other = clients("Autre", refresh_tokens=True)
    first = browser.tokens(rt_client, parent.identifier)
    stolen = refresh(browser, other, first["refresh_token"])
    assert stolen.status_code == 400 and stolen.get_json()["error"] == "invalid_grant"
    assert refresh(browser, rt_client, first["refresh_token"]).status_code == 200


def test_refresh_not_issued_nor_accepted_when_off(browser: Browser, clients: Clients, parent: Any) -> None:
    rp = clients()
    tokens = browser.tokens(rp, parent.identifier)
    assert "refresh_token" not in tokens
    response = refresh(browser, rp, "anything")
    assert response.status_code == 400 and response.get_json()["error"] == "unauthorized_client"


def test_refresh_idle_and_absolute_expiry(browser: Browser, rt_client: Any, parent: Any, clock: FrozenClock) -> None:
    first = browser.tokens(rt_client, parent.identifier)
    clock.advance(hours=24, seconds=1)
    assert refresh(browser, rt_client, first["refresh_token"]).get_json()["error"] == "invalid_grant"
    token = browser.tokens(rt_client, parent.identifier)["refresh_token"]
    for _ in range(15):  # used every 23 h, it slides, until the absolute 14 days
        clock.advance(hours=23)
        response = refresh(browser, rt_client, token)
        if response.status_code != 200:
            break
        token = response.get_json()["refresh_token"]
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"


def test_disabled_account_kills_its_tokens(browser: Browser, rt_client: Any, parent: Any, services: Any) -> None:
    tokens = browser.tokens(rt_client, parent.identifier)
    with services.uow() as uow:
        uow.accounts.set_state(parent.id, AccountState.LOCKED, services.clock.now())
        uow.commit()
    assert browser.userinfo(tokens["access_token"]).status_code == 401
    assert refresh(browser, rt_client, tokens["refresh_token"]).get_json()["error"] == "invalid_grant"


# --- revocation -------------------------------------------------------------------------------------


def test_revoked_access_token_fails_at_once(browser: Browser, clients: Clients, parent: Any) -> None:
    rp = clients()
    tokens = browser.tokens(rp, parent.identifier)
    response = browser.post_token(rp, {"token": tokens["access_token"], "token_type_hint": "access_token"},
                                  path="/oidc/revoke")
    assert response.status_code == 200
    assert browser.userinfo(tokens["access_token"]).status_code == 401
    again = browser.post_token(rp, {"token": tokens["access_token"]}, path="/oidc/revoke")
    assert again.status_code == 200  # RFC 7009 §2.2: already invalid is fine
    assert browser.post_token(rp, {"token": "unknown"}, path="/oidc/revoke").status_code == 200


def test_revoking_a_refresh_token_revokes_the_grant(browser: Browser, rt_client: Any, parent: Any) -> None:
    tokens = browser.tokens(rt_client, parent.identifier)
    assert browser.post_token(rt_client, {"token": tokens["refresh_token"]}, path="/oidc/revoke").status_code == 200
    assert browser.userinfo(tokens["access_token"]).status_code == 401
    assert refresh(browser, rt_client, tokens["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_revocation_needs_client_authentication_and_ownership(browser: Browser, clients: Clients,
                                                              parent: Any) -> None:
    import dataclasses

    rp, other = clients(), clients("Autre")
    tokens = browser.tokens(rp, parent.identifier)
    bad = browser.post_token(dataclasses.replace(rp, secret="faux"), {"token": tokens["access_token"]},
                             path="/oidc/revoke")
    assert bad.status_code == 401 and bad.get_json()["error"] == "invalid_client"
    foreign = browser.post_token(other, {"token": tokens["access_token"]}, path="/oidc/revoke")
    assert foreign.status_code == 400
    assert browser.userinfo(tokens["access_token"]).status_code == 200
    assert browser.post_token(rp, {}, path="/oidc/revoke").get_json()["error"] == "invalid_request"


# --- introspection ----------------------------------------------------------------------------------


def test_introspection(browser: Browser, clients: Clients, rt_client: Any, parent: Any, clock: FrozenClock) -> None:
    tokens = browser.tokens(rt_client, parent.identifier)
    answer = browser.post_token(rt_client, {"token": tokens["access_token"]}, path="/oidc/introspect").get_json()
    assert answer["active"] is True and answer["client_id"] == rt_client.client_id
    assert answer["scope"] == "openid profile" and answer["iss"] == "https://idp.test" and answer["sub"]
    refresh_answer = browser.post_token(rt_client, {"token": tokens["refresh_token"]}, path="/oidc/introspect")
    assert refresh_answer.get_json()["active"] is True
    other = clients("Autre")
    assert browser.post_token(other, {"token": tokens["access_token"]}, path="/oidc/introspect").get_json() == \
        {"active": False}
    clock.advance(minutes=11)
    assert browser.post_token(rt_client, {"token": tokens["access_token"]},
                              path="/oidc/introspect").get_json() == {"active": False}
    assert browser.post_token(rt_client, {"token": "nope"}, path="/oidc/introspect").get_json() == {"active": False}


def test_public_clients_cannot_introspect(browser: Browser, clients: Clients) -> None:
    app = clients("Mobile", auth_method="none")
    response = browser.post_token(app, {"token": "x"}, auth="none", path="/oidc/introspect")
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"


# --- userinfo ---------------------------------------------------------------------------------------


def test_userinfo_get_post_and_body(browser: Browser, clients: Clients, parent: Any) -> None:
    tokens = browser.tokens(clients(), parent.identifier)
    for response in (browser.userinfo(tokens["access_token"]), browser.userinfo(tokens["access_token"], "POST"),
                     browser.client.post("/oidc/userinfo", data={"access_token": tokens["access_token"]})):
        assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
        assert response.get_json()["family_name"] == "Dupont"


def test_userinfo_refuses_query_string_expired_and_unknown_tokens(browser: Browser, clients: Clients, parent: Any,
                                                                  clock: FrozenClock) -> None:
    tokens = browser.tokens(clients(), parent.identifier)
    query = browser.client.get("/oidc/userinfo?access_token=" + tokens["access_token"])
    assert query.status_code == 400
    missing = browser.client.get("/oidc/userinfo")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert browser.userinfo("forged").status_code == 401
    clock.advance(minutes=10, seconds=1)
    expired = browser.userinfo(tokens["access_token"])
    assert expired.status_code == 401 and expired.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_userinfo_needs_the_openid_scope(browser: Browser, clients: Clients, parent: Any) -> None:
    rp = clients()
    query = browser.code_flow(rp, parent.identifier, scope="profile")
    token = browser.token(rp, query["code"]).get_json()["access_token"]
    assert browser.userinfo(token).status_code == 403


def test_purge_removes_expired_state_and_is_idempotent(browser: Browser, rt_client: Any, parent: Any,
                                                       services: Any, clock: FrozenClock) -> None:
    from sqlalchemy import func, select

    from idp.storage.oidc_store import OidcCodeRow, OidcGrantRow, OidcTokenRow, SqlOidcStore

    browser.tokens(rt_client, parent.identifier)
    browser.code_flow(rt_client, None)  # a code never redeemed
    clock.advance(days=15)
    for expected_nonzero in (True, False):
        with services.uow() as uow:
            purged = SqlOidcStore(uow.session).purge(clock.now())
            uow.commit()
        assert bool(purged) is expected_nonzero
    with services.uow() as uow:
        for row in (OidcCodeRow, OidcTokenRow, OidcGrantRow):
            assert uow.session.scalar(select(func.count()).select_from(row)) == 0
