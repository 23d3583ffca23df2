"""``/cas/validate`` (CAS 1.0, §2.4): ``yes``/``no`` text, single use, proxy tickets refused."""

from __future__ import annotations

from cas import CASClient

from .conftest import SERVICE, CasBrowser, People, fetch


def test_python_cas_v1_validates_once(browser: CasBrowser, people: People, register, live: str) -> None:
    register()
    ticket = browser.first_login(people.parent.identifier)
    client = CASClient(version=1, service_url=SERVICE, server_url=live)
    user, attributes, pgtiou = client.verify_ticket(ticket)
    assert user and user != people.parent.identifier and attributes is None and pgtiou is None
    assert client.verify_ticket(ticket) == (None, None, None)


def test_text_format(browser: CasBrowser, people: People, register, live: str) -> None:
    register()
    ticket = browser.first_login(people.parent.identifier)
    ok = fetch(live + "validate", params={"ticket": ticket, "service": SERVICE})
    assert ok.headers["Content-Type"] == "text/plain; charset=utf-8"
    lines = ok.text.split("\n")
    assert lines[0] == "yes" and lines[1] and lines[2] == ""
    again = fetch(live + "validate", params={"ticket": ticket, "service": SERVICE})
    assert again.text == "no\n\n"


def test_wrong_service_and_missing_parameters_say_no(browser: CasBrowser, people: People, register,
                                                     live: str) -> None:
    register()
    ticket = browser.first_login(people.parent.identifier)
    assert fetch(live + "validate", params={"ticket": ticket, "service": "https://evil.tld/"}).text \
        == "no\n\n"
    assert fetch(live + "validate", params={"ticket": ticket, "service": SERVICE}).text == "no\n\n"
    assert fetch(live + "validate", params={"service": SERVICE}).text == "no\n\n"


def test_renew_on_validate(browser: CasBrowser, people: People, register, live: str) -> None:
    register()
    fresh = browser.first_login(people.parent.identifier)
    sso = browser.sso().headers["Location"].split("ticket=")[1]
    assert fetch(live + "validate", params={"ticket": fresh, "service": SERVICE, "renew": "true"}) \
        .text.startswith("yes\n")
    assert fetch(live + "validate", params={"ticket": sso, "service": SERVICE, "renew": "true"}).text \
        == "no\n\n"
