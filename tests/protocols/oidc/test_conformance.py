"""The OpenID conformance modules of a Basic OP (SECURITY §2), reproduced with the ``oic`` library as the
relying party, each test named after its module. Every ID token is also verified with PyJWT against the JWKS.
"""

from __future__ import annotations

from typing import Any

import pytest

from idp.core.clock import FrozenClock

from .conftest import query_of


@pytest.fixture
def rp(oic_rp: Any) -> Any:
    return oic_rp()


@pytest.fixture
def person(oic_rp: Any) -> Any:
    return oic_rp.account("Marie", "Dupont", email="marie.dupont@example.fr")


def _verified_email(live: Any, account: Any) -> None:
    from sqlalchemy import update

    from idp.storage.models import AccountRow

    with live.services.uow() as uow:
        uow.session.execute(update(AccountRow).where(AccountRow.id == account.id)
                            .values(email_verified_at=live.services.clock.now(), phone="+33612345678",
                                    phone_verified_at=live.services.clock.now()))
        uow.commit()


def test_oidcc_server(rp: Any, person: Any) -> None:
    state, tokens = rp.login_flow(person.identifier, "openid")
    id_token = tokens["id_token"]
    assert id_token["iss"] == rp.live.base_url
    assert rp.registered.client_id in id_token["aud"]
    assert tokens["token_type"] == "Bearer" and isinstance(tokens["expires_in"], int)
    assert id_token["exp"] > id_token["iat"]


def test_oidcc_idtoken_signature_and_rs256(rp: Any, person: Any) -> None:
    import jwt as pyjwt

    _, tokens = rp.login_flow(person.identifier)
    header = pyjwt.get_unverified_header(tokens["id_token_jwt"])
    assert header["alg"] == "RS256"
    assert header["kid"] in {k["kid"] for k in rp.jwks["keys"]}


def test_oidcc_idtoken_unsigned_is_not_offered(rp: Any, person: Any) -> None:
    assert "none" not in rp.provider["id_token_signing_alg_values_supported"]
    _, tokens = rp.login_flow(person.identifier, id_token_signed_response_alg="none")
    assert tokens["id_token_jwt"].count(".") == 2 and not tokens["id_token_jwt"].endswith(".")


@pytest.mark.parametrize("how", ["get", "post_header", "post_body"])
def test_oidcc_userinfo(rp: Any, person: Any, how: str) -> None:
    state, tokens = rp.login_flow(person.identifier, "openid profile")
    kwargs: dict[str, Any] = {"method": "GET"} if how == "get" else {"method": "POST"}
    if how == "post_header":
        kwargs["behavior"] = "use_authorization_header"
    info = rp.oic.do_user_info_request(state=state, **kwargs)
    assert "error" not in info.to_dict(), info.to_dict()
    assert info["sub"] == tokens["id_token"]["sub"]
    assert info["family_name"] == "Dupont"


def test_oidcc_ensure_request_without_nonce_succeeds_for_code_flow(rp: Any, person: Any) -> None:
    _, tokens = rp.login_flow(person.identifier, nonce=False)
    assert "nonce" not in tokens["id_token"]


def test_oidcc_scope_profile(rp: Any, person: Any) -> None:
    state, _ = rp.login_flow(person.identifier, "openid profile")
    info = rp.oic.do_user_info_request(state=state, method="GET")
    assert info["given_name"] == "Marie" and info["name"] == "Marie Dupont"


def test_oidcc_scope_email(rp: Any, person: Any) -> None:
    _verified_email(rp.live, person)
    state, _ = rp.login_flow(person.identifier, "openid email")
    info = rp.oic.do_user_info_request(state=state, method="GET")
    assert info["email"] == "marie.dupont@example.fr" and info["email_verified"] is True
    assert "family_name" not in info


def test_oidcc_scope_address_is_dropped_not_an_error(rp: Any, person: Any) -> None:
    state, tokens = rp.login_flow(person.identifier, "openid address")
    assert tokens["scope"] == ["openid"]
    assert "address" not in rp.oic.do_user_info_request(state=state, method="GET")


def test_oidcc_scope_phone_only_for_allowed_clients(oic_rp: Any, person: Any) -> None:
    library = oic_rp(name="Bibliothèque")
    _verified_email(library.live, person)
    state, _ = library.login_flow(person.identifier, "openid phone")
    assert "phone_number" not in library.oic.do_user_info_request(state=state, method="GET")
    allowed = oic_rp(name="Vie scolaire", scopes=("openid", "phone"))
    state, _ = allowed.login_flow(person.identifier, "openid phone")
    info = allowed.oic.do_user_info_request(state=state, method="GET")
    assert info["phone_number"] == "+33612345678" and info["phone_number_verified"] is True


def test_oidcc_scope_all(oic_rp: Any, person: Any) -> None:
    rp = oic_rp(scopes=("openid", "profile", "email", "phone"))
    _verified_email(rp.live, person)
    state, _ = rp.login_flow(person.identifier, "openid profile email address phone")
    info = rp.oic.do_user_info_request(state=state, method="GET")
    assert {"family_name", "email", "phone_number"} <= set(info.keys())


def test_oidcc_alternate_happy_flow(rp: Any, person: Any) -> None:
    url, state, _ = rp.request_url("profile openid")
    base, _, query = url.partition("?")
    reordered = base + "?" + "&".join(reversed(query.split("&")))
    answer = rp.parse(rp.follow(reordered, person.identifier))
    tokens = rp.token(state, answer["code"])
    rp.check_id_token(tokens["id_token_jwt"])


@pytest.mark.parametrize("display", ["page", "popup"])
def test_oidcc_display(rp: Any, person: Any, display: str) -> None:
    rp.login_flow(person.identifier, display=display)


def test_oidcc_prompt_login(rp: Any, person: Any, clock: FrozenClock) -> None:
    _, first = rp.login_flow(person.identifier)
    clock.advance(seconds=2)
    url, state, _ = rp.request_url(prompt="login")
    location = rp.follow(url, person.identifier)  # asserts the login page was shown again
    tokens = rp.token(state, rp.parse(location)["code"])
    assert tokens["id_token"]["auth_time"] > first["id_token"]["auth_time"]
    assert tokens["id_token"]["sub"] == first["id_token"]["sub"]


def test_oidcc_prompt_none_not_logged_in(rp: Any) -> None:
    url, state, _ = rp.request_url(prompt="none")
    answer = query_of(rp.follow(url))
    assert answer == {"error": "login_required", "state": state, "iss": rp.live.base_url}


def test_oidcc_prompt_none_logged_in(rp: Any, person: Any) -> None:
    _, first = rp.login_flow(person.identifier)
    _, second = rp.login_flow(None, prompt="none")
    assert second["id_token"]["sub"] == first["id_token"]["sub"]
    assert second["id_token"]["auth_time"] == first["id_token"]["auth_time"]


def test_oidcc_max_age_1(rp: Any, person: Any, clock: FrozenClock) -> None:
    _, first = rp.login_flow(person.identifier)
    clock.advance(seconds=2)
    _, second = rp.login_flow(person.identifier, max_age="1")  # follow() insists on a login page
    assert second["id_token"]["auth_time"] > first["id_token"]["auth_time"]


def test_oidcc_max_age_10000(rp: Any, person: Any, clock: FrozenClock) -> None:
    _, first = rp.login_flow(person.identifier)
    clock.advance(seconds=2)
    _, second = rp.login_flow(None, max_age="10000")
    assert second["id_token"]["auth_time"] == first["id_token"]["auth_time"]


def test_oidcc_ensure_request_with_unknown_parameter_succeeds(rp: Any, person: Any) -> None:
    rp.login_flow(person.identifier, extra="foobar")


def test_oidcc_id_token_hint(rp: Any, person: Any) -> None:
    _, first = rp.login_flow(person.identifier)
    _, second = rp.login_flow(None, prompt="none", id_token_hint=first["id_token_jwt"])
    assert second["id_token"]["sub"] == first["id_token"]["sub"]


def test_oidcc_login_hint(rp: Any, person: Any) -> None:
    url, _, _ = rp.request_url(login_hint=person.identifier)
    response = rp.browser.get(url, allow_redirects=False)
    assert response.status_code == 303 and "login_hint=" in response.headers["Location"]
    page = rp.browser.get(rp.live.base_url + response.headers["Location"] + "&profil=parent")
    assert f'value="{person.identifier}"' in page.text


@pytest.mark.parametrize("param", ["ui_locales", "claims_locales"])
def test_oidcc_ui_and_claims_locales(rp: Any, person: Any, param: str) -> None:
    rp.login_flow(person.identifier, **{param: "se fr"})


def test_oidcc_ensure_request_with_acr_values_succeeds(rp: Any, person: Any) -> None:
    _, tokens = rp.login_flow(person.identifier, acr_values="urn:idp:acr:password 1 2")
    assert tokens["id_token"]["acr"] == "urn:idp:acr:password"
    assert tokens["id_token"]["amr"] == ["pwd"]


@pytest.mark.parametrize("wait", [0, 30])
def test_oidcc_codereuse(rp: Any, person: Any, clock: FrozenClock, wait: int) -> None:
    url, state, _ = rp.request_url()
    code = rp.parse(rp.follow(url, person.identifier))["code"]
    tokens = rp.token(state, code)
    assert rp.oic.do_user_info_request(state=state, method="GET")["sub"]
    clock.advance(seconds=wait)
    again = rp.token(state, code)
    assert again["error"] == "invalid_grant"
    response = rp.browser.get(rp.provider["userinfo_endpoint"],
                              headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert response.status_code == 401  # the first exchange's token was revoked


def test_oidcc_ensure_registered_redirect_uri(rp: Any) -> None:
    url, _, _ = rp.request_url()
    bad = url.replace("callback", "callback-evil")
    response = rp.browser.get(bad, allow_redirects=False)
    assert response.status_code == 400 and "Location" not in response.headers
    assert "redirect_uri invalide" in response.text


def test_oidcc_ensure_redirect_uri_in_authorization_request(oic_rp: Any) -> None:
    rp = oic_rp(redirect_uris=("https://rp.ecole.test/callback", "https://rp.ecole.test/other"))
    url, _, _ = rp.request_url()
    base, _, query = url.partition("?")
    without = base + "?" + "&".join(p for p in query.split("&") if not p.startswith("redirect_uri="))
    response = rp.browser.get(without, allow_redirects=False)
    assert response.status_code == 400 and "Location" not in response.headers


def test_oidcc_ensure_post_request_succeeds(rp: Any, person: Any) -> None:
    url, state, _ = rp.request_url()
    location = rp.follow(url, person.identifier, method="POST")
    tokens = rp.token(state, rp.parse(location)["code"])
    rp.check_id_token(tokens["id_token_jwt"])


def test_oidcc_server_client_secret_post(oic_rp: Any, person: Any) -> None:
    rp = oic_rp(auth_method="client_secret_post")
    rp.login_flow(person.identifier)


def test_oidcc_request_uri_unsigned_rejected_as_unsupported(rp: Any, person: Any) -> None:
    url, state, _ = rp.request_url(request_uri="https://attacker.example/request.jwt")
    answer = query_of(rp.follow(url, person.identifier))
    assert answer["error"] == "request_uri_not_supported" and answer["state"] == state and "code" not in answer


def test_oidcc_unsigned_request_object_rejected_as_unsupported(rp: Any, person: Any) -> None:
    url, state, _ = rp.request_url()
    answer = query_of(rp.follow(url + "&request=eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9.", person.identifier))
    assert answer["error"] == "request_not_supported" and answer["state"] == state


def test_oidcc_claims_essential(rp: Any, person: Any) -> None:
    claims = {"userinfo": {"name": {"essential": True}}}
    state, _ = rp.login_flow(person.identifier, "openid profile", claims=claims)
    assert rp.oic.do_user_info_request(state=state, method="GET")["name"] == "Marie Dupont"


def test_oidcc_ensure_request_with_valid_pkce_succeeds(rp: Any, person: Any) -> None:
    rp.login_flow(person.identifier, pkce=True)


def test_oidcc_response_type_missing(rp: Any, person: Any) -> None:
    url, state, _ = rp.request_url()
    base, _, query = url.partition("?")
    without = base + "?" + "&".join(p for p in query.split("&") if not p.startswith("response_type="))
    answer = query_of(rp.follow(without, person.identifier))
    assert answer["error"] in ("unsupported_response_type", "invalid_request") and answer["state"] == state
    assert "code" not in answer and answer["iss"] == rp.live.base_url


@pytest.mark.parametrize("query", ["&foo=bar", ""])
def test_oidcc_redirect_uri_query_ok_added_mismatch(oic_rp: Any, person: Any, query: str) -> None:
    registered = "https://rp.ecole.test/callback?foo=bar"
    rp = oic_rp(redirect_uris=(registered,))
    rp.login_flow(person.identifier)  # oidcc-redirect-uri-query-OK
    url, _, _ = rp.request_url()
    changed = url.replace("foo%3Dbar", "foo%3Dbar%26added%3D1" if query else "foo%3Dbaz")
    response = rp.browser.get(changed, allow_redirects=False)
    assert response.status_code == 400 and "Location" not in response.headers


def test_oidcc_refresh_token(oic_rp: Any, person: Any) -> None:
    rp = oic_rp(refresh_tokens=True)
    state, tokens = rp.login_flow(person.identifier, "openid profile")
    refreshed = rp.oic.do_access_token_refresh(state=state, authn_method="client_secret_basic")
    assert "error" not in refreshed.to_dict(), refreshed.to_dict()
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    claims = rp.check_id_token(refreshed["id_token_jwt"])
    assert claims["sub"] == tokens["id_token"]["sub"]
    other = oic_rp(refresh_tokens=True, name="Autre")
    data = {"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]}
    response = other.browser.post(rp.provider["token_endpoint"], data=data,
                                  auth=(other.registered.client_id, other.registered.secret))
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_oidcc_ensure_client_assertion_with_iss_aud_succeeds(oic_rp: Any, person: Any, clock: FrozenClock) -> None:
    import datetime as dt
    import json

    clock.advance(seconds=(dt.datetime.now(dt.UTC) - clock.now()).total_seconds())  # oic signs with real time

    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": "rp-key-1", "alg": "RS256", "use": "sig"})
    rp = oic_rp(auth_method="private_key_jwt", jwks=json.dumps({"keys": [key.as_dict(private=False)]}))
    from oic.utils.keyio import KeyBundle

    bundle = KeyBundle(keys=[key.as_dict(private=True)])
    rp.oic.keyjar.add_kb("", bundle)
    rp.token_kwargs = {"lifetime": 60}  # oic's default of 10 min is beyond our 5 min cap (SECURITY O10)
    rp.login_flow(person.identifier)


def test_shows_a_registered_client_from_discovery_to_logout(oic_rp: Any, person: Any,
                                                            logout_receiver: Any) -> None:
    """The issue's "Shows": discovery, login, code exchange, userinfo, refresh and logout, all through oic."""
    rp = oic_rp(refresh_tokens=True, post_logout_redirect_uris=("https://rp.ecole.test/bye",),
                backchannel_logout_uri=logout_receiver.url)
    assert rp.provider["issuer"] == rp.live.base_url  # discovery (oic checked the issuer too)
    state, tokens = rp.login_flow(person.identifier, "openid profile", pkce=True)
    info = rp.oic.do_user_info_request(state=state, method="GET")
    assert info["sub"] == tokens["id_token"]["sub"] and info["family_name"] == "Dupont"
    refreshed = rp.oic.do_access_token_refresh(state=state, authn_method="client_secret_basic")
    rp.check_id_token(refreshed["id_token_jwt"])
    request = rp.oic.construct_EndSessionRequest(state=state, request_args={
        "post_logout_redirect_uri": "https://rp.ecole.test/bye", "state": "au-revoir"})
    response = rp.browser.get(request.request(rp.provider["end_session_endpoint"]), allow_redirects=False)
    assert response.status_code == 303
    assert response.headers["Location"] == "https://rp.ecole.test/bye?state=au-revoir"
    rp.live.services.extras["oidc_logout"].wait_idle(5)
    logout_receiver.event.wait(5)
    assert len(logout_receiver.tokens) == 1
    after = rp.browser.get(rp.provider["userinfo_endpoint"],
                           headers={"Authorization": f"Bearer {refreshed['access_token']}"})
    assert after.status_code == 401
