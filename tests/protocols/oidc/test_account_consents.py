"""The account page lists the OIDC consents a person gave and withdraws them (ASVS 10.7.3); an SSO session
that ends, however it ends, takes the refresh tokens born of it along (the single-logout hook)."""

from __future__ import annotations

import re
from typing import Any

from conftest import csrf_from
from flask import Flask
from sqlalchemy import select

from idp.storage.models import AuditEventRow
from idp.web.security import sso_cookie_name
from idp.wiring import Services

from .conftest import Browser, Clients, html_text

PARTNER = "Application partenaire"


def consented(browser: Browser, rp: Any, identifier: str, scope: str = "openid profile email") -> dict[str, Any]:
    """Log in, agree on the consent page, exchange the code: the tokens."""
    start = browser.authorize(rp, scope=scope, state="s")
    done = browser.login(start.headers["Location"], identifier)
    consent_url = browser.client.get(done.headers["Location"]).headers["Location"]
    page = browser.client.get(consent_url).get_data(as_text=True)
    answer = browser.client.post(consent_url, data={"decision": "accepter", "csrf_token": csrf_from(page)})
    code = re.search(r"code=([^&]+)", answer.headers["Location"])
    assert code is not None, answer.headers["Location"]
    response = browser.token(rp, code.group(1))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def refresh(browser: Browser, rp: Any, token: str) -> Any:
    return browser.post_token(rp, {"grant_type": "refresh_token", "refresh_token": token})


def test_account_page_lists_consents_in_french_with_a_withdraw_button(browser: Browser, clients: Clients,
                                                                     parent: Any) -> None:
    rp = clients(PARTNER, first_party=False, refresh_tokens=True, scopes=("openid", "profile", "email"))
    clients("ENT du collège")  # first party: pre-consented, never listed
    consented(browser, rp, parent.identifier, scope="openid profile")
    page = browser.client.get("/compte")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    text = html_text(page)
    assert "Services autorisés" in text and PARTNER in text and "ENT du collège" not in text
    assert "Vos nom et prénom" in text and "Votre identifiant pour ce service" in text
    assert "adresse mail vérifiée" not in text  # not granted
    assert re.search(r"Autorisé le \d{1,2} \S+ \d{4}, \d\d:\d\d", text)  # Europe/Paris
    form = re.search(r'<form method="post" action="(/compte/autorisations/[^"]+/retirer)">\s*'
                     r'<input type="hidden" name="csrf_token" value="[^"]+">', html)
    assert form is not None and rp.client_id in form.group(1)
    assert "Retirer mon autorisation" in text


def test_withdrawing_revokes_the_consent_and_the_clients_tokens(browser: Browser, clients: Clients, parent: Any,
                                                                services: Services) -> None:
    rp = clients(PARTNER, first_party=False, refresh_tokens=True, scopes=("openid", "profile", "email"))
    tokens = consented(browser, rp, parent.identifier)
    page = browser.client.get("/compte").get_data(as_text=True)
    url = f"/compte/autorisations/{rp.client_id}/retirer"
    assert browser.client.post(url, data={}).status_code == 400  # no CSRF token: nothing withdrawn
    assert refresh(browser, rp, tokens["refresh_token"]).status_code == 200
    done = browser.client.post(url, data={"csrf_token": csrf_from(page)})
    assert done.status_code == 303 and done.headers["Location"] == "/compte"
    after = browser.client.get("/compte")
    assert "Votre autorisation a été retirée" in html_text(after) and PARTNER not in html_text(after)
    with services.uow() as uow:
        events = [(e.event, e.details) for e in uow.session.scalars(
            select(AuditEventRow).where(AuditEventRow.account_id == parent.id))]
    assert any(event == "oidc_consent_withdrawn" and rp.client_id in str(details)
               for event, details in events)
    # the next authorization asks again
    again = browser.authorize(rp, scope="openid profile")
    assert again.headers["Location"].startswith("/oidc/consent/")


def test_withdrawn_consent_kills_refresh_and_access_tokens(browser: Browser, clients: Clients, parent: Any) -> None:
    rp = clients(PARTNER, first_party=False, refresh_tokens=True, scopes=("openid", "profile"))
    tokens = consented(browser, rp, parent.identifier, scope="openid profile")
    page = browser.client.get("/compte").get_data(as_text=True)
    browser.client.post(f"/compte/autorisations/{rp.client_id}/retirer", data={"csrf_token": csrf_from(page)})
    answer = refresh(browser, rp, tokens["refresh_token"])
    assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_grant"
    assert browser.userinfo(tokens["access_token"]).status_code == 401


def test_withdrawing_someone_elses_or_an_unknown_consent_changes_nothing(browser: Browser, clients: Clients,
                                                                        parent: Any, account_factory: Any,
                                                                        app: Flask, services: Services) -> None:
    rp = clients(PARTNER, first_party=False, refresh_tokens=True, scopes=("openid", "profile"))
    tokens = consented(browser, rp, parent.identifier, scope="openid profile")
    other = Browser(app.test_client(), services)
    someone = account_factory("Paul", "Martin")
    other.code_flow(clients("ENT"), someone.identifier)  # logged in, no consent of its own
    page = other.client.get("/compte/mot-de-passe").get_data(as_text=True)  # any form of the account pages
    assert "Vous n'avez autorisé aucun service extérieur" in html_text(other.client.get("/compte"))
    for client_id in (rp.client_id, "inconnu"):
        answer = other.client.post(f"/compte/autorisations/{client_id}/retirer", data={"csrf_token": csrf_from(page)})
        assert answer.status_code == 303
    assert refresh(browser, rp, tokens["refresh_token"]).status_code == 200
    logged_out = Browser(app.test_client(), services)
    assert logged_out.client.post(f"/compte/autorisations/{rp.client_id}/retirer").status_code in (303, 400)


def test_a_session_that_ends_takes_its_refresh_tokens_only(browser: Browser, clients: Clients, parent: Any,
                                                          app: Flask, services: Services) -> None:
    """What "Fermer cette session" on /compte and a password change do: end sessions, then run the hooks."""
    rp = clients(refresh_tokens=True)
    phone = Browser(app.test_client(), services)
    on_computer = browser.tokens(rp, parent.identifier)
    on_phone = phone.tokens(rp, parent.identifier)
    now = services.clock.now()
    cookie = phone.client.get_cookie(sso_cookie_name(services.settings))
    assert cookie is not None
    current = services.flow.current_session(cookie.value)
    assert current is not None
    phone_session = current[0]
    with services.uow() as uow:
        assert len(uow.sessions.active_for_account(parent.id, now)) == 2
        uow.sessions.end(phone_session.id, now)
        uow.commit()
    for hook in services.extras["logout_hooks"]:
        hook(phone_session)
    answer = refresh(phone, rp, on_phone["refresh_token"])
    assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_grant"
    assert phone.userinfo(on_phone["access_token"]).status_code == 401
    assert refresh(browser, rp, on_computer["refresh_token"]).status_code == 200
