"""The téléservices demo RP refuses a replayed back-channel logout token (OIDC Back-Channel Logout 1.0 §2.6:
the RP may use ``jti`` to detect replays) and one without ``jti``; the checks run on the RP's own app."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from sp_adapters.common.app import AdapterConfig
from sp_adapters.teleservices import create_app
from sp_adapters.teleservices.oidc import BACKCHANNEL_EVENT, OidcClient


@pytest.fixture
def rp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    def verify(self: OidcClient, token: str, *, logout: bool = False) -> dict[str, Any]:
        # Signatures are checked with the provider's real tokens in test_demo_flows; here the claims are set.
        claims: dict[str, Any] = {"iss": "https://idp.test", "aud": "teleservices", "iat": int(time.time()),
                                  "events": {BACKCHANNEL_EVENT: {}}, "sid": "sid-1"}
        if token != "no-jti":
            claims["jti"] = token
        return claims

    monkeypatch.setattr(OidcClient, "verify", verify)
    app = create_app(AdapterConfig("http://rp.test", "https://idp.test", tmp_path))
    return app.test_client()


def test_a_logout_token_is_accepted_once(rp: Any) -> None:
    first = rp.post("/backchannel-logout", data={"logout_token": "jti-1"})
    assert first.status_code == 200 and first.headers["Cache-Control"] == "no-store"
    again = rp.post("/backchannel-logout", data={"logout_token": "jti-1"})
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_request"
    assert rp.post("/backchannel-logout", data={"logout_token": "jti-2"}).status_code == 200


def test_a_logout_token_without_jti_is_refused(rp: Any) -> None:
    refused = rp.post("/backchannel-logout", data={"logout_token": "no-jti"})
    assert refused.status_code == 400 and refused.get_json() == {"error": "invalid_request"}
