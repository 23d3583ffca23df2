"""``idp.web.form_targets``: only a clean ``scheme://host[:port]`` ever reaches the CSP ``form-action``
(SECURITY S31), whatever a registration holds; and the header keeps every other directive."""

from __future__ import annotations

import pytest

from idp.web.form_targets import origin_of
from idp.web.security import CSP, content_security_policy


@pytest.mark.parametrize(("url", "origin"), [
    ("https://pronote.example.fr/pronote/?x=1#y", "https://pronote.example.fr"),
    ("HTTPS://Ent.Example.FR:443/acs", "https://ent.example.fr"),
    ("http://127.0.0.1:5002/callback", "http://127.0.0.1:5002"),
    ("http://[::1]:8080/cb", "http://[::1]:8080"),
    ("https://ts.example.fr:8443", "https://ts.example.fr:8443"),
])
def test_origin_of_a_registered_url(url: str, origin: str) -> None:
    assert origin_of(url) == origin


@pytest.mark.parametrize("url", [
    "", "/relative/path", "javascript:alert(1)", "data:text/html,x", "ftp://files.example.fr/",
    "https://user:pass@ent.example.fr/", "https://ent.example.fr:99999/", "https://*.example.fr/",
    "https://ent.example.fr;script-src *", "https://ent example.fr/", "https://ent.example.fr'/",
])
def test_anything_else_adds_no_source(url: str) -> None:
    assert origin_of(url) is None


def test_the_policy_only_grows_by_the_given_origins() -> None:
    assert CSP.endswith("form-action 'self'") and "unsafe" not in CSP and "*" not in CSP
    grown = content_security_policy(["https://b.example.fr", "https://a.example.fr", "https://a.example.fr"])
    assert grown == CSP + " https://a.example.fr https://b.example.fr"
