"""F08 from the protocols' own logouts: a session opened through FranceConnect ends there too when the person
logs out at CAS ``/cas/logout`` or OIDC ``end_session_endpoint``, and the logout then finishes where that
protocol sends it (the CAS logged-out page with its link back to the service; the OIDC logged-out page)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fc_support import (  # noqa: E402,F401 - fixtures
    BASE,
    CLIENT_SECRET,
    FcBrowser,
    Upstream,
    callback_params,
    federation_settings,
    link_karim,
    local,
    make_register,
    text_of,
    upstream,
)

from idp.cas.registry import registration_for  # noqa: E402
from idp.settings import DeliverySettings, ProtocolSettings, Settings  # noqa: E402
from idp.storage.cas_store import CasServiceRecord, SqlCasStore  # noqa: E402
from idp.storage.federation_store import FederationSessionRow  # noqa: E402
from idp.storage.models import SsoSessionRow  # noqa: E402
from idp.wiring import Services  # noqa: E402

SERVICE = "https://ent.example.fr/app/"


@pytest.fixture
def settings(base_settings: Settings, upstream: Upstream, oidc_keys_dir: Path) -> Settings:
    return dataclasses.replace(base_settings, delivery=DeliverySettings(background=False),
                               protocols=ProtocolSettings(enabled=("cas", "oidc")),
                               federation=federation_settings(upstream.issuer, timeout_seconds=2),
                               federation_client_secret=CLIENT_SECRET)


def _nothing_open(services: Services) -> None:
    with services.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(SsoSessionRow)
                                  .where(SsoSessionRow.ended_at.is_(None))) == 0
        assert uow.session.scalar(select(func.count()).select_from(FederationSessionRow)) == 0


def _upstream_round(browser: FcBrowser, upstream: Upstream, target: str) -> str:
    """Follow the provider's ``session/end`` and return where it sends the browser back (our address)."""
    assert target.startswith(upstream.issuer + "/session/end?")
    params = callback_params(target)
    assert params["post_logout_redirect_uri"] == BASE + "/franceconnect/deconnexion"
    back = browser.fc.get(local(target))
    assert back.status_code == 303 and back.headers["Location"].startswith(BASE + "/franceconnect/deconnexion")
    assert upstream.provider.ended and upstream.provider.ended[-1]["state"] == params["state"]
    return str(back.headers["Location"])


def test_cas_logout_ends_the_upstream_session_then_offers_the_link_back(
        client: FlaskClient, services: Services, upstream: Upstream, account_factory: object) -> None:
    scheme, host, stored = registration_for(SERVICE, "prefix", allow_http=services.settings.server.development)
    with services.uow() as uow:
        SqlCasStore(uow.session).add_service(CasServiceRecord(
            service_id="ent", name="ENT", match="prefix", pattern=stored, scheme=scheme, host=host), "",
            services.clock.now())
        uow.commit()
    browser = link_karim(client, services, upstream, account_factory)
    out = browser.post(f"/cas/logout?service={SERVICE}", {}, page=f"/cas/logout?service={SERVICE}")
    assert out.status_code == 303
    _nothing_open(services)
    back = _upstream_round(browser, upstream, out.headers["Location"])
    continued = client.get(local(back))
    assert continued.status_code == 303 and continued.headers["Location"].startswith("/cas/logout?service=")
    final = client.get(continued.headers["Location"])
    assert final.status_code == 200 and "déconnecté" in text_of(final) and SERVICE in final.get_data(as_text=True)


def test_oidc_end_session_ends_the_upstream_session_too(
        client: FlaskClient, services: Services, upstream: Upstream, account_factory: object) -> None:
    browser = link_karim(client, services, upstream, account_factory)
    out = browser.post("/oidc/logout", {"confirmer": "1"}, page="/oidc/logout")
    assert out.status_code == 303
    _nothing_open(services)
    back = _upstream_round(browser, upstream, out.headers["Location"])
    final = client.get(local(back))
    assert final.status_code == 200 and "déconnecté" in text_of(final)


def test_a_password_session_logs_out_of_cas_without_any_upstream_hop(
        client: FlaskClient, services: Services, upstream: Upstream, login: object,
        account_factory: object) -> None:
    account = account_factory("Anne", "Banc")  # type: ignore[operator]
    assert login(account.identifier).status_code == 303  # type: ignore[operator]
    out = FcBrowser(client, upstream).post("/cas/logout", {}, page="/cas/logout")
    assert out.status_code == 200 and "déconnecté" in text_of(out)
    assert not upstream.provider.ended


def test_oidc_logout_with_id_token_hint_hops_upstream_then_reaches_the_registered_target(
        client: FlaskClient, services: Services, upstream: Upstream, account_factory: object) -> None:
    """RP-initiated logout with ``id_token_hint`` and a registered ``post_logout_redirect_uri`` (no confirmation
    page): our session ends, the FranceConnect session ends through ``session/end``, and the browser arrives
    at the RP's registered address with its ``state``, and nowhere else."""
    import base64
    import secrets
    from urllib.parse import parse_qs, urlencode, urlsplit

    from idp.oidc.registration import ClientSpec, register

    bye, callback = "https://teleservices.example.fr/bye", "https://teleservices.example.fr/callback"
    with services.uow() as uow:
        record, secret = register(uow, ClientSpec(name="Téléservices", redirect_uris=(callback,), first_party=True,
                                                  scopes=("openid", "profile"), post_logout_redirect_uris=(bye,)),
                                  services.clock.now())
        uow.commit()
    browser = link_karim(client, services, upstream, account_factory)
    answer = client.get("/oidc/authorize?" + urlencode({
        "response_type": "code", "client_id": record.client_id, "redirect_uri": callback, "scope": "openid",
        "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8)}))
    assert answer.status_code in (302, 303) and answer.headers["Location"].startswith(callback + "?")
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    basic = base64.b64encode(f"{record.client_id}:{secret}".encode()).decode()
    tokens = client.post("/oidc/token", data={"grant_type": "authorization_code", "code": code,
                                              "redirect_uri": callback}, headers={"Authorization": "Basic " + basic})
    assert tokens.status_code == 200, tokens.get_data(as_text=True)
    out = client.get("/oidc/logout", query_string={"id_token_hint": tokens.get_json()["id_token"],
                                                   "post_logout_redirect_uri": bye, "state": "au-revoir"})
    assert out.status_code == 303
    _nothing_open(services)
    back = _upstream_round(browser, upstream, out.headers["Location"])
    final = client.get(local(back))
    assert final.status_code in (302, 303) and final.headers["Location"] == bye + "?state=au-revoir"
