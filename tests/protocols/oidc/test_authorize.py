"""Authorization endpoint: untrusted requests get a French page (O01, O02), trusted errors go back with state
and iss (O12–O18), the login answers with 303 (O27), consent for third-party clients (O26)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient

from idp.errors import AuthnFailure
from idp.oidc.mapping import OIDC_ERROR

from .conftest import REDIRECT, Browser, Clients, html_text, query_of

EVIL_VARIANTS = [
    REDIRECT + "/extra",  # extra path
    REDIRECT + "?a=1",  # query added
    REDIRECT + "#frag",  # fragment
    REDIRECT.replace("callback", "Callback"),  # case change in path
    REDIRECT + "/",  # trailing slash
    "https://rp.ecole.test.evil.tld/callback",
    "https://rp.ecole.test@evil.tld/callback",
    "https://rp.ecole.test/%2e%2e/callback",
    "https://rp.ecole.test/callback%252f",  # double encoding
    REDIRECT.replace("https://", "http://"),
    "https://RP.ECOLE.TEST/callback",
    "http://localhost/callback",
    "https://rp.ecole.test:443/callback",
    " " + REDIRECT,
]


def _assert_page(response: Any, text: str) -> None:
    assert response.status_code == 400
    assert "Location" not in response.headers
    page = html_text(response)
    assert text in page and 'lang="fr"' in page


@pytest.mark.parametrize("redirect_uri", EVIL_VARIANTS)
def test_redirect_uri_must_be_byte_identical(browser: Browser, clients: Clients, redirect_uri: str) -> None:
    rp = clients()
    _assert_page(browser.authorize(rp, redirect_uri=redirect_uri), "redirect_uri invalide")


def test_unknown_or_disabled_client_gets_a_page(browser: Browser, clients: Clients, services: Any) -> None:
    from sqlalchemy import update

    from idp.storage.oidc_store import OidcClientRow

    rp = clients()
    _assert_page(browser.authorize(rp, client_id="inconnu"), "Application inconnue")
    _assert_page(browser.authorize(rp, client_id=None), "Application inconnue")
    with services.uow() as uow:
        uow.session.execute(update(OidcClientRow).values(enabled=False))
        uow.commit()
    services.frontends["oidc"].server.forget_clients()  # what the 5 s client cache would do by itself
    _assert_page(browser.authorize(rp), "Application inconnue")


def test_missing_redirect_uri_for_openid_is_a_page_even_with_one_registered(browser: Browser, clients: Clients) -> None:
    rp = clients()
    _assert_page(browser.authorize(rp, redirect_uri=None), "redirect_uri invalide")


def test_plain_oauth_with_one_registered_uri_may_default(browser: Browser, clients: Clients, parent: Any) -> None:
    rp = clients()
    query = browser.code_flow(rp, parent.identifier, redirect_uri=None, scope="profile")
    assert "code" in query
    response = browser.token(rp, query["code"], redirect_uri=None)
    assert response.status_code == 200
    assert "id_token" not in response.get_json()


def test_repeated_redirect_uri_is_a_page(browser: Browser, clients: Clients, client: FlaskClient) -> None:
    rp = clients()
    query = urlencode([("client_id", rp.client_id), ("response_type", "code"), ("scope", "openid"),
                       ("redirect_uri", REDIRECT), ("redirect_uri", REDIRECT)])
    _assert_page(client.get("/oidc/authorize?" + query), "redirect_uri invalide")


@pytest.mark.parametrize("response_type", ["token", "id_token token", "code id_token", "id_token", "", None])
def test_only_the_code_flow(browser: Browser, clients: Clients, parent: Any, response_type: str | None) -> None:
    rp = clients()
    response = browser.authorize(rp, response_type=response_type or None, state="s1")
    if response_type is None:
        response = browser.client.get(response.request.url.replace("response_type=code&", ""))
    assert response.status_code == 302
    query = query_of(response.headers["Location"])
    assert query["error"] in ("unsupported_response_type", "invalid_request")
    assert query["state"] == "s1" and query["iss"] == "https://idp.test" and "code" not in query


def test_errors_keep_state_byte_for_byte_and_clean_descriptions(browser: Browser, clients: Clients) -> None:
    rp = clients()
    state = "état avec espaces & symboles=?/#"
    response = browser.authorize(rp, response_type="token", state=state)
    query = query_of(response.headers["Location"])
    assert query["state"] == state
    assert not any(c in query.get("error_description", "") for c in "\r\n\t")


@pytest.mark.parametrize("prompt", ["none login", "none consent"])
def test_prompt_none_with_other_values(browser: Browser, clients: Clients, prompt: str) -> None:
    rp = clients()
    query = query_of(browser.authorize(rp, prompt=prompt, state="p").headers["Location"])
    assert query["error"] == "invalid_request" and query["state"] == "p"


def test_repeated_parameter_is_invalid_request(clients: Clients, client: FlaskClient) -> None:
    rp = clients()
    query = urlencode([("client_id", rp.client_id), ("response_type", "code"), ("scope", "openid"),
                       ("redirect_uri", REDIRECT), ("state", "a"), ("nonce", "1"), ("nonce", "2")])
    response = client.get("/oidc/authorize?" + query)
    assert query_of(response.headers["Location"])["error"] == "invalid_request"


def test_request_uri_is_never_fetched(browser: Browser, clients: Clients, parent: Any) -> None:
    # An address nothing listens on: fetching it would hang or fail; the answer must be immediate.
    rp = clients()
    response = browser.authorize(rp, request_uri="http://127.0.0.1:9/never", state="r")
    query = query_of(response.headers["Location"])
    assert query["error"] == "request_uri_not_supported" and query["state"] == "r"


def test_scope_outside_allowlist_is_never_granted(browser: Browser, clients: Clients, parent: Any) -> None:
    library = clients("Bibliothèque", scopes=("openid", "profile"))
    tokens = browser.tokens(library, parent.identifier, scope="openid profile phone fr_edu_ine email unknown")
    assert tokens["scope"] == "openid profile"
    claims = browser.userinfo(tokens["access_token"]).get_json()
    assert "phone_number" not in claims and "email" not in claims and "FrEduCtEleveINE" not in claims


def test_login_post_answers_303_then_the_client_redirect(browser: Browser, clients: Clients, parent: Any) -> None:
    rp = clients()
    start = browser.authorize(rp, state="x")
    assert start.status_code == 303 and start.headers["Location"].startswith("/login/")
    done = browser.login(start.headers["Location"], parent.identifier)
    assert done.status_code == 303 and done.headers["Location"].startswith("/oidc/resume/")
    final = browser.client.get(done.headers["Location"])
    assert final.status_code == 302
    query = query_of(final.headers["Location"])
    assert set(query) == {"code", "state", "iss"} and query["state"] == "x"


def test_post_authorization_with_session_answers_303(browser: Browser, clients: Clients, parent: Any) -> None:
    rp = clients()
    browser.code_flow(rp, parent.identifier)
    response = browser.authorize(rp, method="POST", state="y")
    assert response.status_code == 303 and "code=" in response.headers["Location"]


def test_resume_is_single_use(browser: Browser, clients: Clients, parent: Any) -> None:
    rp = clients()
    start = browser.authorize(rp)
    done = browser.login(start.headers["Location"], parent.identifier)
    assert browser.client.get(done.headers["Location"]).status_code == 302
    again = browser.client.get(done.headers["Location"])
    assert again.status_code == 400 and "Location" not in again.headers


def test_every_authn_failure_has_an_oidc_error() -> None:
    assert set(OIDC_ERROR) == set(AuthnFailure)


# --- consent (O26) ---------------------------------------------------------------------------------


def _third_party(clients: Clients) -> Any:
    return clients("Application partenaire", first_party=False, scopes=("openid", "profile", "email"))


def test_first_party_client_is_pre_consented(browser: Browser, clients: Clients, parent: Any) -> None:
    assert "code" in browser.code_flow(clients(), parent.identifier)


def test_third_party_client_shows_scopes_in_french_and_consent_is_stored(browser: Browser, clients: Clients,
                                                                         parent: Any, services: Any) -> None:
    from conftest import csrf_from

    from idp.storage.oidc_store import SqlOidcStore

    rp = _third_party(clients)
    start = browser.authorize(rp, scope="openid profile", state="c")
    done = browser.login(start.headers["Location"], parent.identifier)
    consent_url = browser.client.get(done.headers["Location"]).headers["Location"]
    assert consent_url.startswith("/oidc/consent/")
    page = browser.client.get(consent_url)
    text = html_text(page)
    assert "Application partenaire" in text and "Vos nom et prénom" in text and "adresse électronique" not in text
    answer = browser.client.post(consent_url, data={"decision": "accepter", "csrf_token": csrf_from(text)})
    assert answer.status_code == 303 and "code=" in answer.headers["Location"]
    # next time, no consent page; the account page can list and withdraw it
    assert "code" in browser.code_flow(rp, None, scope="openid profile")
    with services.uow() as uow:
        listed = SqlOidcStore(uow.session).consents(parent.id)
        assert [c.client_id for c in listed] == [rp.client_id] and listed[0].scope == ("openid", "profile")
        SqlOidcStore(uow.session).revoke_consent(parent.id, rp.client_id, services.clock.now())
        uow.commit()
    again = browser.authorize(rp, scope="openid profile")
    assert again.headers["Location"].startswith("/oidc/consent/")


def test_declined_consent_is_access_denied(browser: Browser, clients: Clients, parent: Any) -> None:
    from conftest import csrf_from

    rp = _third_party(clients)
    start = browser.authorize(rp, state="d")
    done = browser.login(start.headers["Location"], parent.identifier)
    consent_url = browser.client.get(done.headers["Location"]).headers["Location"]
    page = html_text(browser.client.get(consent_url))
    answer = browser.client.post(consent_url, data={"decision": "refuser", "csrf_token": csrf_from(page)})
    query = query_of(answer.headers["Location"])
    assert query["error"] == "access_denied" and query["state"] == "d" and "code" not in query
    replay = browser.client.post(consent_url, data={"decision": "accepter", "csrf_token": csrf_from(page)})
    assert replay.status_code == 400


def test_consent_page_needs_csrf_and_prompt_none_gives_consent_required(browser: Browser, clients: Clients,
                                                                        parent: Any) -> None:
    rp = _third_party(clients)
    start = browser.authorize(rp)
    done = browser.login(start.headers["Location"], parent.identifier)
    consent_url = browser.client.get(done.headers["Location"]).headers["Location"]
    assert browser.client.post(consent_url, data={"decision": "accepter"}).status_code == 400
    query = query_of(browser.authorize(rp, prompt="none", state="n").headers["Location"])
    assert query["error"] == "consent_required" and query["state"] == "n"
