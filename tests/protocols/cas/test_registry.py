"""The service registry's URL normalisation and matching (C02, C12), and the failure mapping (STYLE)."""

from __future__ import annotations

import pytest

from idp.cas.mapping import CAS_CODE, LOGIN_FAILURE
from idp.cas.registry import InvalidServiceUrl, matches, parse_service, registration_for
from idp.cas.tickets import TicketProblem
from idp.errors import AuthnFailure
from idp.storage.cas_store import CasServiceRecord


def _record(pattern: str, match: str = "prefix") -> CasServiceRecord:
    scheme, host, stored = registration_for(pattern, match, allow_http=False)
    return CasServiceRecord(service_id="s", name="S", match=match, pattern=stored, scheme=scheme, host=host)


@pytest.mark.parametrize(("raw", "normalised"), [
    ("https://ENT.Example.fr/app/", "https://ent.example.fr/app/"),
    ("https://ent.example.fr:443/app/", "https://ent.example.fr/app/"),
    ("https://ent.example.fr", "https://ent.example.fr/"),
    ("https://ent.example.fr/app/?a=1&ticket=ST-1&b=2#top", "https://ent.example.fr/app/?a=1&b=2"),
    ("https://ent.example.fr/app/?ticket=ST-1", "https://ent.example.fr/app/"),
    ("https://ent.example.fr:8443/app/", "https://ent.example.fr:8443/app/"),
    ("https://écoles.example.fr/", "https://xn--coles-9ra.example.fr/"),
    ("https://ent.example.fr/a%20b?q=%C3%A9", "https://ent.example.fr/a%20b?q=%C3%A9"),
    ("https://ent.example.fr/%7euser/%c3%a9?q=%2f%41", "https://ent.example.fr/~user/%C3%A9?q=%2FA"),
    ("https://[0:0::1]:8443/", "https://[::1]:8443/"),
])
def test_normalisation(raw: str, normalised: str) -> None:
    assert parse_service(raw, allow_http=False).normalised == normalised


@pytest.mark.parametrize("raw", [
    "", "http://ent.example.fr/", "javascript:alert(1)", "data:text/html,x", "ftp://ent.example.fr/",
    "https://user@ent.example.fr/", "https://ent.example.fr%2F@evil.tld/", "https://ent.example.fr%2fevil/",
    "https://ent.example.fr/\n", "https://ent.example.fr/%0d%0a\r", "https://ent.example.fr\\@evil.tld/",
    "https://ent.example.fr/ x", "https://ent.example.fr:99999/", "https://ent.example.fr:-1/", "https:///x",
    "https://ent..example.fr/", "https://ent.example.fr/é", "https://" + "a" * 2050, "//ent.example.fr/",
    "https://[::1%25eth0]/", "https://ent.example.fr/app/../admin/", "https://ent.example.fr/app/%2e%2e/admin/",
    "https://ent.example.fr/app/..%2Fadmin/", "https://ent.example.fr/app/%252e%252e/admin/",
    "https://ent.example.fr/app/..;x=1/admin/", "https://ent.example.fr/app/./x", "https://ent.example.fr/a%zz",
])
def test_refused_urls(raw: str) -> None:
    with pytest.raises(InvalidServiceUrl):
        parse_service(raw, allow_http=False)


def test_http_only_in_development_or_on_loopback() -> None:
    """S29's one transport rule (idp.core.urls.transport_allowed), as for OIDC and SAML registrations."""
    assert parse_service("http://ent.example.fr/", allow_http=True).normalised == "http://ent.example.fr/"
    assert parse_service("http://127.0.0.1:8000/", allow_http=False).normalised == "http://127.0.0.1:8000/"
    with pytest.raises(InvalidServiceUrl):
        parse_service("http://ent.example.fr/", allow_http=False)


@pytest.mark.parametrize("match", ["exact", "prefix", "regex"])
@pytest.mark.parametrize("candidate", [
    "https://ent.example.fr/app/../admin/", "https://ent.example.fr/app/%2e%2e/admin/",
    "https://ent.example.fr/app/..%2Fadmin/", "https://ent.example.fr/app/%2E%2E%2fadmin/",
    "https://ent.example.fr/app/..;/admin/", "https://ent.example.fr/app/.%2e/admin/",
])
def test_dot_segments_never_reach_any_match_kind(match: str, candidate: str) -> None:
    """C15: each kind of registration sees only normalised candidates, and none has a dot-segment."""
    pattern = {"exact": "https://ent.example.fr/admin/", "prefix": "https://ent.example.fr/app/",
               "regex": r"https://ent\.example\.fr/app/.*"}[match]
    _record(pattern, match)  # the registration itself is fine
    with pytest.raises(InvalidServiceUrl):
        parse_service(candidate, allow_http=False)


def test_unreserved_escapes_are_decoded_before_matching() -> None:
    record = _record("https://ent.example.fr/app/~x/", "exact")
    assert matches(record, parse_service("https://ent.example.fr/app/%7ex/", allow_http=False))
    assert matches(_record("https://ent.example.fr/app/"), parse_service("https://ent.example.fr/%61pp/y",
                                                                          allow_http=False))


def test_rows_stored_before_the_rule_match_by_their_normalised_form() -> None:
    """A pattern stored with the former normalisation (escapes kept as typed) matches its equivalents; one with
    a dot-segment matches nothing, not even a prefix of everything."""
    old = CasServiceRecord(service_id="s", name="S", match="exact", pattern="https://ent.example.fr/%7ex/",
                           scheme="https", host="ent.example.fr")
    assert matches(old, parse_service("https://ent.example.fr/~x/", allow_http=False))
    for match in ("exact", "prefix"):
        unsafe = CasServiceRecord(service_id="s", name="S", match=match, pattern="https://ent.example.fr/a/../",
                                  scheme="https", host="ent.example.fr")
        assert not matches(unsafe, parse_service("https://ent.example.fr/", allow_http=False))
        assert not matches(unsafe, parse_service("https://ent.example.fr/a/x", allow_http=False))


@pytest.mark.parametrize("pattern", ["https://ent.example.fr/app/../", "https://ent.example.fr/a%2Fb/"])
def test_unsafe_patterns_are_refused_at_registration(pattern: str) -> None:
    for match in ("exact", "prefix"):
        with pytest.raises(InvalidServiceUrl):
            registration_for(pattern, match, allow_http=False)


@pytest.mark.parametrize(("candidate", "ok"), [
    ("https://ent.example.fr/app/", True),
    ("https://ent.example.fr/app/x?y=1", True),
    ("https://ent.example.fr/app", False),
    ("https://ent.example.fr/application/", False),
    ("https://ent.example.fr.evil.tld/app/", False),
    ("https://evil.tld/?x=https://ent.example.fr/app/", False),
    ("https://ent.example.fr:444/app/", False),
])
def test_prefix_matching(candidate: str, ok: bool) -> None:
    assert matches(_record("https://ent.example.fr/app/"), parse_service(candidate, allow_http=False)) is ok


def test_prefix_boundary_without_trailing_slash() -> None:
    record = _record("https://ent.example.fr/app")
    assert matches(record, parse_service("https://ent.example.fr/app/x", allow_http=False))
    assert matches(record, parse_service("https://ent.example.fr/app?x", allow_http=False))
    assert not matches(record, parse_service("https://ent.example.fr/appevil", allow_http=False))


def test_regex_is_anchored_and_host_bound() -> None:
    record = _record(r"https://ent\.example\.fr/(a|b)/.*", "regex")
    assert matches(record, parse_service("https://ent.example.fr/a/x", allow_http=False))
    assert not matches(record, parse_service("https://ent.example.fr/c/a/x", allow_http=False))
    loose = _record(r"^https://ent\.example\.fr/.*$", "regex")
    assert not matches(loose, parse_service("https://evil.tld/https://ent.example.fr/", allow_http=False))


@pytest.mark.parametrize("pattern", [
    "https://ent.example.fr/.*", "https://.*/", ".*", "https://ent\\.example\\.fr(/.*)?", "https://ent\\.fr/(",
])
def test_loose_regexes_are_refused_at_registration(pattern: str) -> None:
    with pytest.raises(InvalidServiceUrl):
        registration_for(pattern, "regex", allow_http=False)


def test_every_failure_has_a_wire_form() -> None:
    assert set(CAS_CODE) == set(TicketProblem)
    assert set(LOGIN_FAILURE) == set(AuthnFailure)
    codes = {code for code, _ in CAS_CODE.values()}
    assert codes == {"INVALID_REQUEST", "INVALID_TICKET_SPEC", "UNAUTHORIZED_SERVICE_PROXY",
                     "INVALID_PROXY_CALLBACK", "INVALID_TICKET", "INVALID_SERVICE", "INTERNAL_ERROR",
                     "UNAUTHORIZED_SERVICE"}
