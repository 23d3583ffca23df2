"""SECURITY F01–F08 against the bundled provider: states of another browser, forged or expired tokens, an
unknown kid, mix-up, pinned endpoints, the link key, login CSRF on the link, a provider down or slow, logout."""

from __future__ import annotations

import dataclasses
import socket
import sys
import time
from pathlib import Path

import pytest
from conftest import DEFAULT_PASSWORD, LoginHelper
from flask.testing import FlaskClient
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fc_support import (  # noqa: E402,F401 - fixtures
    CLIENT_SECRET,
    FcBrowser,
    Upstream,
    callback_params,
    federation_settings,
    last_code,
    link_karim,
    local,
    make_register,
    settings,
    text_of,
    upstream,
)

from idp.core.activation.model import RepresentativeRecord  # noqa: E402
from idp.core.clock import FrozenClock  # noqa: E402
from idp.core.federation.errors import FederationUnavailable  # noqa: E402
from idp.core.federation.matching import PivotIdentity, candidates, given_keys, record_matches  # noqa: E402
from idp.errors import ConfigurationError  # noqa: E402
from idp.federation import install, upstream_config  # noqa: E402
from idp.federation.client import UpstreamClient  # noqa: E402
from idp.settings import FederationSettings, Settings  # noqa: E402
from idp.storage.federation_store import FederationLinkRow  # noqa: E402
from idp.storage.models import SsoSessionRow  # noqa: E402
from idp.wiring import Services  # noqa: E402


def _links(services: Services) -> int:
    with services.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(FederationLinkRow)))


def _sessions(services: Services) -> int:
    with services.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(SsoSessionRow)
                                      .where(SsoSessionRow.ended_at.is_(None))))


def _linked_karim(client: FlaskClient, services: Services, upstream: Upstream, account_factory: object) -> str:
    browser = link_karim(client, services, upstream, account_factory)
    assert _links(services) == 1
    return browser.identifier


# --- F01: state bound to this browser, single use, 10 minutes ------------------------------------------------


def test_f01_callback_with_another_browsers_state_is_refused(client: FlaskClient, services: Services,
                                                             upstream: Upstream, account_factory: object) -> None:
    _linked_karim(client, services, upstream, account_factory)
    attacker = FcBrowser(client.application.test_client(), upstream)
    callback = attacker.choose(attacker.authorize(), "karim")  # the attacker's own valid state and code
    victim = client.application.test_client()
    before = _sessions(services)
    answer = victim.get(local(callback))
    assert answer.status_code == 400 and "n'a pas pu être vérifiée" in text_of(answer)
    assert _sessions(services) == before and "sso" not in answer.headers.get("Set-Cookie", "")


def test_f01_state_is_single_use_and_expires(client: FlaskClient, services: Services, upstream: Upstream,
                                             account_factory: object, clock: FrozenClock) -> None:
    _linked_karim(client, services, upstream, account_factory)
    browser = FcBrowser(client.application.test_client(), upstream)
    callback = browser.choose(browser.authorize(), "karim")
    assert browser.client.get(local(callback)).status_code == 303
    assert browser.client.get(local(callback)).status_code == 400  # replay
    late = browser.choose(browser.authorize(), "karim")
    clock.advance(minutes=10, seconds=1)
    assert browser.client.get(local(late)).status_code == 400
    unknown = callback_params(callback)
    assert browser.client.get("/franceconnect/retour?code=x&state=" + "a" * 43).status_code == 400
    assert browser.client.get("/franceconnect/retour?code=" + unknown["code"]).status_code == 400


# --- F02: the ID token and the userinfo JWT -----------------------------------------------------------------


@pytest.mark.parametrize("fault", ["bad_signature", "expired", "wrong_aud", "wrong_iss", "wrong_nonce", "alg_none",
                                   "hs256", "unknown_kid", "userinfo_other_sub"])
def test_f02_forged_or_wrong_tokens_are_rejected(fault: str, client: FlaskClient, services: Services,
                                                 upstream: Upstream) -> None:
    make_register(services)
    upstream.provider.fault = fault
    answer = FcBrowser(client, upstream).login("karim")
    assert answer.status_code == 400, fault
    assert "La réponse de FranceConnect n'a pas pu être vérifiée" in text_of(answer)
    assert _links(services) == 0 and _sessions(services) == 0
    with services.uow() as uow:
        from idp.storage.activation_store import ActivationTxRow

        assert uow.session.scalar(select(func.count()).select_from(ActivationTxRow)) == 0


def test_f02_new_kid_is_fetched_once_then_unknown_kids_are_rejected(client: FlaskClient, services: Services,
                                                                    upstream: Upstream,
                                                                    account_factory: object) -> None:
    _linked_karim(client, services, upstream, account_factory)
    upstream.provider.rotate_key()  # the provider signs with a new kid: our cached JWKS lacks it
    again = FcBrowser(client.application.test_client(), upstream).login("karim")
    assert again.status_code == 303 and again.headers["Location"] == "/services"
    upstream.provider.fault = "unknown_kid"  # a kid the JWKS never has: no second fetch within the minute
    refused = FcBrowser(client.application.test_client(), upstream).login("karim")
    assert refused.status_code == 400


# --- F03: mix-up ----------------------------------------------------------------------------------------------


def test_f03_authorization_response_from_another_issuer_is_rejected(client: FlaskClient, services: Services,
                                                                    upstream: Upstream) -> None:
    make_register(services)
    browser = FcBrowser(client, upstream)
    callback = browser.choose(browser.authorize(), "karim")
    forged = callback.replace("iss=http", "iss=https%3A%2F%2Fevil.example%2Fapi%2Fv2&x=http")
    answer = client.get(local(forged))
    assert answer.status_code == 400 and _sessions(services) == 0


# --- F04: endpoints pinned ------------------------------------------------------------------------------------


def test_f04_endpoints_off_the_issuers_origin_are_refused_at_start() -> None:
    good = federation_settings("https://fc.example/api/v2")
    assert good.token_endpoint == "https://fc.example/api/v2/token"
    with pytest.raises(ConfigurationError, match="token_endpoint"):
        dataclasses.replace(good, token_endpoint="https://evil.example/api/v2/token")
    with pytest.raises(ConfigurationError, match="jwks_uri"):
        dataclasses.replace(good, jwks_uri="http://fc.example/api/v2/jwks")
    with pytest.raises(ConfigurationError, match="algorithms"):
        dataclasses.replace(good, algorithms=("HS256",))
    with pytest.raises(ConfigurationError):
        FederationSettings(enabled=True)


def test_f04_no_discovery_the_pinned_endpoints_are_used(services: Services, upstream: Upstream) -> None:
    config = upstream_config(services)
    assert config.token_endpoint == upstream.issuer + "/token" and config.jwks_uri == upstream.issuer + "/jwks"
    assert config.client_secret == CLIENT_SECRET and config.redirect_uri == "https://idp.test/franceconnect/retour"


# --- F05: the link key is (issuer, sub) -----------------------------------------------------------------------


def test_f05_same_names_and_email_but_another_sub_do_not_reach_the_linked_account(
        client: FlaskClient, services: Services, upstream: Upstream, account_factory: object,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _linked_karim(client, services, upstream, account_factory)
    original = upstream.provider.sub_for
    monkeypatch.setattr(upstream.provider, "sub_for", lambda identity: "autre" + original(identity)[5:])
    answer = FcBrowser(client.application.test_client(), upstream).login("karim")
    assert answer.status_code == 303 and answer.headers["Location"] == "/franceconnect/code"  # confirmation again
    assert _links(services) == 1


# --- F06: no automatic link; login CSRF on the link endpoint ---------------------------------------------------


def test_f06_link_endpoint_needs_csrf_password_and_the_same_session(
        client: FlaskClient, services: Services, upstream: Upstream, account_factory: object,
        login: LoginHelper) -> None:
    make_register(services)
    account = account_factory("Karim", "Lefort")  # type: ignore[operator]
    with services.uow() as uow:
        uow.accounts.claim_register(account.id, representatives=[("0301234A", "R1")])
        uow.commit()
    login(account.identifier)
    assert client.post("/compte/franceconnect/lier", data={"actuel": DEFAULT_PASSWORD}).status_code in (400, 403)
    assert client.post("/compte/franceconnect/delier", data={"actuel": DEFAULT_PASSWORD}).status_code in (400, 403)
    browser = FcBrowser(client, upstream)
    started = browser.post("/compte/franceconnect/lier", {"actuel": DEFAULT_PASSWORD}, page="/compte")
    callback = browser.choose(started.headers["Location"], "karim")
    browser.post("/logout", {}, page="/logout")  # the session that asked is gone
    answer = client.get(local(callback))
    assert answer.status_code == 400 and _links(services) == 0


def test_f06_ambiguous_match_sends_no_code_and_links_nothing(client: FlaskClient, services: Services,
                                                             upstream: Upstream) -> None:
    make_register(services)
    answer = FcBrowser(client, upstream).login("catherine")
    assert answer.status_code == 409 and _links(services) == 0
    assert client.get("/franceconnect/code").status_code in (400, 303)


def test_matching_normalisation_rules() -> None:
    pivot = PivotIdentity("i", "s", given_name="Jean-Pierre Éloi Marc", family_name="N'DIAYE",
                          preferred_username="Saint-Exupéry")
    assert given_keys(pivot) == ["jeanpierre", "jeanpierreeloi", "jeanpierreeloimarc"]
    assert record_matches(pivot, "Ndiaye", "JEAN PIERRE")
    assert record_matches(pivot, "SAINT EXUPERY", "jean-pierre éloi")  # usage name, two given names
    assert not record_matches(pivot, "Ndiaye", "Jean")  # Jean is not Jean-Pierre
    assert not record_matches(pivot, "Ndiaye", "Éloi")  # a second given name alone is not enough
    assert not record_matches(pivot, "Diaye", "Jean-Pierre")
    elodie = PivotIdentity("i", "s", given_name="Élodie", family_name="LEFÈVRE")
    assert record_matches(elodie, "Lefevre", "ELODIE") and record_matches(elodie, "LEFÈVRE", "élodie")

    def rep(rid: int, phone: str, account: int | None = None) -> RepresentativeRecord:
        return RepresentativeRecord(rid, "0301234A", f"R{rid}", "Lefèvre", "Élodie", phone, "", account)

    assert len(candidates(elodie, [rep(1, "+33612345678"), rep(2, "06 12 34 56 78")])) == 1  # one person
    assert len(candidates(elodie, [rep(1, "+33612345678"), rep(2, "+33698765432")])) == 2  # two people
    assert len(candidates(elodie, [rep(1, "", 7), rep(2, "+33698765432", 7)])) == 1  # same account


# --- F07: provider down or slow --------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_f07_provider_down_gives_the_password_route_and_opens_the_breaker(
        client: FlaskClient, services: Services, upstream: Upstream) -> None:
    make_register(services)
    browser = FcBrowser(client, upstream)
    callback = browser.choose(browser.authorize(), "karim")
    dead = f"http://127.0.0.1:{_closed_port()}/api/v2"
    config = dataclasses.replace(upstream_config(services), token_endpoint=dead + "/token", breaker_failures=2)
    install(services, UpstreamClient(config, clock=lambda: services.clock.now().timestamp()))
    answer = client.get(local(callback))
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    page = text_of(answer)
    assert "FranceConnect ne répond pas pour le moment" in page and "Me connecter avec mon identifiant" in page
    second = browser.choose(browser.authorize(), "karim")
    assert client.get(local(second)).status_code == 503
    start = client.get("/franceconnect")  # two failures in a row: the breaker is open, no call made
    assert start.status_code == 503 and "FranceConnect ne répond pas" in text_of(start)


def test_f07_slow_provider_times_out_quickly(client: FlaskClient, services: Services, upstream: Upstream) -> None:
    make_register(services)
    config = dataclasses.replace(upstream_config(services), timeout_seconds=0.5)
    install(services, UpstreamClient(config, clock=lambda: services.clock.now().timestamp()))
    browser = FcBrowser(client, upstream)
    callback = browser.choose(browser.authorize(), "karim")
    upstream.provider.delay_seconds = 3
    began = time.monotonic()
    answer = client.get(local(callback))
    elapsed = time.monotonic() - began
    upstream.provider.delay_seconds = 0
    assert answer.status_code == 503 and elapsed < 2.0


class Trickle:
    """A provider that answers, but one byte at a time: each byte well within the per-read timeout."""

    def __init__(self, head_first: bool) -> None:
        import threading

        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.head_first = head_first
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                body = b'{"id_token": "' + b"x" * 200 + b'"}'
                answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " \
                    + str(len(body)).encode() + b"\r\n\r\n"
                try:
                    if self.head_first:
                        conn.sendall(answer)
                        answer = b""
                    for byte in answer + body:
                        if self.stop.is_set():
                            return
                        conn.sendall(bytes([byte]))
                        time.sleep(0.1)
                except OSError:
                    continue

    def close(self) -> None:
        self.stop.set()
        self.server.close()


@pytest.mark.parametrize("head_first", [False, True], ids=["trickled-headers", "trickled-body"])
def test_f07_a_trickling_provider_is_cut_off_at_the_timeout(services: Services, upstream: Upstream,
                                                           head_first: bool) -> None:
    """``timeout_seconds`` bounds the whole call: a provider sending a byte every 0.1 s (each read well within
    the timeout) is cut off after 0.5 s instead of holding the worker for the minute its answer would take."""
    trickle = Trickle(head_first)
    try:
        config = dataclasses.replace(upstream_config(services), timeout_seconds=0.5,
                                     token_endpoint=trickle.url + "/token")
        client = UpstreamClient(config, clock=lambda: services.clock.now().timestamp())
        began = time.monotonic()
        with pytest.raises(FederationUnavailable) as refused:
            client.authenticate("code", "nonce-" + "n" * 40)
        assert time.monotonic() - began < 1.5 and refused.value.reason == "deadline"
        assert client.breaker._failures == 1  # noqa: SLF001 - it counts as a failure of the provider
    finally:
        trickle.close()


# --- F08: logout ------------------------------------------------------------------------------------------------


def test_f08_upstream_down_at_logout_never_keeps_our_session(client: FlaskClient, services: Services,
                                                             upstream: Upstream, account_factory: object) -> None:
    _linked_karim(client, services, upstream, account_factory)
    assert _sessions(services) == 1
    upstream.server.shutdown()  # the provider is gone
    browser = FcBrowser(client, upstream)
    out = browser.post("/logout", {}, page="/logout")
    assert _sessions(services) == 0
    assert out.status_code in (200, 303)
    assert "idp_sso=;" in out.headers.get("Set-Cookie", "") or "__Host-sso=;" in out.headers.get("Set-Cookie", "")


def test_settings_read_the_client_secret_from_the_environment(tmp_path: Path) -> None:
    from idp.settings import load_settings

    (tmp_path / "config.toml").write_text("[federation]\nclient_id = \"x\"\n")
    loaded: Settings = load_settings(tmp_path / "config.toml",
                                     environ={"IDP_FEDERATION_CLIENT_SECRET": "secret-from-env"})
    assert loaded.federation_client_secret == "secret-from-env" and "secret-from-env" not in repr(loaded)
