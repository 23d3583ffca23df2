"""``/cas/login`` from the SSO session served by the lane (``idp.cas.fastlane``, ``CasServer.sso_ticket``): the
same bytes as the Flask view when it answers, and every other case still reaching the Flask view."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import Client

from idp.cas.fastlane import CasLane
from idp.storage.cas_store import SqlCasStore
from idp.wiring import Services

from .conftest import SERVICE, CasBrowser, People, quote, ticket_from


class FlaskCalls:
    """Counts the requests the lane hands to the Flask application behind it."""

    def __init__(self, app: Flask) -> None:
        lane: Any = app.wsgi_app
        while not isinstance(lane, CasLane):  # other lanes (the portal's) may sit in front of it
            lane = lane._app
        self.flask = lane._app
        self.count = 0

        def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            self.count += 1
            return self.flask(environ, start_response)

        lane._app = counted


@pytest.fixture
def flask_calls(app: Flask) -> FlaskCalls:
    return FlaskCalls(app)


def _cookie_header(client: FlaskClient) -> str:
    return "; ".join(f"{c.key}={c.value}" for c in client._cookies.values())


def _same_answer(app: Flask, client: FlaskClient, flask_calls: FlaskCalls, path: str) -> Any:
    """The lane's answer and the Flask view's answer to the same request: equal but for ticket and id."""
    headers = {"Cookie": _cookie_header(client)}
    before = flask_calls.count
    lane = Client(app.wsgi_app, use_cookies=False).get(path, headers=headers, base_url="https://idp.test")
    assert flask_calls.count == before, "the lane handed the request to Flask"
    view = Client(flask_calls.flask, use_cookies=False).get(path, headers=headers, base_url="https://idp.test")
    assert lane.status_code == view.status_code == 302
    lane_ticket, view_ticket = ticket_from(lane), ticket_from(view)
    assert lane_ticket != view_ticket

    def normal(response: Any, ticket: str) -> tuple[list[tuple[str, str]], bytes]:
        items = [(k, v.replace(ticket, "T")) for k, v in response.headers.items() if k != "X-Correlation-Id"]
        return items, response.get_data().replace(ticket.encode(), b"T")

    assert normal(lane, lane_ticket) == normal(view, view_ticket)
    assert len(lane.headers["X-Correlation-Id"]) == 16
    return lane


def test_lane_answers_with_the_views_bytes(app: Flask, browser: CasBrowser, people: People, register,
                                           flask_calls: FlaskCalls, services: Services) -> None:
    register()
    first = browser.first_login(people.parent.identifier)
    assert first.startswith("ST-")
    response = _same_answer(app, browser.client, flask_calls, "/cas/login?service=" + quote(SERVICE))
    assert response.headers["Cache-Control"] == "no-store" and "Set-Cookie" not in response.headers
    assert "Content-Security-Policy" in response.headers and "Strict-Transport-Security" in response.headers
    # The ticket is a service ticket for that service (single use, 10 s), from the SSO session.
    ticket = ticket_from(response)
    query = urlencode({"ticket": ticket, "service": SERVICE})
    valid = browser.client.get("/cas/p3/serviceValidate?" + query)
    assert b"authenticationSuccess" in valid.data and b"<cas:isFromNewLogin>false" in valid.data
    assert b"INVALID_TICKET" in browser.client.get("/cas/p3/serviceValidate?" + query).data


def test_lane_keeps_fragment_ticket_and_odd_characters_as_the_view(app: Flask, browser: CasBrowser,
                                                                   people: People, register,
                                                                   flask_calls: FlaskCalls) -> None:
    """C12 through the lane: one ticket, before the fragment; ``"<>{}|^`` encoded in Location as werkzeug does."""
    register()
    browser.first_login(people.parent.identifier)
    service = SERVICE + '?ticket=ST-old&x=<a>"{|}^`&y=1#frag'
    response = _same_answer(app, browser.client, flask_calls, "/cas/login?service=" + quote(service))
    location = response.headers["Location"]
    assert location.count("ticket=") == 1 and location.endswith("#frag")


def test_lane_ticket_expires_after_ten_seconds(browser: CasBrowser, people: People, register, services: Services,
                                               flask_calls: FlaskCalls) -> None:
    register()
    browser.first_login(people.parent.identifier)
    count = flask_calls.count
    ticket = ticket_from(browser.sso())
    assert flask_calls.count == count
    services.clock.advance(seconds=10)  # type: ignore[attr-defined]
    answer = browser.client.get("/cas/serviceValidate?" + urlencode({"ticket": ticket, "service": SERVICE}))
    assert b"INVALID_TICKET" in answer.data


@pytest.mark.parametrize("extra", ["&renew=true", "&renew", "&renew=", "&gateway=true", "&gateway", "&method=POST"])
def test_renew_gateway_method_reach_flask(browser: CasBrowser, people: People, register, flask_calls: FlaskCalls,
                                          extra: str) -> None:
    """The lane reads the parameters with the view's parser (``idp.cas.parameters``): set means Flask."""
    register()
    browser.first_login(people.parent.identifier)
    count = flask_calls.count
    response = browser.sso(extra=extra)
    assert flask_calls.count == count + 1
    if extra.startswith("&renew"):
        assert response.status_code == 303 and response.headers["Location"].startswith("/login/")
    elif extra == "&method=POST":
        assert response.status_code == 200 and 'name="ticket"' in response.get_data(as_text=True)
    else:
        ticket_from(response)


@pytest.mark.parametrize("extra", ["&renew=false", "&gateway=FALSE", "&method=GET"])
def test_explicitly_unset_parameters_stay_on_the_lane(browser: CasBrowser, people: People, register,
                                                      flask_calls: FlaskCalls, extra: str) -> None:
    register()
    browser.first_login(people.parent.identifier)
    ticket_from(browser.sso())  # the first ticket for the service builds the session's attributes copy
    count = flask_calls.count
    assert ticket_from(browser.sso(extra=extra)).startswith("ST-")
    assert flask_calls.count == count


def test_no_session_reaches_flask(browser: CasBrowser, register, flask_calls: FlaskCalls) -> None:
    register()
    response = browser.sso()
    assert flask_calls.count == 1
    assert response.status_code == 303 and response.headers["Location"].startswith("/login/")


def test_unknown_service_reaches_flask(browser: CasBrowser, people: People, register,
                                       flask_calls: FlaskCalls) -> None:
    """C01: the French page comes from Flask (the lane never says no)."""
    register()
    browser.first_login(people.parent.identifier)
    count = flask_calls.count
    for service in ("https://evil.tld/app/", "https://ent.example.fr.evil.tld/app/", "http://ent.example.fr/app/",
                    "https://ent.example.fr@evil.tld/app/", "not a url"):
        response = browser.client.get("/cas/login?service=" + quote(service))
        assert response.status_code == 400 and "Location" not in response.headers
        assert "Application non autorisée" in response.get_data(as_text=True)
    assert flask_calls.count == count + 5


def test_first_ticket_for_a_service_reaches_flask_then_the_lane(browser: CasBrowser, people: People, register,
                                                               flask_calls: FlaskCalls) -> None:
    """No attributes copy yet for this session and service: Flask computes it; the next login is the lane's."""
    register()
    other = "https://autre.example.fr/app/"
    register(other, "autre")
    browser.first_login(people.parent.identifier)
    count = flask_calls.count
    ticket_from(browser.sso(other))
    assert flask_calls.count == count + 1
    ticket_from(browser.sso(other))
    assert flask_calls.count == count + 1


def test_single_logout_service_tickets_are_participants(app: Flask, browser: CasBrowser, people: People, register,
                                                       services: Services, flask_calls: FlaskCalls) -> None:
    """Each ticket of a single-logout service is recorded as a session participant (its SessionIndex later),
    by the lane as by the view, with the same data."""
    register(slo=True)
    first = browser.first_login(people.parent.identifier)
    response = _same_answer(app, browser.client, flask_calls, "/cas/login?service=" + quote(SERVICE))
    ticket = ticket_from(response)
    with services.uow() as uow:
        (session,) = uow.sessions.active_for_account(people.parent.id, services.clock.now())
        rows = [(client, data) for protocol, client, data in uow.sessions.participants(session.id)
                if protocol == "cas"]
    assert len(rows) == 3  # the first login's, the lane's, the view's
    assert rows[1] == ("ent", {"ticket": ticket, "service": SERVICE, "slo": True})
    assert rows[0] == ("ent", {"ticket": first, "service": SERVICE, "slo": True})
    assert all(client == "ent" and data.keys() == rows[0][1].keys() for client, data in rows)


def test_without_browser_cookie_reaches_flask(app: Flask, browser: CasBrowser, people: People, register,
                                              flask_calls: FlaskCalls) -> None:
    """The view would give the browser its id cookie: Flask answers (and sets it)."""
    register()
    browser.first_login(people.parent.identifier)
    sso = next(c.value for c in browser.client._cookies.values() if c.key == "__Host-sso")
    count = flask_calls.count
    for browser_cookie in ("", "; __Host-browser=short", "; __Host-browser=" + "!" * 43):
        response = Client(app.wsgi_app, use_cookies=False).get(
            "/cas/login?service=" + quote(SERVICE), base_url="https://idp.test",
            headers={"Cookie": f"__Host-sso={sso}{browser_cookie}"})
        ticket_from(response)
        assert "__Host-browser=" in response.headers["Set-Cookie"]
    assert flask_calls.count == count + 3


def test_ended_expired_or_idle_session_reaches_flask(browser: CasBrowser, people: People, register,
                                                     services: Services, flask_calls: FlaskCalls) -> None:
    register()
    browser.first_login(people.parent.identifier)
    policy = services.flow.session_policy
    services.clock.advance(seconds=policy.idle.total_seconds() + 1)  # type: ignore[attr-defined]
    count = flask_calls.count
    response = browser.sso()
    assert flask_calls.count == count + 1
    assert response.status_code == 303 and response.headers["Location"].startswith("/login/")


def test_logged_out_session_reaches_flask(browser: CasBrowser, people: People, register, services: Services,
                                          flask_calls: FlaskCalls) -> None:
    register()
    browser.first_login(people.parent.identifier)
    with services.uow() as uow:
        for session in uow.sessions.active_for_account(people.parent.id, services.clock.now()):
            uow.sessions.end(session.id, services.clock.now())
        uow.commit()
    count = flask_calls.count
    response = browser.sso()
    assert flask_calls.count == count + 1 and response.status_code == 303


def test_removed_service_is_refused_at_once_despite_the_cache(browser: CasBrowser, people: People, register,
                                                             services: Services, flask_calls: FlaskCalls) -> None:
    """``idp cas remove`` takes effect at the next request: the lane's copy is gone, Flask shows the page."""
    register()
    browser.first_login(people.parent.identifier)
    ticket_from(browser.sso())  # the lane, with the registration now cached
    with services.uow() as uow:
        assert SqlCasStore(uow.session).remove_service("ent")
        uow.commit()
    services.extras["cas"].tickets.forget_service("ent")  # what the command does for Redis
    count = flask_calls.count
    response = browser.sso()
    assert flask_calls.count == count + 1 and response.status_code == 400


def test_added_service_is_served_at_once(browser: CasBrowser, people: People, register,
                                         flask_calls: FlaskCalls) -> None:
    register()
    browser.first_login(people.parent.identifier)
    other = "https://ent.example.fr/autre/"
    assert browser.client.get("/cas/login?service=" + quote(other)).status_code == 400
    register(other, "autre")
    ticket_from(browser.sso(other))


def test_registry_cache_reads_the_database_again_after_its_ttl(services: Services, register) -> None:
    from idp.cas.registry import CachedRegistry, parse_service

    now = [0.0]
    cache = CachedRegistry(services.extras["cas"]._fast, ttl=2.0, clock=lambda: now[0])
    url = parse_service(SERVICE, allow_http=False)
    assert cache.services_on(url.scheme, url.host) == ()
    register()
    assert cache.services_on(url.scheme, url.host) == ()
    now[0] = 2.0
    assert [s.service_id for s in cache.services_on(url.scheme, url.host)] == ["ent"]
    with services.uow() as uow:
        SqlCasStore(uow.session).remove_service("ent")
        uow.commit()
    cache.forget(url.scheme, url.host)
    assert cache.services_on(url.scheme, url.host) == ()


def test_outage_reaches_flask(browser: CasBrowser, people: People, register, services: Services,
                              flask_calls: FlaskCalls, monkeypatch: pytest.MonkeyPatch) -> None:
    from idp.errors import ServiceUnavailable

    register()
    browser.first_login(people.parent.identifier)

    def down(*args: object, **kwargs: object) -> None:
        raise ServiceUnavailable()

    monkeypatch.setattr(services.extras["cas"].tickets, "from_session", down)
    count = flask_calls.count
    response = browser.sso()
    assert flask_calls.count == count + 1 and response.status_code == 503 and "Retry-After" in response.headers


def test_lane_bug_is_logged_and_flask_answers(browser: CasBrowser, people: People, register, services: Services,
                                              flask_calls: FlaskCalls, monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    import logging

    register()
    browser.first_login(people.parent.identifier)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(services.extras["cas"], "sso_ticket", broken)
    count = flask_calls.count
    with caplog.at_level(logging.ERROR, logger="idp.cas"):
        ticket_from(browser.sso())
    assert flask_calls.count == count + 1
    assert any("unexpected error on GET /cas/login" in r.getMessage() for r in caplog.records)


def test_lane_touches_the_session(browser: CasBrowser, people: People, register, services: Services,
                                  flask_calls: FlaskCalls) -> None:
    """The idle timer is refreshed by the lane's answers as by the view's: 20 + 20 minutes stay under 30."""
    register()
    browser.first_login(people.parent.identifier)
    count = flask_calls.count
    for _ in range(2):
        services.clock.advance(minutes=20)  # type: ignore[attr-defined]
        ticket_from(browser.sso())
    assert flask_calls.count == count
