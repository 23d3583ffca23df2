"""Logout: RP-initiated (O24, conformance oidcc-rp-initiated-logout-*), back-channel logout tokens received by
a real HTTP server, and the single-logout hook other protocols' logouts call."""

from __future__ import annotations

import time
from typing import Any

import jwt as pyjwt
import pytest
from conftest import csrf_from

from .conftest import Browser, Clients, LogoutReceiver, form_fields, html_text, jwks_of, query_of, verify_jwt

BYE = "https://rp.ecole.test/bye"


@pytest.fixture
def rp(clients: Clients) -> Any:
    return clients(post_logout_redirect_uris=(BYE,))


def logged_in(browser: Browser, rp: Any, parent: Any) -> dict[str, Any]:
    return browser.tokens(rp, parent.identifier)


def logout(browser: Browser, **params: Any) -> Any:
    return browser.client.get("/oidc/logout", query_string={k: v for k, v in params.items() if v is not None})


def assert_logged_out(browser: Browser, rp: Any, tokens: dict[str, Any]) -> None:
    query = query_of(browser.authorize(rp, prompt="none", state="after").headers["Location"])
    assert query["error"] == "login_required"
    assert browser.userinfo(tokens["access_token"]).status_code == 401


def assert_still_logged_in(browser: Browser, rp: Any) -> None:
    assert "code" in query_of(browser.authorize(rp, prompt="none").headers["Location"])


def test_oidcc_rp_initiated_logout(browser: Browser, rp: Any, parent: Any) -> None:
    tokens = logged_in(browser, rp, parent)
    response = logout(browser, id_token_hint=tokens["id_token"], post_logout_redirect_uri=BYE, state="xyz")
    assert response.status_code == 303 and response.headers["Location"] == BYE + "?state=xyz"
    assert_logged_out(browser, rp, tokens)


def test_oidcc_rp_initiated_logout_no_state(browser: Browser, rp: Any, parent: Any) -> None:
    tokens = logged_in(browser, rp, parent)
    response = logout(browser, id_token_hint=tokens["id_token"], post_logout_redirect_uri=BYE)
    assert response.headers["Location"] == BYE


@pytest.mark.parametrize("target", [BYE + "?x=1", "https://evil.example/bye", BYE + "/"])
def test_oidcc_rp_initiated_logout_bad_or_query_added_post_logout_redirect_uri(browser: Browser, rp: Any,
                                                                              parent: Any, target: str) -> None:
    tokens = logged_in(browser, rp, parent)
    response = logout(browser, id_token_hint=tokens["id_token"], post_logout_redirect_uri=target, state="s")
    assert response.status_code == 200 and "Location" not in response.headers
    assert "Vous êtes déconnecté" in html_text(response)
    assert_logged_out(browser, rp, tokens)


def test_oidcc_rp_initiated_logout_no_post_logout_redirect_uri(browser: Browser, rp: Any, parent: Any) -> None:
    tokens = logged_in(browser, rp, parent)
    response = logout(browser, id_token_hint=tokens["id_token"])
    assert response.status_code == 200 and "Vous êtes déconnecté" in html_text(response)
    assert_logged_out(browser, rp, tokens)


@pytest.mark.parametrize("params", [{}, {"state": "only"}, {"post_logout_redirect_uri": BYE, "state": "s"}])
def test_without_hint_the_person_confirms_and_nothing_redirects(browser: Browser, rp: Any, parent: Any,
                                                                params: dict[str, str]) -> None:
    # oidcc-rp-initiated-logout-no-params, -only-state, -no-id-token-hint
    tokens = logged_in(browser, rp, parent)
    page = logout(browser, client_id=rp.client_id if params else None, **params)
    assert page.status_code == 200 and "Location" not in page.headers
    text = html_text(page)
    assert "Voulez-vous vous déconnecter" in text
    assert_still_logged_in(browser, rp)  # a GET alone never logs out
    fields = form_fields(page.get_data(as_text=True))
    fields["confirmer"] = "1"
    done = browser.client.post("/oidc/logout", data=fields)
    assert done.status_code == 200 and "Location" not in done.headers
    assert "Vous êtes déconnecté" in html_text(done)
    assert_logged_out(browser, rp, tokens)


def test_confirmation_needs_csrf(browser: Browser, rp: Any, parent: Any) -> None:
    logged_in(browser, rp, parent)
    response = browser.client.post("/oidc/logout", data={"confirmer": "1"})
    assert response.status_code == 400
    assert_still_logged_in(browser, rp)


def test_hint_of_another_session_asks_for_confirmation(browser: Browser, rp: Any, parent: Any, client: Any) -> None:
    tokens = logged_in(browser, rp, parent)
    client.delete_cookie("__Host-sso", path="/")
    other = logged_in(browser, rp, parent)  # a new session (new sid)
    sid = [pyjwt.decode(t["id_token"], options={"verify_signature": False})["sid"] for t in (tokens, other)]
    assert sid[0] != sid[1]
    page = logout(browser, id_token_hint=tokens["id_token"], post_logout_redirect_uri=BYE)
    assert page.status_code == 200 and "Voulez-vous vous déconnecter" in html_text(page)


def test_no_session_with_valid_hint_just_redirects(browser: Browser, rp: Any, parent: Any) -> None:
    tokens = logged_in(browser, rp, parent)
    logout(browser, id_token_hint=tokens["id_token"])
    again = logout(browser, id_token_hint=tokens["id_token"], post_logout_redirect_uri=BYE, state="a")
    assert again.headers["Location"] == BYE + "?state=a"


def test_client_id_must_match_hint_audience(browser: Browser, rp: Any, clients: Clients, parent: Any) -> None:
    other = clients("Autre", post_logout_redirect_uris=("https://autre.test/bye",))
    tokens = logged_in(browser, rp, parent)
    response = logout(browser, id_token_hint=tokens["id_token"], client_id=other.client_id,
                      post_logout_redirect_uri="https://autre.test/bye")
    assert response.status_code == 200 and "Location" not in response.headers


# --- back-channel logout and the single-logout hook ------------------------------------------------


def _received(services: Any, receiver: LogoutReceiver, count: int = 1) -> list[str]:
    services.extras["oidc_logout"].wait_idle(5)
    deadline = time.monotonic() + 5
    while len(receiver.tokens) < count and time.monotonic() < deadline:
        receiver.event.wait(0.1)
    return receiver.tokens


def test_back_channel_logout_token_reaches_the_client(browser: Browser, clients: Clients, parent: Any,
                                                      services: Any, logout_receiver: LogoutReceiver,
                                                      client: Any) -> None:
    rp = clients(backchannel_logout_uri=logout_receiver.url, post_logout_redirect_uris=(BYE,))
    silent = clients("Sans back-channel", redirect_uris=("https://autre.test/cb",))
    tokens = logged_in(browser, rp, parent)
    browser.tokens(silent, parent.identifier)
    id_claims = pyjwt.decode(tokens["id_token"], options={"verify_signature": False})
    logout(browser, id_token_hint=tokens["id_token"], post_logout_redirect_uri=BYE)
    received = _received(services, logout_receiver)
    assert len(received) == 1
    header = pyjwt.get_unverified_header(received[0])
    assert header["typ"] == "logout+jwt" and header["alg"] == "RS256"
    # The test clock runs two minutes behind real time and a logout token lives two minutes: PyJWT judges
    # ``exp`` by real time, so a slow machine would see it expired. Its lifetime is checked here instead.
    claims = verify_jwt(received[0], jwks_of(client), audience=rp.client_id, issuer="https://idp.test", leeway=120)
    assert claims["exp"] - claims["iat"] == 120
    assert claims["events"] == {"http://schemas.openid.net/event/backchannel-logout": {}}
    assert claims["sid"] == id_claims["sid"] and claims["sub"] == id_claims["sub"]
    assert "nonce" not in claims and claims["jti"]


def test_portal_logout_reaches_oidc_clients(browser: Browser, clients: Clients, parent: Any, services: Any,
                                            logout_receiver: LogoutReceiver) -> None:
    rp = clients(backchannel_logout_uri=logout_receiver.url)
    tokens = logged_in(browser, rp, parent)
    page = browser.client.get("/logout")
    done = browser.client.post("/logout", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert done.status_code == 200
    assert len(_received(services, logout_receiver)) == 1
    assert browser.userinfo(tokens["access_token"]).status_code == 401


def test_hook_for_other_protocols_revokes_and_notifies(browser: Browser, clients: Clients, parent: Any,
                                                       services: Any, logout_receiver: LogoutReceiver) -> None:
    rp = clients(backchannel_logout_uri=logout_receiver.url, refresh_tokens=True)
    tokens = logged_in(browser, rp, parent)
    from idp.web.security import sso_cookie_name

    cookie = browser.client.get_cookie(sso_cookie_name(services.settings))
    ended = services.flow.logout(cookie.value, "127.0.0.1")  # what a SAML or CAS logout does first
    for hook in services.extras["logout_hooks"]:
        hook(ended)
    assert len(_received(services, logout_receiver)) == 1
    assert browser.userinfo(tokens["access_token"]).status_code == 401
    response = browser.post_token(rp, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert response.get_json()["error"] == "invalid_grant"


def test_unreachable_back_channel_does_not_hold_up_logout(browser: Browser, clients: Clients, parent: Any,
                                                          services: Any) -> None:
    rp = clients(backchannel_logout_uri="http://127.0.0.1:9/backchannel", post_logout_redirect_uris=(BYE,))
    tokens = logged_in(browser, rp, parent)
    started = time.monotonic()
    response = logout(browser, id_token_hint=tokens["id_token"], post_logout_redirect_uri=BYE)
    assert response.status_code == 303 and time.monotonic() - started < 1.0
    services.extras["oidc_logout"].wait_idle(5)
