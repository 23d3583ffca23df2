"""Signing keys and their rollover (SECURITY R10, R12; conformance oidcc-server-rotate-keys)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import stat
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from idp import create_app
from idp.core.clock import FrozenClock
from idp.errors import ConfigurationError
from idp.oidc.keyset import (
    KeyRotationError,
    OidcKeySet,
    ensure_oidc_keys,
    rotate_promote,
    rotate_publish,
    rotate_retire,
)
from idp.settings import KeySettings, Settings
from idp.wiring import build_services

from .conftest import Browser, Clients


def kids(keyset: OidcKeySet) -> set[str]:
    return {k["kid"] for k in keyset.jwks()["keys"]}


def test_init_creates_rs256_and_es256_with_unique_kids_and_0600(tmp_path: Path) -> None:
    created = ensure_oidc_keys(tmp_path)
    assert len(created) == 3 and ensure_oidc_keys(tmp_path) == []
    for name in created[:2]:
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    keyset = OidcKeySet(tmp_path)
    keys = keyset.jwks()["keys"]
    assert sorted(k["alg"] for k in keys) == ["ES256", "RS256"] and len(kids(keyset)) == 2


def test_rollover_stages(tmp_path: Path) -> None:
    start = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    ensure_oidc_keys(tmp_path, start)
    keyset = OidcKeySet(tmp_path)
    old_kid, _ = keyset.signing_key("RS256")
    new = rotate_publish(tmp_path, start)
    keyset.refresh()
    assert len(kids(keyset)) == 4 and set(new) <= kids(keyset)
    assert keyset.signing_key("RS256")[0] == old_kid  # published first, not signing yet
    with pytest.raises(KeyRotationError):
        rotate_publish(tmp_path, start)
    with pytest.raises(KeyRotationError):
        rotate_promote(tmp_path, start + dt.timedelta(hours=23))
    rotate_promote(tmp_path, start + dt.timedelta(hours=24))
    keyset.refresh()
    assert keyset.signing_key("RS256")[0] in new and old_kid in kids(keyset)
    with pytest.raises(KeyRotationError):
        rotate_retire(tmp_path, start + dt.timedelta(hours=24, minutes=5))
    retired = rotate_retire(tmp_path, start + dt.timedelta(hours=24, minutes=12))
    keyset.refresh()
    assert old_kid in retired and kids(keyset) == set(new)
    assert not (tmp_path / f"oidc-{old_kid}.key").exists()


@pytest.fixture
def own_keys(tmp_path: Path, settings: Settings, clean_db: Any, clock: FrozenClock) -> Any:
    ensure_oidc_keys(tmp_path, clock.now())
    own = dataclasses.replace(settings, keys=KeySettings(directory=str(tmp_path)))
    services = build_services(own, clock=clock, db=clean_db)
    app = create_app(own, services)
    return tmp_path, services, app


def test_oidcc_server_rotate_keys(own_keys: Any, clock: FrozenClock) -> None:
    from conftest import AccountFactory

    directory, services, app = own_keys
    browser = Browser(app.test_client(), services)
    rp = Clients(services)()
    person = AccountFactory(services)("Marie", "Dupont")
    keyset = services.frontends["oidc"].server.keys
    before = browser.tokens(rp, person.identifier)
    rotate_publish(directory, clock.now())
    keyset.refresh()
    jwks = browser.client.get("/oidc/jwks").get_json()
    assert len(jwks["keys"]) == 4
    clock.advance(hours=24)
    rotate_promote(directory, clock.now())
    keyset.refresh()
    after = browser.tokens(rp, person.identifier)
    jwks = browser.client.get("/oidc/jwks").get_json()
    old_kid = pyjwt.get_unverified_header(before["id_token"])["kid"]
    new_kid = pyjwt.get_unverified_header(after["id_token"])["kid"]
    assert old_kid != new_kid
    new_key = pyjwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == new_kid)).key
    no_time = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}  # the test clock ran ahead 24 h
    pyjwt.decode(after["id_token"], new_key, algorithms=["RS256"], audience=rp.client_id, issuer="https://idp.test",
                 options=no_time)
    # a token signed by the old key still verifies against the published JWKS (its own exp aside)
    old_key = pyjwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == old_kid)).key
    pyjwt.decode(before["id_token"], old_key, algorithms=["RS256"], audience=rp.client_id, options=no_time)
    # and an id_token_hint signed by the previous key is still ours
    response = browser.client.get("/oidc/logout", query_string={"id_token_hint": before["id_token"]})
    assert response.status_code == 200
    clock.advance(minutes=12)
    rotate_retire(directory, clock.now())
    keyset.refresh()
    assert old_kid not in {k["kid"] for k in browser.client.get("/oidc/jwks").get_json()["keys"]}


def test_startup_fails_closed_without_keys(tmp_path: Path, settings: Settings, clean_db: Any) -> None:
    missing = dataclasses.replace(settings, keys=KeySettings(directory=str(tmp_path / "none")))
    with pytest.raises(ConfigurationError):
        build_services(missing, db=clean_db)
    ensure_oidc_keys(tmp_path)
    state = json.loads((tmp_path / "oidc-keys.json").read_text())
    (tmp_path / f"oidc-{state['keys'][0]['kid']}.key").unlink()
    with pytest.raises(ConfigurationError):
        OidcKeySet(tmp_path)


def test_weak_rsa_key_is_refused(tmp_path: Path) -> None:
    import base64
    import hashlib

    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    pem = weak.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    kid = base64.urlsafe_b64encode(hashlib.sha256(pem).digest()).rstrip(b"=").decode()
    (tmp_path / f"oidc-{kid}.key").write_bytes(pem)
    stamp = dt.datetime.now(dt.UTC).isoformat()
    (tmp_path / "oidc-keys.json").write_text(json.dumps({"keys": [
        {"kid": kid, "alg": "RS256", "status": "active", "created_at": stamp, "changed_at": stamp}]}))
    with pytest.raises(ConfigurationError):
        OidcKeySet(tmp_path)
