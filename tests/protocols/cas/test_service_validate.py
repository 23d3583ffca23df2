"""``/cas/serviceValidate`` (CAS 2.0): single use (C03), service binding (C04), expiry (C05), parallel
validation (C06), renew (C07), request errors (C11), database outage (R01). python-cas validates; failures are
read with lxml, an independent parser."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from cas import CASClient
from lxml import etree

from idp import create_app
from idp.settings import DatabaseSettings
from idp.storage.cas_tickets import CAS_POOL_NAME
from idp.wiring import build_services

from .conftest import CAS_NS, SERVICE, CasBrowser, People, fetch


def _failure_code(body: bytes) -> str:
    root = etree.fromstring(body)
    (failure,) = root.xpath("/cas:serviceResponse/cas:authenticationFailure", namespaces=CAS_NS)
    return failure.get("code")


def _validate(live: str, ticket: str, service: str = SERVICE, **extra: str) -> Any:
    return fetch(live + "serviceValidate", params={"ticket": ticket, "service": service, **extra})


def test_python_cas_v2_validates_and_gets_no_attributes(browser: CasBrowser, people: People, register,
                                                        live: str) -> None:
    register()
    ticket = browser.first_login(people.parent.identifier)
    user, attributes, pgtiou = CASClient(version=2, service_url=SERVICE, server_url=live).verify_ticket(ticket)
    assert user and attributes is None and pgtiou is None


def test_headers_of_a_validation_answer(browser: CasBrowser, people: People, register, live: str) -> None:
    register()
    response = _validate(live, browser.first_login(people.parent.identifier))
    assert response.headers["Content-Type"] == "application/xml; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers


def test_ticket_is_single_use(browser: CasBrowser, people: People, register, live: str) -> None:
    """C03: once success, then ``INVALID_TICKET``."""
    register()
    ticket = browser.first_login(people.parent.identifier)
    client = CASClient(version=2, service_url=SERVICE, server_url=live)
    assert client.verify_ticket(ticket)[0]
    assert client.verify_ticket(ticket)[0] is None
    assert _failure_code(_validate(live, ticket).content) == "INVALID_TICKET"


def test_failed_validation_burns_the_ticket(browser: CasBrowser, people: People, register, live: str) -> None:
    """C03/C04: a validation for another (registered) service fails with ``INVALID_SERVICE`` and burns it."""
    register()
    register("https://other.example.fr/", "other")
    ticket = browser.first_login(people.parent.identifier)
    assert _failure_code(_validate(live, ticket, "https://other.example.fr/").content) == "INVALID_SERVICE"
    assert _failure_code(_validate(live, ticket).content) == "INVALID_TICKET"


def test_ticket_expires_after_ten_seconds(browser: CasBrowser, people: People, register, live: str, clock) -> None:
    """C05: with the injected clock, 10 s later the ticket is refused."""
    register()
    fresh = browser.first_login(people.parent.identifier)
    stale = browser.client.get("/cas/login?service=" + SERVICE).headers["Location"].split("ticket=")[1]
    clock.advance(seconds=9)
    assert "<cas:authenticationSuccess>" in _validate(live, fresh).text
    clock.advance(seconds=1)
    assert _failure_code(_validate(live, stale).content) == "INVALID_TICKET"


def test_ten_parallel_validations_give_exactly_one_success(browser: CasBrowser, people: People, register,
                                                            live: str) -> None:
    """C06/R04: 10 threads validate the same ticket on the real server: one success, nine failures."""
    register()
    for _ in range(3):
        ticket = browser.client.get("/cas/login?service=" + SERVICE).headers.get("Location", "")
        if "ticket=" not in ticket:
            ticket = "ticket=" + browser.first_login(people.parent.identifier)
        ticket = ticket.split("ticket=")[1]
        barrier = threading.Barrier(10)
        bodies: list[str] = []

        def worker(t: str = ticket, gate: threading.Barrier = barrier, out: list[str] = bodies) -> None:
            gate.wait()
            out.append(_validate(live, t).text)

        threads = [threading.Thread(target=worker) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert len(bodies) == 10
        assert sum("authenticationSuccess" in b for b in bodies) == 1
        assert sum('code="INVALID_TICKET"' in b for b in bodies) == 9


def test_renew_refuses_a_ticket_from_the_sso_session(browser: CasBrowser, people: People, register,
                                                      live: str) -> None:
    """C07: ``renew=true`` at validation and a ticket issued from SSO: ``INVALID_TICKET`` (and burnt)."""
    register()
    browser.first_login(people.parent.identifier)
    ticket = browser.client.get("/cas/login?service=" + SERVICE).headers["Location"].split("ticket=")[1]
    assert _failure_code(_validate(live, ticket, renew="true").content) == "INVALID_TICKET"
    assert _failure_code(_validate(live, ticket).content) == "INVALID_TICKET"


def test_missing_parameters_are_invalid_request(live: str) -> None:
    """C11: missing ``ticket`` or ``service``."""
    assert _failure_code(fetch(live + "serviceValidate", params={"service": SERVICE}).content) \
        == "INVALID_REQUEST"
    assert _failure_code(fetch(live + "serviceValidate", params={"ticket": "ST-abc"}).content) \
        == "INVALID_REQUEST"


def test_unsupported_format_is_invalid_request_and_keeps_the_ticket(browser: CasBrowser, people: People,
                                                                     register, live: str) -> None:
    register()
    ticket = browser.first_login(people.parent.identifier)
    assert _failure_code(_validate(live, ticket, format="YAML").content) == "INVALID_REQUEST"
    assert "authenticationSuccess" in _validate(live, ticket).text


def test_garbage_tickets_are_invalid_ticket(live: str) -> None:
    for ticket in ("ST-", "ST-<script>", "TGT-" + "a" * 40, "ST-" + "a" * 300, "PGT-" + "a" * 40):
        assert _failure_code(_validate(live, ticket).content) == "INVALID_TICKET", ticket


def test_database_outage_is_internal_error_503(settings, clock, live: str) -> None:
    """R01: the database does not answer: ``INTERNAL_ERROR``, HTTP 503, ``Retry-After``."""
    down = dataclasses.replace(settings, database=DatabaseSettings(url="postgresql://idp@127.0.0.1:1/none",
                                                                   pool_timeout_seconds=1))
    services = build_services(down, clock=clock)
    app = create_app(down, services)
    client = app.test_client()
    response = client.get("/cas/serviceValidate", query_string={"ticket": "ST-" + "a" * 33, "service": SERVICE})
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert _failure_code(response.data) == "INTERNAL_ERROR"
    v1 = client.get("/cas/validate", query_string={"ticket": "ST-" + "a" * 33, "service": SERVICE})
    assert v1.status_code == 503 and v1.data == b"no\n\n"
    services.extras["cas_slo"].shutdown()


def test_validation_recovers_when_database_connections_die(browser: CasBrowser, people: People, register,
                                                           live: str, services, database_url: str) -> None:
    """R01: the CAS pool's server connections are killed (as a PostgreSQL restart does); the next validation
    succeeds on a new connection, without a 5xx (the dead connection is discarded, the statement retried)."""
    import psycopg
    import pytest

    if services.db.dialect != "postgresql":
        pytest.skip("PostgreSQL only")
    register()
    first = browser.first_login(people.parent.identifier)
    assert "<cas:authenticationSuccess>" in _validate(live, first).text
    second = ticket_from_sso(browser)
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        killed = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND application_name = %s",
                              (CAS_POOL_NAME,)).fetchone()[0]
    assert killed >= 1
    response = _validate(live, second)
    assert response.status_code == 200 and "<cas:authenticationSuccess>" in response.text


def ticket_from_sso(browser: CasBrowser) -> str:
    return browser.sso().headers["Location"].split("ticket=")[1]
