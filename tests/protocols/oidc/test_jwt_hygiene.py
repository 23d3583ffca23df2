"""JWT hygiene for what we verify (SECURITY O09) and client assertion rules (O10): ``private_key_jwt``
assertions and ``id_token_hint``. Attack tokens are built by hand or with PyJWT, never with our own code."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey

from idp.core.clock import FrozenClock

from .conftest import REDIRECT, Browser, Clients, query_of

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def b64(data: bytes | dict[str, Any]) -> str:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
def rp_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwt_client(clients: Clients, rp_key: rsa.RSAPrivateKey) -> Any:
    public = RSAKey.import_key(rp_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    jwks = {"keys": [dict(public.as_dict(private=False), kid="rp-1", alg="RS256", use="sig")]}
    return clients("Téléservice", auth_method="private_key_jwt", jwks=json.dumps(jwks))


def claims_for(rp: Any, clock: FrozenClock, **over: Any) -> dict[str, Any]:
    now = int(clock.now().timestamp())
    claims = {"iss": rp.client_id, "sub": rp.client_id, "aud": "https://idp.test/oidc/token",
              "exp": now + 60, "iat": now, "jti": secrets.token_urlsafe(16)}
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def sign(claims: dict[str, Any], key: Any, headers: dict[str, Any] | None = None, alg: str = "RS256") -> str:
    return pyjwt.encode(claims, key, algorithm=alg, headers={"kid": "rp-1", **(headers or {})})


def exchange(browser: Browser, rp: Any, code: str, assertion: str) -> Any:
    return browser.client.post("/oidc/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion})


def test_valid_assertion_then_jti_replay(browser: Browser, jwt_client: Any, parent: Any, rp_key: Any,
                                         clock: FrozenClock) -> None:
    assertion = sign(claims_for(jwt_client, clock), rp_key)
    code = browser.code_flow(jwt_client, parent.identifier)["code"]
    assert exchange(browser, jwt_client, code, assertion).status_code == 200
    code = browser.code_flow(jwt_client, None)["code"]
    replay = exchange(browser, jwt_client, code, assertion)
    assert replay.status_code == 401 and replay.get_json()["error"] == "invalid_client"
    assert exchange(browser, jwt_client, code, sign(claims_for(jwt_client, clock), rp_key)).status_code == 200


def test_small_clock_skew_is_accepted(browser: Browser, jwt_client: Any, parent: Any, rp_key: Any,
                                      clock: FrozenClock) -> None:
    # SECURITY R08: iat/nbf a little in the future (the client's clock runs ahead) are fine.
    now = int(clock.now().timestamp())
    code = browser.code_flow(jwt_client, parent.identifier)["code"]
    assertion = sign(claims_for(jwt_client, clock, iat=now + 20, nbf=now + 20, exp=now + 80), rp_key)
    assert exchange(browser, jwt_client, code, assertion).status_code == 200


BAD_CLAIMS = {
    "aud_other": {"aud": "https://other.example/token"},
    "aud_missing": {"aud": None},
    "exp_missing": {"exp": None},
    "exp_10_minutes": {"exp_delta": 600},
    "expired": {"exp_delta": -120},
    "iss_not_sub": {"iss": "someone-else"},
    "iat_future": {"iat_delta": 120},
    "nbf_future": {"nbf_delta": 120},
    "jti_missing": {"jti": None},
}


@pytest.mark.parametrize("case", sorted(BAD_CLAIMS))
def test_assertion_claims_are_checked(browser: Browser, jwt_client: Any, parent: Any, rp_key: Any,
                                      clock: FrozenClock, case: str) -> None:
    over = dict(BAD_CLAIMS[case])
    now = int(clock.now().timestamp())
    for name in ("exp", "iat", "nbf"):
        if f"{name}_delta" in over:
            over[name] = now + over.pop(f"{name}_delta")
    code = browser.code_flow(jwt_client, parent.identifier)["code"]
    response = exchange(browser, jwt_client, code, sign(claims_for(jwt_client, clock, **over), rp_key))
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"
    assert exchange(browser, jwt_client, code, sign(claims_for(jwt_client, clock), rp_key)).status_code == 200


def _attacks(rp: Any, clock: FrozenClock, rp_key: Any) -> dict[str, str]:
    claims = claims_for(rp, clock)
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attacker_jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(attacker.public_key()))
    public_pem = rp_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    import hashlib
    import hmac

    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': 'rp-1'})}.{b64(claims)}"
    hs256 = signing_input + "." + b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())
    return {
        "alg_none": f"{b64({'alg': 'none', 'kid': 'rp-1'})}.{b64(claims)}.",
        "hs256_with_public_key": hs256,
        "crit_unknown": sign(claims, rp_key, {"crit": ["exp_ext"], "exp_ext": 1}),
        "jwk_header": sign(claims, attacker, {"jwk": attacker_jwk, "kid": "attacker"}),
        "jku_header": sign(claims, attacker, {"jku": "https://evil.example/jwks", "kid": "attacker"}),
        "x5u_header": sign(claims, rp_key, {"x5u": "https://evil.example/cert.pem"}),
        "oversized_header": sign(claims, rp_key, {"pad": "x" * 9000}),
        "jwe_zip": ".".join([b64({"alg": "RSA-OAEP", "enc": "A256GCM", "zip": "DEF"}), "a", "b", "c", "d"]),
        "attacker_key_same_kid": sign(claims, attacker),
        "rs256_as_ps256_header": sign(claims, rp_key, alg="PS256").replace(
            b64({"alg": "PS256", "kid": "rp-1", "typ": "JWT"}), b64({"alg": "RS256", "kid": "rp-1", "typ": "JWT"})),
    }


@pytest.mark.parametrize("attack", ["alg_none", "hs256_with_public_key", "crit_unknown", "jwk_header", "jku_header",
                                    "x5u_header", "oversized_header", "jwe_zip", "attacker_key_same_kid",
                                    "rs256_as_ps256_header"])
def test_client_assertion_attacks_are_refused(browser: Browser, jwt_client: Any, parent: Any, rp_key: Any,
                                              clock: FrozenClock, attack: str) -> None:
    code = browser.code_flow(jwt_client, parent.identifier)["code"]
    response = exchange(browser, jwt_client, code, _attacks(jwt_client, clock, rp_key)[attack])
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"
    assert "WWW-Authenticate" in response.headers


# --- id_token_hint ----------------------------------------------------------------------------------


def _our_public_pem(client: Any) -> bytes:
    key = next(k for k in client.get("/oidc/jwks").get_json()["keys"] if k["alg"] == "RS256")
    return pyjwt.PyJWK(key).key.public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)


def _forged_hints(client: Any, genuine: str) -> dict[str, str]:
    import hashlib
    import hmac

    claims = pyjwt.decode(genuine, options={"verify_signature": False})
    kid = pyjwt.get_unverified_header(genuine)["kid"]
    signing_input = f"{b64({'alg': 'HS256', 'kid': kid})}.{b64(claims)}"
    mac = hmac.new(_our_public_pem(client), signing_input.encode(), hashlib.sha256).digest()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    head, body, sig = genuine.split(".")
    tampered = json.loads(base64.urlsafe_b64decode(body + "=="))
    tampered["sub"] = "someone-else"
    return {
        "alg_none": f"{b64({'alg': 'none', 'kid': kid})}.{b64(claims)}.",
        "hs256_with_our_public_key": f"{signing_input}.{b64(mac)}",
        "other_issuer": pyjwt.encode(dict(claims, iss="https://evil.example"), other, algorithm="RS256",
                                     headers={"kid": kid}),
        "modified": f"{head}.{b64(tampered)}.{sig}",
        "jku": pyjwt.encode(claims, other, algorithm="RS256", headers={"kid": kid, "jku": "https://evil.example/k"}),
        "garbage": "not-a-jwt",
    }


@pytest.mark.parametrize("forgery", ["alg_none", "hs256_with_our_public_key", "other_issuer", "modified", "jku",
                                     "garbage"])
def test_forged_id_token_hint_never_redirects(browser: Browser, clients: Clients, parent: Any, forgery: str) -> None:
    rp = clients(post_logout_redirect_uris=("https://rp.ecole.test/bye",))
    genuine = browser.tokens(rp, parent.identifier)["id_token"]
    hint = _forged_hints(browser.client, genuine)[forgery]
    response = browser.client.get("/oidc/logout", query_string={
        "id_token_hint": hint, "post_logout_redirect_uri": "https://rp.ecole.test/bye", "state": "s"})
    assert response.status_code == 200 and "Location" not in response.headers
    assert "Se déconnecter" in response.get_data(as_text=True)
    # and at the authorization endpoint, a forged hint is an error, not a silent login
    query = query_of(browser.authorize(rp, prompt="none", id_token_hint=hint, state="h").headers["Location"])
    assert query["error"] in ("invalid_request", "login_required") and "code" not in query
