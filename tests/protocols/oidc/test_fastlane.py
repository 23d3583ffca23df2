"""The WSGI lane in front of Flask (idp.oidc.fastlane): the token grants and UserInfo it serves get the answers
the Flask views give — status, headers in the same order, JSON — and everything it declines reaches Flask
with its body intact, where authlib answers errors, replays and reuse as before."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from idp.oidc.fastlane import OidcLane
from idp.oidc.server import audit_event
from idp.storage.models import AuditEventRow
from idp.wiring import Services

from .conftest import Browser, Clients, s256

VARIABLE = {"X-Correlation-Id", "Content-Length"}


class Lane:
    """Switch the lane off (every request to Flask) and count the requests it passed on to Flask while on."""

    def __init__(self, app: Flask) -> None:
        node: Any = app.wsgi_app
        while not isinstance(node, OidcLane):
            node = node._app
        self.lane = node
        self.routes = dict(node._routes)
        self.passed = 0
        flask_app = node._app

        def counting(environ: Any, start_response: Any) -> Any:
            if node._routes:
                self.passed += 1
            return flask_app(environ, start_response)

        node._app = counting

    def __call__(self, on: bool) -> None:
        self.lane._routes = self.routes if on else {}


@pytest.fixture
def lane(app: Flask) -> Iterator[Lane]:
    yield Lane(app)


def shape(response: Any) -> tuple[int, list[tuple[str, str]]]:
    """Status and headers in order; the values that differ between two answers blanked."""
    return response.status_code, [(k, "" if k in VARIABLE else v) for k, v in response.headers.items()]


def both(lane: Lane, send: Any) -> tuple[Any, Any]:
    """The same request through the lane, then through Flask alone."""
    lane(True)
    fast = send()
    lane(False)
    slow = send()
    lane(True)
    return fast, slow


def test_token_grants_answered_by_the_lane_as_by_flask(browser: Browser, clients: Clients, parent: Any,
                                                       lane: Lane) -> None:
    rp = clients(refresh_tokens=True)
    codes = [browser.code_flow(rp, parent.identifier, nonce="n")["code"] for _ in range(2)]
    lane.passed = 0
    fast, slow = both(lane, lambda: browser.token(rp, codes.pop()))
    assert fast.status_code == 200 and lane.passed == 0
    assert shape(fast) == shape(slow)
    assert set(fast.get_json()) == set(slow.get_json()) == {"token_type", "access_token", "expires_in", "scope",
                                                             "refresh_token", "id_token"}
    assert fast.headers["Cache-Control"] == "no-store" and fast.headers["Pragma"] == "no-cache"
    assert fast.headers["X-Content-Type-Options"] == "nosniff" and fast.headers["X-Correlation-Id"]
    tokens = [fast.get_json()["refresh_token"], slow.get_json()["refresh_token"]]
    lane.passed = 0
    fast, slow = both(lane, lambda: browser.post_token(rp, {"grant_type": "refresh_token",
                                                            "refresh_token": tokens.pop(0)}))
    assert fast.status_code == slow.status_code == 200 and lane.passed == 0
    assert shape(fast) == shape(slow)


def test_userinfo_answered_by_the_lane_byte_for_byte(browser: Browser, clients: Clients, parent: Any,
                                                     lane: Lane) -> None:
    rp = clients()
    access = browser.tokens(rp, parent.identifier, scope="openid profile fr_edu")["access_token"]
    for method in ("GET", "POST"):
        lane.passed = 0
        fast, slow = both(lane, lambda m=method: browser.userinfo(access, m))
        assert fast.status_code == 200 and lane.passed == 0
        assert shape(fast) == shape(slow) and fast.get_data() == slow.get_data()
        assert fast.headers["Content-Length"] == slow.headers["Content-Length"]


@pytest.mark.parametrize("case", ["none", "unknown", "lowercase", "empty"])
def test_userinfo_errors_answered_by_the_lane_as_by_flask(browser: Browser, lane: Lane, case: str) -> None:
    headers = {"none": {}, "unknown": {"Authorization": "Bearer " + "x" * 43},
               "lowercase": {"Authorization": "bearer " + "x" * 43}, "empty": {"Authorization": "Bearer "}}[case]
    lane.passed = 0
    fast, slow = both(lane, lambda: browser.client.get("/oidc/userinfo", headers=headers))
    assert fast.status_code == 401 and lane.passed == 0
    assert shape(fast) == shape(slow) and fast.get_data() == slow.get_data()
    assert fast.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_userinfo_without_openid_scope_is_403_in_both(browser: Browser, clients: Clients, parent: Any,
                                                     lane: Lane, services: Services) -> None:
    rp = clients()
    access = browser.tokens(rp, parent.identifier, scope="openid profile")["access_token"]
    from idp.storage.oidc_store import OidcTokenRow, digest

    with services.uow() as uow:  # a token whose scope lost openid (as RFC 6749 §6 narrowing could give)
        uow.session.get(OidcTokenRow, digest(access)).scope = "profile"
        uow.commit()
    fast, slow = both(lane, lambda: browser.userinfo(access))
    assert fast.status_code == 403 and shape(fast) == shape(slow) and fast.get_data() == slow.get_data()


def test_userinfo_requests_the_lane_leaves_to_flask(browser: Browser, clients: Clients, parent: Any,
                                                    lane: Lane) -> None:
    rp = clients()
    access = browser.tokens(rp, parent.identifier)["access_token"]
    lane.passed = 0
    in_body = browser.client.post("/oidc/userinfo", data={"access_token": access})
    assert in_body.status_code == 200 and "sub" in in_body.get_json()
    in_query = browser.client.get("/oidc/userinfo?access_token=" + access,
                                  headers={"Authorization": "Bearer " + access})
    assert in_query.status_code == 400 and in_query.get_json() == {"error": "invalid_request"}
    other = browser.client.get("/oidc/userinfo", headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert other.status_code == 401
    assert lane.passed == 3


def _error_cases(rp: Any, code: str, refresh: str) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    basic = rp.basic()
    wrong = {"Authorization": "Basic " + base64.b64encode(f"{rp.client_id}:faux".encode()).decode()}
    return {
        "wrong secret": ({"grant_type": "refresh_token", "refresh_token": refresh}, wrong),
        "unknown client": ({"grant_type": "refresh_token", "refresh_token": refresh},
                           {"Authorization": "Basic " + base64.b64encode(b"inconnu:secret").decode()}),
        "malformed basic": ({"grant_type": "refresh_token", "refresh_token": refresh}, {"Authorization": "Basic !!"}),
        "two methods": ({"grant_type": "refresh_token", "refresh_token": refresh, "client_id": rp.client_id,
                         "client_secret": rp.secret}, basic),
        "unsupported grant": ({"grant_type": "password", "username": "a", "password": "b"}, basic),
        "no grant type": ({"refresh_token": refresh}, basic),
        "unknown refresh token": ({"grant_type": "refresh_token", "refresh_token": "r" * 43}, basic),
        "missing refresh token": ({"grant_type": "refresh_token"}, basic),
        "unknown code": ({"grant_type": "authorization_code", "code": "c" * 43,
                          "redirect_uri": rp.record.redirect_uris[0]}, basic),
        "wrong redirect": ({"grant_type": "authorization_code", "code": code,
                            "redirect_uri": "https://ailleurs.test/cb"}, basic),
        "bad verifier": ({"grant_type": "authorization_code", "code": code, "code_verifier": "court",
                          "redirect_uri": rp.record.redirect_uris[0]}, basic),
    }


def test_token_errors_are_flasks_answers(browser: Browser, clients: Clients, parent: Any, lane: Lane) -> None:
    rp = clients(refresh_tokens=True)
    first = browser.tokens(rp, parent.identifier)
    code = browser.code_flow(rp, parent.identifier, code_challenge=s256("v" * 50), code_challenge_method="S256")["code"]
    statuses = {}
    for name, (form, headers) in _error_cases(rp, code, first["refresh_token"]).items():
        lane.passed = 0
        fast, slow = both(lane, lambda f=form, h=headers: browser.client.post("/oidc/token", data=f, headers=h))
        assert lane.passed == 1, name  # declined: Flask answered both
        assert shape(fast) == shape(slow), name
        assert fast.get_json() == slow.get_json(), name
        statuses[name] = (fast.status_code, fast.get_json()["error"])
    assert statuses["wrong secret"] == (401, "invalid_client")
    assert statuses["unsupported grant"] == (400, "unsupported_grant_type")
    assert statuses["wrong redirect"] == (400, "invalid_grant")
    # the code survived the mismatches (nothing written before the general path): the right request still works
    assert browser.token(rp, code, code_verifier="v" * 50).status_code == 200


def test_wrong_secret_401_carries_www_authenticate(browser: Browser, clients: Clients, parent: Any,
                                                   lane: Lane) -> None:
    rp = clients(refresh_tokens=True)
    first = browser.tokens(rp, parent.identifier)
    wrong = {"Authorization": "Basic " + base64.b64encode(f"{rp.client_id}:faux".encode()).decode()}
    answer = browser.client.post("/oidc/token", data={"grant_type": "refresh_token",
                                                      "refresh_token": first["refresh_token"]}, headers=wrong)
    assert answer.status_code == 401 and "WWW-Authenticate" in answer.headers
    assert answer.headers["Cache-Control"] == "no-store"


def test_repeated_parameters_and_other_bodies_go_to_flask(browser: Browser, clients: Clients, parent: Any,
                                                          lane: Lane) -> None:
    rp = clients(refresh_tokens=True)
    first = browser.tokens(rp, parent.identifier)
    lane.passed = 0
    body = f"grant_type=refresh_token&refresh_token={first['refresh_token']}&refresh_token=autre"
    repeated = browser.client.post("/oidc/token", data=body, headers={
        **rp.basic(), "Content-Type": "application/x-www-form-urlencoded"})
    assert lane.passed == 1 and repeated.status_code in (200, 400)
    as_json = browser.client.post("/oidc/token", json={"grant_type": "refresh_token"}, headers=rp.basic())
    assert lane.passed == 2 and as_json.status_code == 400


def test_replay_and_reuse_through_the_lane_revoke_and_audit(browser: Browser, clients: Clients, parent: Any,
                                                            lane: Lane, services: Services) -> None:
    rp = clients(refresh_tokens=True)
    code = browser.code_flow(rp, parent.identifier)["code"]
    lane.passed = 0
    first = browser.token(rp, code).get_json()
    assert lane.passed == 0
    replay = browser.token(rp, code)
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant" and lane.passed == 1
    assert browser.userinfo(first["access_token"]).status_code == 401
    second = browser.tokens(rp, parent.identifier)
    third = browser.post_token(rp, {"grant_type": "refresh_token", "refresh_token": second["refresh_token"]})
    assert third.status_code == 200
    reuse = browser.post_token(rp, {"grant_type": "refresh_token", "refresh_token": second["refresh_token"]})
    assert reuse.status_code == 400 and reuse.get_json()["error"] == "invalid_grant"
    again = browser.post_token(rp, {"grant_type": "refresh_token", "refresh_token": third.get_json()["refresh_token"]})
    assert again.status_code == 400
    with services.uow() as uow:
        events = uow.session.scalars(select(AuditEventRow.event).where(AuditEventRow.account_id == parent.id)).all()
    assert audit_event("oidc_code_replayed") in events and audit_event("oidc_refresh_reused") in events


def test_lane_answers_503_like_the_view_when_the_database_is_down(settings: Any) -> None:
    import dataclasses

    from idp import create_app
    from idp.wiring import build_services

    url = "postgresql://idp@127.0.0.1:1/nowhere"
    broken = dataclasses.replace(settings, database=dataclasses.replace(settings.database, url=url,
                                                                        pool_timeout_seconds=1))
    app = create_app(broken, build_services(broken))
    lane = Lane(app)
    basic = {"Authorization": "Basic " + base64.b64encode(b"ent:" + b"s" * 43).decode()}
    form = {"grant_type": "refresh_token", "refresh_token": "r" * 43}
    client = app.test_client()
    lane.passed = 0
    fast = client.post("/oidc/token", data=form, headers=basic)
    assert fast.status_code == 503 and lane.passed == 0  # the client lookup itself failed, in the lane
    fast_info = client.get("/oidc/userinfo", headers={"Authorization": "Bearer " + "a" * 43})
    lane(False)
    slow_info = client.get("/oidc/userinfo", headers={"Authorization": "Bearer " + "a" * 43})
    assert fast_info.status_code == slow_info.status_code == 503
    assert shape(fast_info) == shape(slow_info) and fast_info.get_data() == slow_info.get_data()
    assert fast.get_json() == slow_info.get_json() and fast.headers["Retry-After"] == slow_info.headers["Retry-After"]


def test_authorize_with_an_sso_session_validates_once_and_answers_like_after_login(
        browser: Browser, clients: Clients, parent: Any, services: Services, settings: Any) -> None:
    """The SSO answer reuses the grant validated a moment before (no second validation, no transaction for a
    first-party client) and still carries code, state and iss (RFC 9207); the code works once."""
    rp = clients(refresh_tokens=True)
    after_login = browser.code_flow(rp, parent.identifier, state="a")
    server = services.frontends["oidc"].server  # type: ignore[attr-defined]
    calls = {"validate": 0, "transaction": 0}
    grant_class = type(server.get_authorization_grant(
        services.frontends["oidc"].oauth_request({"response_type": "code"})))  # type: ignore[attr-defined]
    original_validate, original_transaction = grant_class.validate_authorization_request, server.transaction

    def validate(self: Any) -> Any:
        calls["validate"] += 1
        return original_validate(self)

    def transaction() -> Any:
        calls["transaction"] += 1
        return original_transaction()

    grant_class.validate_authorization_request = validate
    server.transaction = transaction
    try:
        with_sso = browser.code_flow(rp, None, state="b")
    finally:
        grant_class.validate_authorization_request = original_validate
        del server.transaction
    assert calls == {"validate": 1, "transaction": 0}
    assert set(with_sso) == set(after_login) == {"code", "state", "iss"}
    assert with_sso["iss"] == after_login["iss"] == settings.server.base_url and with_sso["state"] == "b"
    assert browser.token(rp, with_sso["code"]).status_code == 200
    assert browser.token(rp, with_sso["code"]).status_code == 400
