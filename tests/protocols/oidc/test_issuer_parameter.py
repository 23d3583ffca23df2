"""``iss`` (RFC 9207) appended to the authorization responses authlib builds: the same bytes as authlib's own
hook (which parses and re-encodes the whole query), without re-encoding."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from authlib.common.urls import add_params_to_uri

from idp.oidc.endpoints import Issuer

REDIRECTS = ["https://rp.example/cb", "https://rp.example/cb?", "https://rp.example/cb?tenant=ac-montpellier",
             "https://rp.example/cb?next=/a%20b&x=1+2&flag=", "http://127.0.0.1:8080/callback",
             "com.example.app:/oauth2redirect", "https://rp.example/cb?x=%C3%A9l%C3%A8ve"]
ANSWERS = [[("code", "Zx9_-abc"), ("state", "s t/ä&=?")], [("code", "c")],
           [("error", "access_denied"), ("error_description", "L'usager a refusé."), ("state", "1")]]


@pytest.mark.parametrize("issuer", ["https://idp.example", "https://idp.example/ent sso/?a=1&b"])
@pytest.mark.parametrize("redirect_uri", REDIRECTS)
@pytest.mark.parametrize("answer", ANSWERS)
def test_iss_is_appended_as_authlib_would(issuer: str, redirect_uri: str, answer: list[tuple[str, str]]) -> None:
    location = add_params_to_uri(redirect_uri, answer)  # what the grant or the error answer holds
    response = SimpleNamespace(location=location)
    Issuer(issuer).add_issuer_parameter(None, response)
    assert response.location == add_params_to_uri(location, {"iss": issuer})


def test_no_location_no_change() -> None:
    response = SimpleNamespace(location=None)
    Issuer("https://idp.example").add_issuer_parameter(None, response)
    assert response.location is None
