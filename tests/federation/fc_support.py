"""Fixtures and helpers of the federation tests (no tests here): the bundled provider served by a real
werkzeug server in a thread (the IdP's back-channel calls go over HTTP), a register matching its identities,
and a browser that walks both sites (the provider's pages through its own test client)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "flows"))
from test_activation_support import add_parent, add_school, add_student, last_code  # noqa: E402

from idp.core.clock import FrozenClock  # noqa: E402
from idp.settings import DeliverySettings, FederationSettings, Settings  # noqa: E402
from idp.wiring import Services  # noqa: E402
from sp_adapters.franceconnect import ProviderConfig, create_app  # noqa: E402
from sp_adapters.franceconnect.app import Provider  # noqa: E402

CLIENT_ID = "compte-scolaire-test"
CLIENT_SECRET = "un-secret-de-test-assez-long-0123456789"
BASE = "https://idp.test"
PHONE_KARIM = "+33612345678"
PHONE_SANDRINE = "+33698765432"
KARIM_CHILD_BORN = dt.date(2012, 3, 14)
SANDRINE_CHILDREN = {"Camille": dt.date(2013, 5, 6), "Théo": dt.date(2009, 1, 20)}
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclasses.dataclass
class Upstream:
    """The running provider: its app (for the browser's legs), its state, its issuer."""

    app: Any
    provider: Provider
    issuer: str
    server: Any

    @property
    def client(self) -> FlaskClient:
        return self.app.test_client()


def _serve(clock: FrozenClock, tmp_path: Path) -> Iterator[Upstream]:
    holder: dict[str, Any] = {}

    def dispatch(environ: Any, start_response: Any) -> Any:
        return holder["app"](environ, start_response)

    server = make_server("127.0.0.1", 0, dispatch, threaded=True)
    issuer = f"http://127.0.0.1:{server.server_port}/api/v2"
    app = create_app(ProviderConfig(issuer=issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                    redirect_uris=(f"{BASE}/franceconnect/retour",),
                                    post_logout_redirect_uris=(f"{BASE}/franceconnect/deconnexion",),
                                    data_dir=str(tmp_path / "fc"), clock=lambda: clock.now().timestamp()))
    holder["app"] = app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Upstream(app=app, provider=app.extensions["franceconnect"], issuer=issuer, server=server)
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture
def upstream(clock: FrozenClock, tmp_path: Path) -> Iterator[Upstream]:
    yield from _serve(clock, tmp_path)


def federation_settings(issuer: str, **changes: Any) -> FederationSettings:
    return FederationSettings(
        enabled=True, issuer=issuer, authorization_endpoint=issuer + "/authorize", token_endpoint=issuer + "/token",
        userinfo_endpoint=issuer + "/userinfo", end_session_endpoint=issuer + "/session/end",
        jwks_uri=issuer + "/jwks", client_id=CLIENT_ID, **changes)


@pytest.fixture
def settings(base_settings: Settings, upstream: Upstream) -> Settings:
    return dataclasses.replace(base_settings, delivery=DeliverySettings(background=False),
                               federation=federation_settings(upstream.issuer, timeout_seconds=2),
                               federation_client_secret=CLIENT_SECRET)


def make_register(services: Services) -> dict[str, int]:
    """Karim Lefort (one record), Sandrine Dupuis (usage name; two schools, one phone), two Catherine Robert."""
    add_school(services, "0301234A", "Collège Claude Chappe")
    add_school(services, "0690026D", "Lycée du Parc", "lycee", "Lyon")
    ines = iter(f"1204567{n:02d}AB" for n in range(10, 99))
    ines_list = []
    ines_list.append(add_student(services, "0301234A", next(ines), "Lefort", "Inès", KARIM_CHILD_BORN, "4C"))
    karim = add_parent(services, "0301234A", "R1", "LEFORT", "Karim", PHONE_KARIM, ines_list[-1:])
    camille = add_student(services, "0301234A", next(ines), "Dupuis", "Camille", SANDRINE_CHILDREN["Camille"])
    theo = add_student(services, "0690026D", next(ines), "Dupuis", "Théo", SANDRINE_CHILDREN["Théo"], "2GT1")
    sandrine = add_parent(services, "0301234A", "R2", "Dupuis", "Sandrine", PHONE_SANDRINE, [camille])
    add_parent(services, "0690026D", "R9", "DUPUIS", "Sandrine Marie", PHONE_SANDRINE, [theo])
    for n, phone in enumerate(("+33611111111", "+33622222222")):
        kid = add_student(services, "0301234A", next(ines), "Robert", f"Enfant{n}", dt.date(2011, 1, 1 + n))
        add_parent(services, "0301234A", f"R{20 + n}", "Robert", "Catherine", phone, [kid])
    return {"karim": karim, "sandrine": sandrine}


def text_of(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


def local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class FcBrowser:
    """One person's browser: the IdP's test client and the provider's (each keeps its own cookies)."""

    def __init__(self, client: FlaskClient, upstream: Upstream) -> None:
        self.client = client
        self.upstream = upstream
        self.fc = upstream.client
        self.identifier = ""  # the local account's, once linked (link_karim)

    def authorize(self, start: str = "/franceconnect") -> str:
        """Click the button; return the provider's authorization URL."""
        answer = self.client.get(start)
        assert answer.status_code == 303, (answer.status_code, text_of(answer)[:500])
        assert answer.headers["Location"].startswith(self.upstream.issuer + "/authorize?")
        return answer.headers["Location"]

    def choose(self, authorize_url: str, identity: str) -> str:
        """Pick a test identity on the provider's page; return the callback URL it sends back."""
        page = self.fc.get(local(authorize_url))
        assert page.status_code == 200, text_of(page)
        interaction = re.search(r'name="interaction" value="([^"]+)"', text_of(page)).group(1)
        back = self.fc.post(urlsplit(self.upstream.issuer).path + "/login",
                            data={"interaction": interaction, "identity": identity})
        assert back.status_code == 303
        return back.headers["Location"]

    def login(self, identity: str, start: str = "/franceconnect") -> Any:
        """The whole round trip; returns the IdP's answer to the callback."""
        callback = self.choose(self.authorize(start), identity)
        assert callback.startswith(BASE + "/franceconnect/retour?")
        return self.client.get(local(callback))

    def post(self, path: str, data: dict[str, str], page: str | None = None) -> Any:
        shown = text_of(self.client.get(page or path))
        token = CSRF_RE.search(shown)
        if token is None:
            token = CSRF_RE.search(text_of(self.client.get("/creer-mon-compte")))
        return self.client.post(path, data={**data, "csrf_token": token.group(1)})

    def code(self, code: str) -> Any:
        return self.post("/franceconnect/code", {"code": code})

    def children(self, dates: dict[str, dt.date]) -> Any:
        page = text_of(self.client.get("/franceconnect/eleves"))
        names = re.findall(r'class="idp-child__name[^"]*"><strong>([^<]+)</strong>', page)
        data: dict[str, str] = {}
        for index, name in enumerate(names):
            born = next(d for n, d in dates.items() if name.startswith(n))
            data.update({f"lien_{index}": "oui", f"naissance_{index}_jour": f"{born.day:02d}",
                         f"naissance_{index}_mois": f"{born.month:02d}", f"naissance_{index}_annee": str(born.year)})
        return self.post("/franceconnect/eleves", data)

    def password(self, password: str) -> Any:
        return self.post("/franceconnect/mot-de-passe", {"mot_de_passe": password, "confirmation": password})


def callback_params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


__all__ = ["last_code"]


def link_karim(client: FlaskClient, services: Services, upstream: Upstream, account_factory: Any) -> FcBrowser:
    """The demo register, Karim Lefort's password account, then the same person through the provider, linked
    to that account inside the flow: the browser now holds an SSO session opened through FranceConnect."""
    from conftest import DEFAULT_PASSWORD

    make_register(services)
    account = account_factory("Karim", "Lefort")
    with services.uow() as uow:
        uow.accounts.claim_register(account.id, representatives=[("0301234A", "R1")])
        uow.commit()
    browser = FcBrowser(client, upstream)
    browser.login("karim")
    linked = browser.post("/franceconnect/compte-existant", {"identifiant": account.identifier,
                                                             "mot_de_passe": DEFAULT_PASSWORD})
    assert linked.status_code == 303
    browser.identifier = str(account.identifier)
    return browser
