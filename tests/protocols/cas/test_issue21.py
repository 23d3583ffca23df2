"""Issue 21 items 4 and 5 through the test client: dot-segments and encoded slashes in ``service`` for every
match kind on ``/login``, ``/logout`` and the validations (C15); ``renew`` and ``gateway``
set by their mere presence, on ``/login`` and on every validation endpoint (C07, CAS 3.0 §2.1.1)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from .conftest import SERVICE, CasBrowser, People, csrf_of, quote, ticket_from

PATTERNS = {"exact": "https://ent.example.fr/admin/", "prefix": "https://ent.example.fr/app/",
            "regex": r"https://ent\.example\.fr/app/.*"}
ESCAPES = ["https://ent.example.fr/app/../admin/", "https://ent.example.fr/app/%2e%2e/admin/",
           "https://ent.example.fr/app/..%2Fadmin/", "https://ent.example.fr/app/%2E%2E%2Fadmin/",
           "https://ent.example.fr/app/%252e%252e/admin/", "https://ent.example.fr/app/..;/admin/",
           "https://ent.example.fr/app/./../admin/"]
VALIDATIONS = ["/cas/validate", "/cas/serviceValidate", "/cas/proxyValidate", "/cas/p3/serviceValidate",
               "/cas/p3/proxyValidate"]


def _refused(response) -> bool:
    return response.status_code == 400 and "Location" not in response.headers \
        and "Application non autorisée" in response.get_data(as_text=True)


# --- item 4: dot-segments --------------------------------------------------------------------------------


@pytest.mark.parametrize("match", list(PATTERNS))
@pytest.mark.parametrize("service", ESCAPES)
def test_login_refuses_dot_segments_with_a_session(browser: CasBrowser, people: People, register, match: str,
                                                   service: str) -> None:
    register(PATTERNS[match], match=match)
    if match != "exact":  # what RFC 3986 §5.2.4 would resolve them to is registered too: still refused
        register(PATTERNS["exact"], "admin", match="exact")
    browser.first_login(people.parent.identifier, PATTERNS["exact"])
    assert _refused(browser.sso(service)), service
    assert _refused(browser.sso(service, extra="&renew=true")), service


@pytest.mark.parametrize("service", ESCAPES)
def test_login_refuses_dot_segments_without_a_session(browser: CasBrowser, register, service: str) -> None:
    register()
    assert _refused(browser.client.get("/cas/login?gateway=true&service=" + quote(service)))
    assert _refused(browser.sso(service))


@pytest.mark.parametrize("service", ESCAPES[:4])
def test_logout_refuses_dot_segments(browser: CasBrowser, people: People, register, service: str) -> None:
    register()
    browser.first_login(people.parent.identifier)
    assert _refused(browser.client.get("/cas/logout?service=" + quote(service)))
    confirm = browser.client.get("/cas/logout")
    done = browser.client.post("/cas/logout", data={"csrf_token": csrf_of(confirm), "service": service})
    assert _refused(done)
    assert browser.sso().status_code == 302  # nothing ended


@pytest.mark.parametrize("path", VALIDATIONS)
def test_validations_refuse_a_ticket_for_a_dotted_service(browser: CasBrowser, people: People, register,
                                                          path: str) -> None:
    """A ticket for ``/app/x`` is not valid for ``/app/../app/x`` (nor any other spelling that escapes)."""
    register()
    ticket = browser.first_login(people.parent.identifier, "https://ent.example.fr/app/x")
    query = urlencode({"ticket": ticket, "service": "https://ent.example.fr/app/y/../x"})
    body = browser.client.get(f"{path}?{query}").get_data(as_text=True)
    assert body == "no\n\n" if path == "/cas/validate" else 'code="INVALID_SERVICE"' in body, body


def test_an_equivalent_spelling_of_the_service_validates(browser: CasBrowser, people: People, register) -> None:
    """Unreserved escapes decoded, host lower-cased, default port dropped: the same service (RFC 3986 §6.2.2)."""
    register()
    ticket = browser.first_login(people.parent.identifier, "https://ent.example.fr/app/~x/")
    query = urlencode({"ticket": ticket, "service": "https://ENT.example.fr:443/%61pp/%7Ex/"})
    assert "authenticationSuccess" in browser.client.get(f"/cas/serviceValidate?{query}").get_data(as_text=True)


# --- item 5: renew and gateway ---------------------------------------------------------------------------


@pytest.mark.parametrize("extra", ["&renew", "&renew=", "&renew=true", "&renew=1", "&renew=0", "&renew=TRUE",
                                   "&renew=%20", "&gateway=true&renew"])
def test_renew_present_asks_the_password(browser: CasBrowser, people: People, register, extra: str) -> None:
    """CAS 3.0 §2.1.1: any presence but an explicit ``false`` bypasses SSO."""
    register()
    browser.first_login(people.parent.identifier)
    response = browser.sso(extra=extra)
    assert response.status_code == 303 and response.headers["Location"].startswith("/login/"), extra


@pytest.mark.parametrize("extra", ["&renew=false", "&renew=FALSE", "&renew=%20false%20"])
def test_renew_false_is_answered_from_the_session(browser: CasBrowser, people: People, register,
                                                  extra: str) -> None:
    register()
    browser.first_login(people.parent.identifier)
    assert ticket_from(browser.sso(extra=extra)).startswith("ST-")


@pytest.mark.parametrize("extra", ["&gateway", "&gateway=", "&gateway=1", "&gateway=0"])
def test_gateway_present_returns_without_a_ticket(browser: CasBrowser, register, extra: str) -> None:
    register()
    response = browser.sso("https://ent.example.fr/app/?x=1", extra=extra)
    assert response.status_code == 302 and response.headers["Location"] == "https://ent.example.fr/app/?x=1"


def test_gateway_false_shows_the_login(browser: CasBrowser, register) -> None:
    register()
    response = browser.sso(extra="&gateway=false")
    assert response.status_code == 303 and response.headers["Location"].startswith("/login/")


@pytest.mark.parametrize("path", VALIDATIONS)
@pytest.mark.parametrize("renew", ["", " ", "1", "yes"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_validation_renew_present_refuses_an_sso_ticket(browser: CasBrowser, people: People, register, path: str,
                                                        renew: str, method: str) -> None:
    """§2.5.1: ``renew`` set (even empty) on validation and a ticket from the SSO session: refused."""
    register()
    browser.first_login(people.parent.identifier)
    ticket = ticket_from(browser.sso())
    values = {"ticket": ticket, "service": SERVICE, "renew": renew}
    response = browser.client.get(f"{path}?{urlencode(values)}") if method == "GET" \
        else browser.client.post(path, data=values)
    body = response.get_data(as_text=True)
    assert body == "no\n\n" if path == "/cas/validate" else 'code="INVALID_TICKET"' in body, body


def test_validation_bare_renew_parameter(browser: CasBrowser, people: People, register) -> None:
    """``&renew`` with no ``=`` at all, on the validations' query parser."""
    register()
    browser.first_login(people.parent.identifier)
    ticket = ticket_from(browser.sso())
    body = browser.client.get(f"/cas/serviceValidate?ticket={ticket}&service={quote(SERVICE)}&renew").data
    assert b'code="INVALID_TICKET"' in body


@pytest.mark.parametrize("renew", ["false", None])
def test_validation_renew_false_accepts_an_sso_ticket(browser: CasBrowser, people: People, register,
                                                      renew: str | None) -> None:
    register()
    browser.first_login(people.parent.identifier)
    ticket = ticket_from(browser.sso())
    values = {"ticket": ticket, "service": SERVICE} | ({"renew": renew} if renew else {})
    assert b"authenticationSuccess" in browser.client.get(f"/cas/serviceValidate?{urlencode(values)}").data
