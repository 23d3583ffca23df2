"""The portal's login route served by the lane (``idp.web.portal_lane``): the same answers as the Flask views
when it answers, the login run exactly once whatever happens, and every other case still reaching Flask."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from conftest import DEFAULT_PASSWORD, AccountFactory, csrf_from
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from idp import create_app
from idp.core.accounts.model import AccountState, Profile
from idp.settings import Settings
from idp.storage.models import AuditEventRow, SsoSessionRow
from idp.web.portal_lane import MAX_FORM_BYTES, PortalLane
from idp.wiring import Services

FORM = "/login?profil=parent"
#: Values that differ between two answers by design: random ids and tokens.
RANDOM = re.compile(r'(value="|=)[A-Za-z0-9_-]{40,}|[0-9a-f]{16}')


class Lane:
    """The portal lane of an app: switch it off (every request to Flask) and count what it hands to Flask."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.outer: Any = app.wsgi_app
        node = self.outer
        while not isinstance(node, PortalLane):
            node = node.app if hasattr(node, "app") else node._app  # ProxyFix, then the other lanes
        self.lane = node
        self.to_flask = 0
        behind = node._app

        def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            self.to_flask += 1
            return behind(environ, start_response)

        node._app = counted
        self.flask_only = behind

    def off(self) -> None:
        self.app.wsgi_app = self.flask_only  # type: ignore[method-assign]

    def on(self) -> None:
        self.app.wsgi_app = self.outer  # type: ignore[method-assign]


@pytest.fixture
def lane(app: Flask) -> Iterator[Lane]:
    switch = Lane(app)
    yield switch
    switch.on()


def _shape(response: Any) -> tuple[int, list[tuple[str, str]], str]:
    """Status, headers and body with the random values (ids, tokens, cookies' values) blanked."""
    headers = [(name, RANDOM.sub("~", value)) for name, value in response.headers.items()]
    return response.status_code, sorted(headers), RANDOM.sub("~", response.get_data(as_text=True))


def _login(client: FlaskClient, identifier: str, password: str = DEFAULT_PASSWORD) -> tuple[Any, Any, Any]:
    form = client.get(FORM)
    posted = client.post(FORM, data={"identifiant": identifier, "mot_de_passe": password,
                                     "csrf_token": csrf_from(form.get_data(as_text=True))})
    landing = client.get(posted.headers["Location"]) if posted.status_code == 303 else None
    return form, posted, landing


def _count(services: Services, row: Any, **where: Any) -> int:
    with services.uow() as uow:
        query = select(func.count()).select_from(row)
        for name, value in where.items():
            query = query.where(getattr(row, name) == value)
        return int(uow.session.scalar(query))


def test_the_lane_answers_the_three_requests_as_flask_does(app: Flask, lane: Lane, account_factory: AccountFactory,
                                                          services: Services) -> None:
    first, second = account_factory("Marie", "Dupont"), account_factory("Léa", "N'Diaye")
    lane.off()
    flask_answers = _login(app.test_client(), first.identifier)
    choice_by_flask = app.test_client().get("/login")
    lane.on()
    lane.to_flask = 0
    lane_answers = _login(app.test_client(), second.identifier)
    choice_by_lane = app.test_client().get("/login")
    assert lane.to_flask == 0  # the screens were rendered once by Flask above: all four answered here
    assert _shape(choice_by_lane) == _shape(choice_by_flask)
    for by_flask, by_lane in zip(flask_answers, lane_answers, strict=True):
        assert by_lane is not None and by_flask is not None
        status, headers, _ = _shape(by_lane)
        same_length = [h for h in headers if h[0] != "Content-Length"]  # the name differs on "Mes services"
        assert (status, same_length) == (by_flask.status_code,
                                         [h for h in _shape(by_flask)[1] if h[0] != "Content-Length"])
    assert _shape(lane_answers[0]) == _shape(flask_answers[0])  # the form
    assert lane_answers[1].headers["Location"] == "/services"
    assert lane_answers[1].get_data() == flask_answers[1].get_data()
    page = lane_answers[2].get_data(as_text=True)  # "Mes services", with this person's name, escaped
    assert "Léa N&#39;Diaye" in page and f"({second.identifier})" in page and "slot" not in page
    assert page.replace("Léa N&#39;Diaye", "Marie Dupont").replace(second.identifier, first.identifier) \
        == flask_answers[2].get_data(as_text=True)
    assert _count(services, AuditEventRow, event="login.success") == 2
    assert _count(services, SsoSessionRow) == 2


def test_a_wrong_password_is_counted_once_and_answered_by_flask(app: Flask, lane: Lane, services: Services,
                                                                account_factory: AccountFactory) -> None:
    account = account_factory()
    client = app.test_client()
    client.get(FORM)  # the screen rendered once
    _, refused, _ = _login(client, account.identifier, "not-the-password")
    assert refused.status_code == 200 and "Identifiant ou mot de passe incorrect." in refused.get_data(as_text=True)
    assert _count(services, AuditEventRow, event="login.failure") == 1
    for _ in range(services.settings.throttle.account_free_failures - 1):
        _login(client, account.identifier, "not-the-password")
    assert _count(services, AuditEventRow, event="login.failure") == services.settings.throttle.account_free_failures
    _, throttled, _ = _login(client, account.identifier)  # the right password, during the temporary lock
    assert throttled.status_code == 429 and throttled.headers["Retry-After"]
    assert _count(services, SsoSessionRow) == 0


def test_refused_forms_reach_flask_before_any_login(app: Flask, lane: Lane, services: Services,
                                                   account_factory: AccountFactory) -> None:
    account = account_factory()
    client = app.test_client()
    token = csrf_from(client.get(FORM).get_data(as_text=True))
    good = {"identifiant": account.identifier, "mot_de_passe": DEFAULT_PASSWORD}
    lane.to_flask = 0
    assert client.post(FORM, data={**good, "csrf_token": "forged"}).status_code == 400  # SECURITY W03
    assert client.post(FORM, data={"identifiant": "", "mot_de_passe": "x", "csrf_token": token}).status_code == 400
    big = client.post(FORM, data={**good, "csrf_token": token, "padding": "x" * MAX_FORM_BYTES})
    odd = client.post(FORM, data=b"identifiant=%FF&csrf_token=" + token.encode(),
                      content_type="application/x-www-form-urlencoded")
    multipart = client.post(FORM, data={**good, "csrf_token": token}, content_type="multipart/form-data")
    assert lane.to_flask == 5
    # Flask answered all five: the big and the multipart forms are good logins (one session each), the others
    # were refused before any login was tried.
    assert (big.status_code, odd.status_code, multipart.status_code) == (303, 400, 303)
    assert _count(services, AuditEventRow, event="login.success") == 2 and _count(services, AuditEventRow) == 2
    assert _count(services, SsoSessionRow) == 2


def test_a_provisional_account_goes_to_activation_with_one_session(app: Flask, lane: Lane, services: Services,
                                                                   account_factory: AccountFactory) -> None:
    account = account_factory(state=AccountState.PROVISIONAL, profile=Profile.PARENT)
    client = app.test_client()
    token = csrf_from(client.get(FORM).get_data(as_text=True))
    lane.to_flask = 0
    posted = client.post(FORM, data={"identifiant": account.identifier, "mot_de_passe": DEFAULT_PASSWORD,
                                     "csrf_token": token})
    assert lane.to_flask == 1  # the outcome handed over: Flask builds the activation address
    assert posted.status_code == 303 and posted.headers["Location"].startswith("/activation/")
    assert _count(services, SsoSessionRow) == 1 and _count(services, AuditEventRow, event="login.success") == 1
    assert client.get("/services").headers["Location"]  # provisional credentials: no services page


def test_a_live_session_and_other_queries_go_to_flask(app: Flask, lane: Lane, account_factory: AccountFactory) -> None:
    account = account_factory()
    client = app.test_client()
    _login(client, account.identifier)
    lane.to_flask = 0
    assert client.get(FORM).headers["Location"] == "/services"  # the SSO session answers: Flask looked it up
    assert client.get(FORM + "&login_hint=" + account.identifier).status_code == 303
    assert client.get("/services?x=1").status_code == 200
    assert lane.to_flask == 3
    stranger = app.test_client()
    stranger.set_cookie("__Host-sso", "no-such-session", path="/", secure=True)
    assert stranger.get("/services").headers["Location"] == "/login"
    assert lane.to_flask == 4


def test_behind_a_trusted_proxy_the_lane_sees_the_clients_address(settings: Settings, services: Services,
                                                                  account_factory: AccountFactory) -> None:
    proxied = dataclasses.replace(settings, server=dataclasses.replace(settings.server, trusted_proxies=1))
    app = create_app(proxied, dataclasses.replace(services, settings=proxied))
    Lane(app)  # the lane is still there, behind ProxyFix
    account = account_factory()
    client = app.test_client()
    via = {"X-Forwarded-For": "203.0.113.7"}
    form = client.get(FORM, headers=via)
    posted = client.post(FORM, headers=via, data={"identifiant": account.identifier, "mot_de_passe": DEFAULT_PASSWORD,
                                                   "csrf_token": csrf_from(form.get_data(as_text=True))})
    assert posted.status_code == 303
    with services.uow() as uow:
        ips = uow.session.scalars(select(AuditEventRow.ip).where(AuditEventRow.event == "login.success")).all()
    assert ips == ["203.0.113.7"]


def test_a_failure_in_the_lane_after_the_login_is_answered_by_flask_without_a_second_login(
        app: Flask, lane: Lane, services: Services, account_factory: AccountFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from idp.web import portal_lane

    account = account_factory()
    client = app.test_client()
    token = csrf_from(client.get(FORM).get_data(as_text=True))

    def broken_cookie(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("a bug while writing the answer")

    monkeypatch.setattr(portal_lane, "dump_cookie", broken_cookie)
    lane.to_flask = 0
    posted = client.post(FORM, data={"identifiant": account.identifier, "mot_de_passe": DEFAULT_PASSWORD,
                                     "csrf_token": token})
    assert lane.to_flask == 1 and posted.status_code == 303 and posted.headers["Location"] == "/services"
    assert _count(services, SsoSessionRow) == 1 and _count(services, AuditEventRow, event="login.success") == 1
    monkeypatch.undo()
    assert client.get("/services").status_code == 200  # Flask's cookie names the one session
