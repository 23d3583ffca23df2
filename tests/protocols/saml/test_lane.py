"""The SSO lane (``idp.saml.lane``): SSO-session answers to ``GET /saml/sso/redirect`` written before Flask with
the same page and headers as the Flask view, and every other outcome still answered by Flask, decided once."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import DEFAULT_PASSWORD
from tests.protocols.saml.conftest import OneLoginSp, autopost, login_through, path_of

NONCE_RE = re.compile(r"nonce-[^']+'|nonce=\"[^\"]+\"")
VALUE_RE = re.compile(r'name="SAMLResponse" value="[^"]+"')


@pytest.fixture
def logged_in(client: Any, login: Any, account_factory: Any, sp1: OneLoginSp) -> Any:
    account = account_factory()
    url, request_id = sp1.login_url()
    sp1.consume(login_through(client, login, url, account.identifier, DEFAULT_PASSWORD), request_id)
    return account


def _count_view_calls(app: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    view = app.view_functions["saml.sso_redirect"]

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return view(*args, **kwargs)

    monkeypatch.setitem(app.view_functions, "saml.sso_redirect", counted)
    return calls


def test_lane_answer_matches_the_flask_answer(app: Any, client: Any, services: Any, sp1: OneLoginSp,
                                              logged_in: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_view_calls(app, monkeypatch)
    services.frontends["saml"].post_pages.clear()  # not pre-rendered: the lane hands the answer to Flask
    answers = []
    for relay_state in ("https://sp1.test/a?b=1&c=<x>", "https://sp1.test/a?b=1&c=<x>"):
        url, request_id = sp1.login_url(return_to=relay_state)
        response = client.get(path_of(url))
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        assert autopost(page)["RelayState"] == relay_state
        auth = sp1.consume(page, request_id)
        assert auth.is_authenticated() and not auth.get_errors()
        answers.append(response)
    assert calls[0] == 1  # the first through Flask (which pre-rendered the page), the second by the lane
    flask_answer, lane_answer = answers
    assert [name for name, _ in lane_answer.headers] == [name for name, _ in flask_answer.headers]
    for name, value in flask_answer.headers:
        if name not in ("Content-Security-Policy", "X-Correlation-Id", "Content-Length"):
            assert lane_answer.headers[name] == value, name
    assert NONCE_RE.sub("", lane_answer.headers["Content-Security-Policy"]) == \
        NONCE_RE.sub("", flask_answer.headers["Content-Security-Policy"])
    assert "form-action https://sp1.test;" in lane_answer.headers["Content-Security-Policy"]
    assert re.fullmatch(r"[0-9a-f]{16}", lane_answer.headers["X-Correlation-Id"])
    normalise = lambda page: VALUE_RE.sub("", NONCE_RE.sub("", page))  # noqa: E731
    assert normalise(lane_answer.get_data(as_text=True)) == normalise(flask_answer.get_data(as_text=True))


def test_replay_through_the_lane_is_refused_once_decided(app: Any, client: Any, sp1: OneLoginSp, logged_in: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = sp1.login_url()
    assert client.get(path_of(url)).status_code == 200
    calls = _count_view_calls(app, monkeypatch)
    replayed = client.get(path_of(url))
    assert replayed.status_code == 400 and "SAMLResponse" not in replayed.get_data(as_text=True)
    assert "déjà été utilisée" in replayed.get_data(as_text=True)
    assert calls[0] == 1 and replayed.headers["X-Frame-Options"] == "DENY"


def test_force_authn_through_the_lane_goes_to_the_login_page(client: Any, services: Any, sp1: OneLoginSp,
                                                             logged_in: Any) -> None:
    url, _ = sp1.login_url(force_authn=True)
    response = client.get(path_of(url))
    assert response.status_code == 303 and "/login/" in response.headers["Location"]
    request_id = response.headers["Location"].rsplit("/login/", 1)[1].split("?")[0]
    with services.uow() as uow:  # the request was stored once (not a second time by Flask)
        assert uow.authn_requests.get(request_id, _any_browser_hash(client)) is not None


def _any_browser_hash(client: Any) -> str:
    from idp.core.authn.flow import browser_hash

    cookie = client.get_cookie("idp_browser") or client.get_cookie("__Host-browser")
    return browser_hash(cookie.value)


def test_requests_without_the_cookies_or_with_errors_go_to_flask(app: Any, client: Any, sp1: OneLoginSp,
                                                                 logged_in: Any,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_view_calls(app, monkeypatch)
    assert client.get("/saml/sso/redirect?SAMLRequest=%%%").status_code == 400
    assert calls[0] == 1
    fresh = app.test_client()
    url, _ = sp1.login_url()
    response = fresh.get(path_of(url))
    assert response.status_code == 303 and calls[0] == 2
    assert "Set-Cookie" in response.headers  # the new browser cookie, set by Flask
