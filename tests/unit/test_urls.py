"""The one URL-safety parse (idp.core.urls): dot-segments, encoded separators, normalisation, transport (C15, S29)."""

from __future__ import annotations

import pytest

from idp.core.urls import UnsafeUrl, is_loopback, is_safe, parse_url, transport_allowed


@pytest.mark.parametrize("raw", [
    "https://host/app/../admin/", "https://host/app/%2e%2e/admin/", "https://host/app/%2E%2E/admin/",
    "https://host/app/..%2Fadmin/", "https://host/app/..%2fadmin/", "https://host/app/..%5Cadmin/",
    "https://host/app/%252e%252e/admin/", "https://host/app/%252F", "https://host/app/..;jsessionid=1/admin/",
    "https://host/app/./admin/", "https://host/app/.", "https://host/app/..", "https://host/app/.%2E/",
    "https://host/app\\..\\admin", "https://host/a%zz", "https://host/a%4", "https://host/a%",
    "ftp://host/", "javascript:alert(1)", "https://user@host/", "https://host%2F@evil/", "https:///x",
    "https://[fe80::1%25eth0]/", "https://[zz::1]/", "https://ho st/", "https://host/\r\n", "",
])
def test_refused(raw: str) -> None:
    with pytest.raises(UnsafeUrl):
        parse_url(raw)
    assert not is_safe(raw)


@pytest.mark.parametrize(("raw", "normalised"), [
    ("HTTPS://Host.Example:443/a/b", "https://host.example/a/b"),
    ("https://host", "https://host/"),
    ("https://host/%7Euser/%61%2d%5F%2E", "https://host/~user/a-_."),
    ("https://host/%c3%a9?q=%2f%41&r=%e2%82%ac", "https://host/%C3%A9?q=%2FA&r=%E2%82%AC"),
    ("https://host/a.b/..c/c../.../", "https://host/a.b/..c/c../.../"),
    ("https://host/x?next=/a/../b", "https://host/x?next=/a/../b"),  # the query is not a path
    ("http://[0::1]:8080/cb", "http://[::1]:8080/cb"),
    ("https://écoles.example.fr/", "https://xn--coles-9ra.example.fr/"),
])
def test_normalised(raw: str, normalised: str) -> None:
    assert parse_url(raw).normalised == normalised


def test_fragment_kept_apart() -> None:
    url = parse_url("https://host/p#frag")
    assert (url.normalised, url.fragment, url.origin) == ("https://host/p", "frag", "https://host")


@pytest.mark.parametrize(("raw", "production", "development"), [
    ("https://sp.example/acs", True, True),
    ("http://sp.example/acs", False, True),
    ("http://127.0.0.1:5001/acs", True, True),
    ("http://127.8.9.1/acs", True, True),
    ("http://localhost/acs", True, True),
    ("http://[::1]/acs", True, True),
    ("http://localhost.evil.tld/acs", False, True),
    ("http://10.0.0.1/acs", False, True),
])
def test_transport_rule(raw: str, production: bool, development: bool) -> None:
    url = parse_url(raw)
    assert transport_allowed(url, development=False) is production
    assert transport_allowed(url, development=True) is development


def test_loopback() -> None:
    assert is_loopback("[::1]") and is_loopback("127.0.0.1") and is_loopback("localhost")
    assert not is_loopback("localhost.evil.tld") and not is_loopback("10.0.0.1")
