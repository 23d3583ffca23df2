"""``/cas/login``: registry checks (C01, C02), tickets (C10, C12), renew and gateway (C07), method=POST,
cross-protocol SSO. The browser is the Flask test client; tickets are validated with python-cas."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from cas import CASClient

from idp.storage.models import AuditEventRow

from .conftest import SERVICE, TICKET_FORMAT, CasBrowser, People, quote, ticket_from

BYPASSES = [
    "https://ent.example.fr.evil.tld/app/",
    "https://ent.example.fr@evil.tld/app/",
    "https://evil.tld/?x=https://ent.example.fr/app/",
    "https://ent.example.fr%2F@evil.tld/app/",
    "https://ent.example.fr%2Fevil.tld/app/",
    "https://ent.example.fr/app/\r\nSet-Cookie: x=1",
    "https://ent.example.fr/app/%0d%0aLocation: https://evil.tld/",
    "javascript:alert(document.domain)//https://ent.example.fr/app/",
    "https://ent.example.fr\\@evil.tld/app/",
    " https://ent.example.fr/app/",
    "//ent.example.fr/app/",
    "https://ent.example.fr:8443/app/",
    "https://ENT.example.fr.evil.tld/app/",
]


def _page(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_sso_session_gets_a_ticket_for_a_registered_service(browser: CasBrowser, people: People, register,
                                                            live: str) -> None:
    register()
    ticket = browser.first_login(people.parent.identifier)
    assert TICKET_FORMAT.match(ticket) and ticket.startswith("ST-")
    client = CASClient(version=3, service_url=SERVICE, server_url=live)
    user, attributes, _ = client.verify_ticket(ticket)
    assert user and user != people.parent.identifier
    assert attributes["isFromNewLogin"] == "true"
    again = ticket_from(browser.sso())  # no password this time
    user2, attributes2, _ = client.verify_ticket(again)
    assert user2 == user and attributes2["isFromNewLogin"] == "false"


@pytest.mark.parametrize("service", BYPASSES)
def test_unregistered_or_malformed_service_gets_a_page_never_a_redirect(browser: CasBrowser, register,
                                                                        people: People, service: str) -> None:
    """C01/C02: a French page "Application non autorisée", HTTP 400, no ticket, no redirect."""
    register()
    browser.first_login(people.parent.identifier)  # even with a live SSO session
    response = browser.client.get("/cas/login?service=" + quote(service))
    assert response.status_code == 400
    assert "Location" not in response.headers
    page = _page(response)
    assert "Application non autorisée" in page and 'lang="fr"' in page
    assert "ticket=" not in page and "ST-" not in page


def test_exact_registration_refuses_other_paths_and_http(browser: CasBrowser, register, people: People,
                                                         services) -> None:
    register("https://pronote.example.fr/pronote/eleve.html", "pronote", match="exact")
    browser.first_login(people.pupil.identifier, "https://pronote.example.fr/pronote/eleve.html")
    assert browser.sso("https://pronote.example.fr/pronote/eleve.html").status_code == 302
    for other in ("https://pronote.example.fr/pronote/eleve.html/x", "https://pronote.example.fr/pronote/",
                  "http://pronote.example.fr/pronote/eleve.html"):
        assert browser.sso(other).status_code == 400, other


def test_regex_registration_is_anchored(browser: CasBrowser, register, people: People) -> None:
    register(r"https://ent\.example\.fr/(app|portail)/", "ent", match="regex")
    browser.first_login(people.parent.identifier)
    assert browser.sso("https://ent.example.fr/portail/").status_code == 302
    assert browser.sso("https://ent.example.fr/portail/x").status_code == 400
    assert browser.sso("https://ent.example.fr/xapp/").status_code == 400


def test_no_ticket_nothing_stored_for_unregistered_service(browser: CasBrowser, services, register) -> None:
    register()
    response = browser.client.get("/cas/login?service=" + quote("https://evil.tld/"))
    assert response.status_code == 400
    with services.uow() as uow:
        assert uow.session.query(AuditEventRow).count() == 0


def test_service_with_ticket_and_fragment_gets_one_ticket_before_the_fragment(browser: CasBrowser, register,
                                                                              people: People, live: str) -> None:
    """C12: an old ``ticket=`` is dropped, exactly one is appended, the fragment comes last."""
    register()
    browser.first_login(people.parent.identifier)
    response = browser.sso("https://ent.example.fr/app/page?x=1&ticket=ST-old&y=2#section")
    location = response.headers["Location"]
    parts = urlsplit(location)
    assert parts.fragment == "section"
    query = parse_qs(parts.query)
    assert query["x"] == ["1"] and query["y"] == ["2"] and len(query["ticket"]) == 1
    assert query["ticket"][0] != "ST-old"
    # The service validates with its own URL (what python-cas sends: without the ticket, no fragment).
    client = CASClient(version=2, service_url="https://ENT.example.fr:443/app/page?x=1&y=2", server_url=live)
    user, _, _ = client.verify_ticket(query["ticket"][0])
    assert user


def test_ticket_format_and_entropy(browser: CasBrowser, register, people: People) -> None:
    """C10: ``ST-`` + ``[A-Za-z0-9-]``, at most 256 characters, 192 random bits, all different."""
    register()
    browser.first_login(people.parent.identifier)
    tickets = {ticket_from(browser.sso()) for _ in range(20)}
    assert len(tickets) == 20
    for ticket in tickets:
        assert re.fullmatch(r"ST-[A-Za-z0-9]{33}", ticket) and len(ticket) <= 256


def test_sso_cookie_is_the_tgc(browser: CasBrowser, register, people: People) -> None:
    """C10: the TGT is the SSO session; its cookie is ``__Host-``, Secure, HttpOnly (Path=/ is what
    ``__Host-`` requires)."""
    register()
    form = browser.login.start("/cas/login?service=" + quote(SERVICE))
    done = browser.login.submit(form + "?profil=parent", people.parent.identifier, "Velo-Rouge-Garonne-42")
    cookie = next(c for c in done.headers.getlist("Set-Cookie") if c.startswith("__Host-sso="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "Path=/" in cookie and "Domain" not in cookie


def test_renew_forces_the_password_and_marks_the_ticket_fresh(browser: CasBrowser, register, people: People,
                                                              live: str) -> None:
    """C07: ``renew=true`` on /login shows the login form even with a session; its ticket passes ``renew``."""
    register()
    browser.first_login(people.parent.identifier)
    response = browser.sso(extra="&renew=true")
    assert response.status_code == 303 and response.headers["Location"].startswith("/login/")
    ticket = browser.first_login(people.parent.identifier, extra="&renew=true")
    client = CASClient(version=3, service_url=SERVICE, server_url=live, renew=True)
    params = {"ticket": ticket, "service": SERVICE, "renew": "true"}
    body = client.session.get(live + "p3/serviceValidate", params=params).text
    assert "authenticationSuccess" in body and "<cas:isFromNewLogin>true<" in body


def test_gateway_without_session_returns_without_ticket(browser: CasBrowser, register) -> None:
    """C07: ``gateway=true`` and no session: straight back to the service, no ``ticket``."""
    register()
    response = browser.sso("https://ent.example.fr/app/?x=1", extra="&gateway=true")
    assert response.status_code == 302
    assert response.headers["Location"] == "https://ent.example.fr/app/?x=1"


def test_gateway_with_session_issues_a_ticket(browser: CasBrowser, register, people: People) -> None:
    register()
    browser.first_login(people.parent.identifier)
    assert ticket_from(browser.sso(extra="&gateway=true")).startswith("ST-")


def test_gateway_on_unregistered_service_still_refused(browser: CasBrowser, register) -> None:
    register()
    response = browser.client.get("/cas/login?gateway=true&service=" + quote("https://evil.tld/"))
    assert response.status_code == 400 and "Location" not in response.headers


def test_method_post_answers_with_a_form_that_works_without_javascript(browser: CasBrowser, register,
                                                                       people: People) -> None:
    register()
    browser.first_login(people.parent.identifier)
    response = browser.sso(extra="&method=POST")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'method="post" action="https://ent.example.fr/app/"' in page
    assert re.search(r'name="ticket" value="ST-[A-Za-z0-9]+"', page)
    assert '<button type="submit"' in page
    csp = response.headers["Content-Security-Policy"]
    assert "form-action https://ent.example.fr" in csp and "unsafe-inline" not in csp
    assert "script-src 'sha256-" in csp


def test_login_without_service_goes_to_the_portal(browser: CasBrowser) -> None:
    response = browser.client.get("/cas/login")
    assert response.status_code == 303 and response.headers["Location"].endswith("/login")


def test_portal_session_gets_a_cas_ticket_without_password(browser: CasBrowser, register, people: People,
                                                           live: str) -> None:
    """Cross-protocol SSO: a session opened at the portal (/login) answers CAS at once."""
    register()
    response = browser.login(people.parent.identifier)
    assert response.status_code == 303
    ticket = ticket_from(browser.sso())
    user, attributes, _ = CASClient(version=3, service_url=SERVICE, server_url=live).verify_ticket(ticket)
    assert user and attributes["isFromNewLogin"] == "false"


def test_cas_session_opens_the_portal(browser: CasBrowser, register, people: People) -> None:
    """And the reverse: after a CAS login, "Mes services" opens without a password and lists the service."""
    register(home_url="https://ent.example.fr/app/")
    browser.first_login(people.parent.identifier)
    page = browser.client.get("/services")
    assert page.status_code == 200 and "ENT" in _page(page)


def test_provisional_session_gets_no_ticket(browser: CasBrowser, register, account_factory) -> None:
    from idp.core.accounts.model import AccountState

    register()
    account = account_factory("Paul", "Durand", state=AccountState.PROVISIONAL)
    form = browser.login.start("/cas/login?service=" + quote(SERVICE))
    done = browser.login.submit(form + "?profil=parent", account.identifier, "Velo-Rouge-Garonne-42")
    assert "/cas/resume/" not in done.headers.get("Location", "")
    again = browser.sso()
    assert again.status_code == 303 and again.headers["Location"].startswith("/login/")
