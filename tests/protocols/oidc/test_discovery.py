"""Discovery and JWKS (SECURITY O23; conformance oidcc-discovery-endpoint-verification)."""

from __future__ import annotations

from flask.testing import FlaskClient

from idp.settings import Settings


def test_oidcc_discovery_endpoint_verification(client: FlaskClient, settings: Settings) -> None:
    response = client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    doc = response.get_json()
    issuer = settings.server.base_url
    assert doc["issuer"] == issuer
    for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                "end_session_endpoint", "revocation_endpoint", "introspection_endpoint"):
        assert doc[key].startswith(issuer + "/") and doc[key].startswith("https://"), key
    assert doc["response_types_supported"] == ["code"]
    assert set(doc["subject_types_supported"]) == {"public", "pairwise"}
    assert "RS256" in doc["id_token_signing_alg_values_supported"]
    assert "none" not in doc["id_token_signing_alg_values_supported"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["request_parameter_supported"] is False and doc["request_uri_parameter_supported"] is False
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert "openid" in doc["scopes_supported"] and "fr_edu" in doc["scopes_supported"]
    assert {"sub", "iss", "auth_time", "acr", "sid", "family_name", "FrEduCtEleveUAI"} <= set(doc["claims_supported"])
    assert "implicit" not in doc["grant_types_supported"] and "password" not in doc["grant_types_supported"]
    assert "none" not in doc["token_endpoint_auth_signing_alg_values_supported"]


def test_jwks_has_unique_kids_rs256_es256_and_no_private_members(client: FlaskClient) -> None:
    doc = client.get("/.well-known/openid-configuration").get_json()
    path = doc["jwks_uri"].split("https://idp.test", 1)[1]
    response = client.get(path)
    assert response.status_code == 200
    keys = response.get_json()["keys"]
    kids = [k["kid"] for k in keys]
    assert len(kids) == len(set(kids)) and all(kids)
    assert {k["alg"] for k in keys} >= {"RS256", "ES256"}
    for key in keys:
        assert key["use"] == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & key.keys()
    rsa = next(k for k in keys if k["alg"] == "RS256")
    import base64
    n = base64.urlsafe_b64decode(rsa["n"] + "=" * (-len(rsa["n"]) % 4))
    assert len(n) * 8 >= 2048
