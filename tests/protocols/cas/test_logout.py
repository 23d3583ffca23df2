"""``/cas/logout`` and single logout: registered ``service`` only (C01), ``url`` ignored (C13), the
``logoutRequest`` POST received by a test server, fire and forget, logout from the portal reaches CAS too."""

from __future__ import annotations

import html
import time

from cas import CASClient

from .conftest import SERVICE, CasBrowser, People, csrf_of, quote, ticket_from


def _page(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_get_asks_for_confirmation_and_post_logs_out(browser: CasBrowser, people: People, register) -> None:
    register()
    browser.first_login(people.parent.identifier)
    confirm = browser.client.get("/cas/logout?service=" + quote(SERVICE))
    assert confirm.status_code == 200 and "Me déconnecter" in _page(confirm)
    assert browser.sso().status_code == 302  # a GET alone ends nothing (W03)
    done = browser.client.post("/cas/logout", data={"csrf_token": csrf_of(confirm), "service": SERVICE})
    assert done.status_code == 200
    page = _page(done)
    assert "Vous êtes déconnecté" in page and 'href="https://ent.example.fr/app/"' in page
    assert any(c.startswith("__Host-sso=;") for c in done.headers.getlist("Set-Cookie"))
    again = browser.sso()
    assert again.status_code == 303 and again.headers["Location"].startswith("/login/")


def test_post_without_csrf_token_is_refused(browser: CasBrowser, people: People, register) -> None:
    register()
    browser.first_login(people.parent.identifier)
    assert browser.client.post("/cas/logout").status_code == 400
    assert browser.sso().status_code == 302


def test_unregistered_service_on_logout_gets_the_page(browser: CasBrowser, people: People, register) -> None:
    """C01: same refusal as /login, no redirect, session untouched."""
    register()
    browser.first_login(people.parent.identifier)
    response = browser.client.get("/cas/logout?service=" + quote("https://evil.tld/"))
    assert response.status_code == 400 and "Application non autorisée" in _page(response)
    assert "Location" not in response.headers
    assert browser.sso().status_code == 302


def test_url_parameter_is_ignored(browser: CasBrowser, people: People, register) -> None:
    """C13: the CAS 2.0 ``url`` parameter never becomes a link or a redirect."""
    register()
    browser.first_login(people.parent.identifier)
    confirm = browser.client.get("/cas/logout?url=" + quote("https://evil.tld/"))
    assert "evil.tld" not in confirm.get_data(as_text=True)
    done = browser.client.post("/cas/logout?url=" + quote("https://evil.tld/"),
                               data={"csrf_token": csrf_of(confirm)})
    assert done.status_code == 200 and "evil.tld" not in done.get_data(as_text=True)
    assert "Location" not in done.headers


def test_logout_without_session_shows_the_logged_out_page(browser: CasBrowser, register) -> None:
    register()
    response = browser.client.get("/cas/logout?service=" + quote(SERVICE))
    assert response.status_code == 200 and "Vous êtes déconnecté" in _page(response)


def test_single_logout_post_reaches_the_service(browser: CasBrowser, people: People, register, tls_service,
                                                certificate, live: str) -> None:
    server = tls_service()
    service = server.base + "/app/"
    register(service, "slo", slo=True, ca_file=str(certificate.cert))
    register(SERVICE, "quiet")  # no single logout: never called
    ticket = browser.first_login(people.parent.identifier, service)
    CASClient(version=3, service_url=service, server_url=live).verify_ticket(ticket)
    second = ticket_from(browser.sso(service))  # each ticket of the session is announced (its SessionIndex)
    ticket_from(browser.sso())
    confirm = browser.client.get("/cas/logout")
    browser.client.post("/cas/logout", data={"csrf_token": csrf_of(confirm)})
    deadline = time.monotonic() + 5
    while len(server.received) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(server.received) == 2
    client = CASClient(version=3, service_url=service, server_url=live)
    documents = [r.form["logoutRequest"][0] for r in server.received]
    assert all(r.method == "POST" and r.path == "/app/" for r in server.received)
    assert any(client.verify_logout_request(d, ticket) for d in documents)
    assert any(client.verify_logout_request(d, second) for d in documents)
    assert all("@NOT_USED@" in d for d in documents)


def test_logout_from_the_portal_reaches_cas_services(browser: CasBrowser, people: People, register, tls_service,
                                                     certificate) -> None:
    """Cross-protocol logout: the common /logout runs the CAS hook too."""
    server = tls_service()
    service = server.base + "/app/"
    register(service, "slo", slo=True, ca_file=str(certificate.cert))
    ticket = browser.first_login(people.parent.identifier, service)
    confirm = browser.client.get("/logout")
    browser.client.post("/logout", data={"csrf_token": csrf_of(confirm)})
    assert server.wait()
    assert ticket in server.received[0].form["logoutRequest"][0]


def test_a_hanging_service_never_blocks_the_logout(browser: CasBrowser, people: People, register, tls_service,
                                                   certificate) -> None:
    """C13: fire and forget: the service hangs, the logout answers at once; a dead service is ignored."""
    hanging = tls_service(hang=True)
    register(hanging.base + "/app/", "hang", slo=True, ca_file=str(certificate.cert))
    register("https://127.0.0.1:1/app/", "dead", slo=True)
    browser.first_login(people.parent.identifier, hanging.base + "/app/")
    ticket_from(browser.sso("https://127.0.0.1:1/app/"))
    confirm = browser.client.get("/cas/logout")
    started = time.monotonic()
    done = browser.client.post("/cas/logout", data={"csrf_token": csrf_of(confirm)})
    assert done.status_code == 200 and time.monotonic() - started < 1.0
    assert hanging.wait()
    hanging.release.set()


def test_single_logout_still_reaches_services_when_the_ticket_store_is_down(
        browser: CasBrowser, people: People, register, tls_service, certificate, services) -> None:
    """R01: the tickets cannot be dropped (Redis down): the logout still answers and services still hear."""
    import datetime as dt

    from idp.storage.cas_redis import RedisCasTickets
    from idp.storage.redis_store import connect

    server = tls_service()
    service = server.base + "/app/"
    register(service, "slo", slo=True, ca_file=str(certificate.cert))
    ticket = browser.first_login(people.parent.identifier, service)
    services.extras["cas"].tickets = RedisCasTickets(connect("redis://127.0.0.1:1/0"),
                                                     attributes_ttl=dt.timedelta(hours=1))
    confirm = browser.client.get("/cas/logout")
    done = browser.client.post("/cas/logout", data={"csrf_token": csrf_of(confirm)})
    assert done.status_code == 200 and "Vous êtes déconnecté" in _page(done)
    assert server.wait()
    assert ticket in server.received[0].form["logoutRequest"][0]
