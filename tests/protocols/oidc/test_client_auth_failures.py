"""Client authentication failures (SECURITY O08, O28; issue 21 item 6): audited as ``oidc.client_auth_failed``
with the client id and the address, counted per client id and per address like password failures, answered
401 ``invalid_client`` and, once throttled, 429 ``invalid_client`` with ``Retry-After``; at the token,
introspection and revocation endpoints, for secrets and for ``private_key_jwt``. The registered client holding
its secret is never locked out by someone else's failures."""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey
from sqlalchemy import select

from idp import create_app
from idp.core.clock import FrozenClock
from idp.settings import RedisSettings
from idp.storage.models import AuditEventRow, ThrottleRow
from idp.wiring import build_services

from .conftest import REDIRECT, Browser, Clients

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CODE = {"grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT}


@dataclasses.dataclass(frozen=True)
class Failure:
    ip: str
    account_id: int | None
    details: dict[str, Any]


def _failures(services: Any) -> list[Failure]:
    with services.uow() as uow:
        rows = uow.session.scalars(select(AuditEventRow).where(AuditEventRow.event == "oidc.client_auth_failed")
                                   .order_by(AuditEventRow.id))
        return [Failure(r.ip, r.account_id, json.loads(r.details) if isinstance(r.details, str) else r.details)
                for r in rows]


def _wrong(browser: Browser, rp: Any, ip: str = "203.0.113.7", path: str = "/oidc/token",
           data: dict[str, Any] | None = None) -> Any:
    wrong = dataclasses.replace(rp, secret="faux-" + secrets.token_urlsafe(8))
    return browser.client.post(path, data=data or CODE, headers=wrong.basic(), environ_base={"REMOTE_ADDR": ip})


def _is_invalid_client(response: Any, status: int) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"] == "invalid_client"
    assert response.headers["Cache-Control"] == "no-store"


def test_a_wrong_secret_is_audited_with_client_id_address_method_and_endpoint(browser: Browser, clients: Clients,
                                                                             services: Any) -> None:
    rp = clients()
    response = _wrong(browser, rp)
    _is_invalid_client(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    (row,) = _failures(services)
    assert row.ip == "203.0.113.7" and row.account_id is None
    assert row.details["client_id"] == rp.client_id and row.details["method"] == "client_secret_basic"
    assert row.details["endpoint"] == "token" and row.details["throttled"] is False
    assert "faux" not in json.dumps(row.details)  # never the secret tried


def test_the_client_id_is_throttled_after_five_failures_but_its_holder_is_never_locked_out(
        browser: Browser, clients: Clients, parent: Any, services: Any) -> None:
    rp = clients()
    for n in range(5):
        _is_invalid_client(_wrong(browser, rp, ip=f"198.51.100.{n}"), 401)  # five addresses, one client id
    throttled = _wrong(browser, rp, ip="192.0.2.99")
    _is_invalid_client(throttled, 429)
    assert 0 < int(throttled.headers["Retry-After"]) <= 15 * 60 + 1
    assert "Too many failed client authentications" in throttled.get_json()["error_description"]
    # The real client, with its secret, still gets its tokens.
    assert browser.tokens(rp, parent.identifier)["access_token"]
    query = browser.code_flow(rp, parent.identifier)
    assert browser.token(rp, query["code"], auth="basic", scope="openid").status_code == 200
    # Audit: each failure up to the one that started the throttle; not the flood after it.
    for _ in range(5):
        _is_invalid_client(_wrong(browser, rp, ip="192.0.2.99"), 429)
    rows = _failures(services)
    assert [r.details["throttled"] for r in rows] == [False] * 4 + [True]


def test_an_address_is_throttled_whatever_client_ids_it_tries(browser: Browser, clients: Clients,
                                                              services: Any) -> None:
    rp = clients()
    for n in range(30):
        unknown = dataclasses.replace(rp, record=dataclasses.replace(rp.record, client_id=f"inconnu-{n}"))
        _is_invalid_client(_wrong(browser, unknown, ip="203.0.113.50"), 401)
    _is_invalid_client(_wrong(browser, rp, ip="203.0.113.50"), 429)
    _is_invalid_client(_wrong(browser, rp, ip="203.0.113.51"), 401)  # another address is not concerned
    with services.uow() as uow:
        keys = set(uow.session.scalars(select(ThrottleRow.key)))
    assert keys and all(k.startswith("client") for k in keys)  # never the families' login counters


def test_each_new_throttle_is_audited_once(browser: Browser, clients: Clients, services: Any,
                                           clock: FrozenClock) -> None:
    rp = clients()
    for _ in range(5):
        _wrong(browser, rp)
    _is_invalid_client(_wrong(browser, rp), 429)  # 6th: the lock now runs 2 min
    clock.advance(minutes=3)
    _is_invalid_client(_wrong(browser, rp), 401)  # the lock is over: checked, failed, audited, locked again
    _is_invalid_client(_wrong(browser, rp), 429)
    rows = _failures(services)
    assert [r.details["throttled"] for r in rows] == [False] * 4 + [True, True]


@pytest.mark.parametrize(("path", "endpoint"), [("/oidc/introspect", "introspection"),
                                                ("/oidc/revoke", "revocation")])
def test_introspection_and_revocation_failures_are_audited_and_throttled(browser: Browser, clients: Clients,
                                                                         services: Any, path: str,
                                                                         endpoint: str) -> None:
    rp = clients()
    data = {"token": "x" * 43}
    for _ in range(5):
        _is_invalid_client(_wrong(browser, rp, path=path, data=data), 401)
    _is_invalid_client(_wrong(browser, rp, path=path, data=data), 429)
    rows = _failures(services)
    assert len(rows) == 5 and {r.details["endpoint"] for r in rows} == {endpoint}


def test_private_key_jwt_failures_are_audited_under_the_claimed_client(browser: Browser, clients: Clients,
                                                                       services: Any, clock: FrozenClock) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = RSAKey.import_key(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo))
    rp = clients("Téléservice", auth_method="private_key_jwt", jwks=json.dumps(
        {"keys": [dict(public.as_dict(private=False), kid="rp-1", alg="RS256", use="sig")]}))
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # not the registered key
    now = int(clock.now().timestamp())
    assertion = pyjwt.encode({"iss": rp.client_id, "sub": rp.client_id, "aud": "https://idp.test/oidc/token",
                              "exp": now + 60, "iat": now, "jti": secrets.token_urlsafe(16)}, other,
                             algorithm="RS256", headers={"kid": "rp-1"})
    response = browser.client.post("/oidc/token", data={**CODE, "client_assertion_type": ASSERTION_TYPE,
                                                        "client_assertion": assertion})
    _is_invalid_client(response, 401)
    (row,) = _failures(services)
    assert row.details["client_id"] == rp.client_id and row.details["method"] == "private_key_jwt"


REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "")


def _app_with_redis(settings: Any, db: Any, clock: FrozenClock, url: str) -> Any:
    configured = dataclasses.replace(settings, redis=RedisSettings(url=url))
    app = create_app(configured, build_services(configured, clock=clock, db=db))
    app.config["TESTING"] = True
    return app


@pytest.mark.skipif(not REDIS_URL, reason="set IDP_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15)")
def test_client_failure_counters_live_in_redis(settings: Any, clean_db: Any, clock: FrozenClock,
                                               clients: Clients) -> None:
    import redis

    store = redis.Redis.from_url(REDIS_URL)
    for key in store.scan_iter("idp:throttle:client*"):
        store.delete(key)
    rp = clients()
    client = _app_with_redis(settings, clean_db, clock, REDIS_URL).test_client()
    wrong = dataclasses.replace(rp, secret="faux")
    answers = [client.post("/oidc/token", data=CODE, headers=wrong.basic()).status_code for _ in range(6)]
    assert answers == [401] * 5 + [429]
    assert any(True for _ in store.scan_iter("idp:throttle:client:*"))


def test_client_failures_fail_closed_when_redis_is_down(settings: Any, clean_db: Any, clock: FrozenClock,
                                                         clients: Clients) -> None:
    rp = clients()
    client = _app_with_redis(settings, clean_db, clock, "redis://127.0.0.1:1/0").test_client()
    response = client.post("/oidc/token", data=CODE, headers=dataclasses.replace(rp, secret="faux").basic())
    assert response.status_code == 503 and response.get_json()["error"] == "temporarily_unavailable"
    assert response.headers["Retry-After"]


def _counted(endpoint: str, throttled: str) -> float:
    """``idp_oidc_client_auth_failures_total`` for these labels, from this process's registry."""
    from idp import metrics

    body, _ = metrics.render()
    for line in body.decode().splitlines():
        if line.startswith("idp_oidc_client_auth_failures_total{") and f'endpoint="{endpoint}"' in line \
                and f'throttled="{throttled}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_failures_are_counted_in_the_metrics(browser: Browser, clients: Clients) -> None:
    before = _counted("token", "False")
    _is_invalid_client(_wrong(browser, clients(), ip="203.0.113.77"), 401)
    assert _counted("token", "False") == before + 1
