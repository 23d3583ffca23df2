"""Login throttling with counters in Redis (IDP_TEST_REDIS_URL), and failing closed when Redis is down."""

from __future__ import annotations

import dataclasses
import os

import pytest
from conftest import LoginHelper

from idp import create_app
from idp.settings import RedisSettings, Settings
from idp.wiring import build_services

REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "")


def app_with_redis(settings: Settings, db, clock, url: str):
    configured = dataclasses.replace(settings, redis=RedisSettings(url=url))
    app = create_app(configured, build_services(configured, clock=clock, db=db))
    app.config["TESTING"] = True
    return app


@pytest.mark.skipif(not REDIS_URL, reason="set IDP_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15)")
def test_lock_counters_live_in_redis(settings: Settings, clean_db, clock, account_factory) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter("idp:throttle:*"):
        client.delete(key)
    app = app_with_redis(settings, clean_db, clock, REDIS_URL)
    login = LoginHelper(app.test_client())
    account = account_factory()
    answers = [login(account.identifier, "Mauvais-Mot-2!").status_code for _ in range(5)]
    assert answers == [200] * 4 + [429]  # the failure that starts the lock says so at once
    assert login(account.identifier).status_code == 429
    assert any(True for _ in client.scan_iter("idp:throttle:id:*"))
    clock.advance(seconds=61)
    assert login(account.identifier).status_code == 303


def test_redis_down_fails_closed(settings: Settings, clean_db, clock, account_factory) -> None:
    app = app_with_redis(settings, clean_db, clock, "redis://127.0.0.1:1/0")
    login = LoginHelper(app.test_client())
    account = account_factory()
    response = login(account.identifier)
    assert response.status_code == 503
    assert "Service momentanément indisponible" in response.get_data(as_text=True)
    assert response.headers["Retry-After"]
