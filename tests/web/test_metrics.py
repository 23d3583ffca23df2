"""/metrics (Prometheus text, bearer token only), /readyz (database, Redis, keys) and what the metrics count."""

from __future__ import annotations

import dataclasses
import os
import re

from conftest import AccountFactory, LoginHelper
from flask import Flask
from flask.testing import FlaskClient

from idp import create_app, metrics
from idp.settings import Settings
from idp.web.readiness import readiness
from idp.wiring import Services, build_services

TOKEN = "scraper-token-for-tests-0123456789"


def scrape(client: FlaskClient, token: str = TOKEN) -> str:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.status_code
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return response.get_data(as_text=True)


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample (labels in any order), 0 when absent."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def with_token(settings: Settings, services: Services) -> Flask:
    scraped = dataclasses.replace(settings, metrics_token=TOKEN)
    services.settings = scraped
    app = create_app(scraped, services)
    app.config["TESTING"] = True
    return app


def test_metrics_is_not_public(settings: Settings, services: Services, client: FlaskClient) -> None:
    assert client.get("/metrics").status_code == 404  # no token configured: not served at all
    app = with_token(settings, services).test_client()
    refused = app.get("/metrics")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert app.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert app.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401


def test_logins_latencies_hashes_and_queue_are_counted(settings: Settings, services: Services,
                                                      account_factory: AccountFactory) -> None:
    app = with_token(settings, services)
    client = app.test_client()
    before = scrape(client)
    account = account_factory()
    helper = LoginHelper(client)
    helper(account.identifier, "Mauvais-mot-de-passe-1")
    helper(account.identifier)
    after = scrape(client)
    for outcome in ("failure", "success"):
        key = {"protocol": "portal", "route": "password", "outcome": outcome}
        assert sample(after, "idp_logins_total", **key) == sample(before, "idp_logins_total", **key) + 1
    hashes = sample(after, "idp_argon2_hash_seconds_count") - sample(before, "idp_argon2_hash_seconds_count")
    assert hashes >= 3  # the account's hash, then one verification per login
    assert sample(after, "idp_argon2_hashes_in_flight") == 0
    assert sample(after, "idp_request_duration_seconds_count", method="POST", route="/login", status="200") >= 1
    # URL rules, never ids (bounded series): a request id, not a route of words such as /login/mot-de-passe-a-changer
    assert not re.search(r'route="/login/(?![a-z]+(?:-[a-z]+)*")[A-Za-z0-9_-]{20,}"', after)
    assert sample(after, "idp_delivery_queue_depth", channel="sms") == 0
    assert "idp_delivery_queue_depth" in after and "idp_db_connections_in_use" in after


def test_readyz_names_what_is_missing(settings: Settings, services: Services, client: FlaskClient) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_json()
    assert ready.get_json() == {"status": "ready", "database": "up", "redis": "absent", "keys": "up"}
    nothing = dataclasses.replace(settings, redis=dataclasses.replace(settings.redis, url="redis://127.0.0.1:1/0"),
                                  database=dataclasses.replace(settings.database, url="postgresql://idp@127.0.0.1:1/x",
                                                               pool_timeout_seconds=1))
    down = create_app(nothing, build_services(nothing)).test_client().get("/readyz")
    assert down.status_code == 503 and down.headers["Retry-After"]
    assert down.get_json() == {"status": "unavailable", "database": "down", "redis": "down", "keys": "up"}


def test_readyz_wants_the_signing_keys_of_the_enabled_protocols(settings: Settings, services: Services) -> None:
    keyless = dataclasses.replace(settings, protocols=dataclasses.replace(settings.protocols, enabled=("saml", "oidc")),
                                  keys=dataclasses.replace(settings.keys, directory="/nonexistent-keys"))
    assert readiness(dataclasses.replace(services, settings=keyless))["keys"] == "down"
    assert readiness(services)["keys"] == "up"


def test_activation_steps_are_counted_by_outcome(settings: Settings, services: Services) -> None:
    client = with_token(settings, services).test_client()
    before = scrape(client)
    page = client.get("/creer-mon-compte").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post("/creer-mon-compte", data={"nom": "Inconnu", "prenom": "Personne", "telephone": "06 12 34 56 78",
                                           "csrf_token": token})
    client.post("/creer-mon-compte/code", data={"code": "ABCDEF", "csrf_token": token})
    after = scrape(client)
    for step, outcome in (("start", "ok"), ("code", "code_rejected")):  # a refusal counts under its code
        labels = {"route": "sms", "step": step, "outcome": outcome}
        assert sample(after, "idp_activations_total", **labels) == sample(before, "idp_activations_total", **labels) + 1


def test_a_dead_workers_live_gauges_are_dropped_at_the_scrape_not_its_counters(tmp_path, monkeypatch) -> None:
    # idp serve's server has no hook when a worker dies: render() forgets the live gauges of pids not running.
    dead = 2 ** 22 + 12345  # above any pid this machine hands out (pid_max ≤ 2^22)
    for name in (f"gauge_livesum_{dead}.db", f"gauge_livesum_{os.getpid()}.db", f"counter_{dead}.db"):
        (tmp_path / name).write_bytes(b"")
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    metrics.forget_dead_workers()
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        f"counter_{dead}.db", f"gauge_livesum_{os.getpid()}.db"]
