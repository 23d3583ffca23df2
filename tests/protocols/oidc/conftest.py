"""OIDC fixtures: the protocol enabled, signing keys as ``idp init`` makes them, registered clients, a
browser-like relying party on the Flask test client, the app on a real socket for the ``oic`` library, and an
HTTP server receiving back-channel logout tokens.

Tokens are always checked with PyJWT (not authlib) against the JWKS we publish.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
import re
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt as pyjwt
import pytest
from conftest import DEFAULT_PASSWORD, AccountFactory, csrf_from, profile_of
from flask import Flask
from flask.testing import FlaskClient

from idp.core.clock import FrozenClock
from idp.oidc.registration import ClientSpec, register
from idp.settings import ProtocolSettings, Settings
from idp.storage.oidc_store import ClientRecord
from idp.wiring import Services

RP = "https://rp.ecole.test"
REDIRECT = f"{RP}/callback"


@pytest.fixture
def settings(base_settings: Settings, oidc_keys_dir: Path) -> Settings:
    return dataclasses.replace(base_settings, protocols=ProtocolSettings(enabled=("oidc",)))


@pytest.fixture
def clock() -> FrozenClock:
    # Near the real time, so independent libraries checking exp/iat against their own clock agree.
    # Two minutes behind, so that tests may advance it without issuing tokens "from the future".
    return FrozenClock(dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=2))


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query, keep_blank_values=True).items()}


@dataclasses.dataclass
class Registered:
    record: ClientRecord
    secret: str

    @property
    def client_id(self) -> str:
        return self.record.client_id

    def basic(self) -> dict[str, str]:
        raw = f"{self.client_id}:{self.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


class Clients:
    """Register clients the way ``idp oidc add`` does."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def __call__(self, name: str = "ENT du collège", **kw: Any) -> Registered:
        kw.setdefault("redirect_uris", (REDIRECT,))
        kw.setdefault("first_party", True)
        kw.setdefault("scopes", ("openid", "profile", "email", "fr_edu", "fr_edu_children"))
        with self.services.uow() as uow:
            record, secret = register(uow, ClientSpec(name=name, **kw), self.services.clock.now())
            uow.commit()
        return Registered(record, secret)


@pytest.fixture
def clients(services: Services) -> Clients:
    return Clients(services)


class Browser:
    """A person's browser on the Flask test client, with the RP's steps around it."""

    def __init__(self, client: FlaskClient, services: Services) -> None:
        self.client = client
        self.services = services

    def authorize(self, rp: Registered, method: str = "GET", **params: Any) -> Any:
        params.setdefault("response_type", "code")
        params.setdefault("client_id", rp.client_id)
        params.setdefault("redirect_uri", rp.record.redirect_uris[0])
        params.setdefault("scope", "openid profile")
        params.setdefault("state", secrets.token_urlsafe(8))
        params = {k: v for k, v in params.items() if v is not None}
        if method == "POST":
            return self.client.post("/oidc/authorize", data=params)
        return self.client.get("/oidc/authorize?" + urlencode(params))

    def login(self, login_url: str, identifier: str, password: str = DEFAULT_PASSWORD) -> Any:
        profile = profile_of(self.services, identifier)
        page = self.client.get(login_url + ("&" if "?" in login_url else "?") + f"profil={profile}")
        assert page.status_code == 200, page.status_code
        form_url = login_url.split("?")[0] + f"?profil={profile}"  # where the form posts
        return self.client.post(form_url, data={"identifiant": identifier, "mot_de_passe": password,
                                                "csrf_token": csrf_from(page.get_data(as_text=True))})

    def code_flow(self, rp: Registered, identifier: str | None, **params: Any) -> dict[str, str]:
        """Authorize (logging in when asked) and return the query of the final redirect to the RP."""
        response = self.authorize(rp, **params)
        if response.status_code == 303 and "/login/" in response.headers["Location"]:
            assert identifier, "a login was needed"
            done = self.login(response.headers["Location"], identifier)
            assert done.status_code == 303, done.status_code
            response = self.client.get(done.headers["Location"])
        assert response.status_code in (302, 303), (response.status_code, response.get_data(as_text=True)[:300])
        location = response.headers["Location"]
        assert location.startswith((params.get("redirect_uri") or rp.record.redirect_uris[0]) + "?"), location
        return query_of(location)

    def token(self, rp: Registered, code: str, *, auth: str = "basic", **extra: Any) -> Any:
        data = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": rp.record.redirect_uris[0], **extra}
        data = {k: v for k, v in data.items() if v is not None}
        return self.post_token(rp, data, auth=auth)

    def post_token(self, rp: Registered, data: dict[str, Any], *, auth: str = "basic", path: str = "/oidc/token") -> Any:
        headers = {}
        if auth == "basic":
            headers = rp.basic()
        elif auth == "post":
            data = {**data, "client_id": rp.client_id, "client_secret": rp.secret}
        elif auth == "none":
            data = {**data, "client_id": rp.client_id}
        return self.client.post(path, data=data, headers=headers)

    def tokens(self, rp: Registered, identifier: str, **params: Any) -> dict[str, Any]:
        params.setdefault("nonce", secrets.token_urlsafe(8))
        query = self.code_flow(rp, identifier, **params)
        response = self.token(rp, query["code"])
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def userinfo(self, access_token: str, method: str = "GET") -> Any:
        headers = {"Authorization": f"Bearer {access_token}"}
        return self.client.get("/oidc/userinfo", headers=headers) if method == "GET" else \
            self.client.post("/oidc/userinfo", headers=headers)


@pytest.fixture
def browser(client: FlaskClient, services: Services) -> Browser:
    return Browser(client, services)


@pytest.fixture
def parent(account_factory: AccountFactory) -> Any:
    return account_factory("Marie", "Dupont")


def jwks_of(client: FlaskClient) -> dict[str, Any]:
    return client.get("/oidc/jwks").get_json()


def verify_jwt(token: str, jwks: dict[str, Any], *, audience: str, issuer: str,
               algorithms: tuple[str, ...] = ("RS256",), leeway: int = 5) -> dict[str, Any]:
    """Check a token with PyJWT against our published keys (independent of authlib/joserfc)."""
    header = pyjwt.get_unverified_header(token)
    assert header.get("kid"), "kid missing"
    matches = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    assert len(matches) == 1, "kid not in JWKS"
    key = pyjwt.PyJWK(matches[0]).key
    return pyjwt.decode(token, key, algorithms=list(algorithms), audience=audience, issuer=issuer,
                        options={"require": ["exp", "iat", "iss", "sub", "aud"]}, leeway=leeway)


# --- the app on a real socket, for the oic library -------------------------------------------------


class LiveServer:
    def __init__(self, base_url: str, app: Flask, services: Services) -> None:
        self.base_url = base_url
        self.app = app
        self.services = services


@pytest.fixture
def live(base_settings: Settings, oidc_keys_dir: Path, clean_db: Any, clock: FrozenClock) -> Iterator[LiveServer]:
    from werkzeug.serving import make_server

    from idp import create_app
    from idp.wiring import build_services

    holder: dict[str, Flask] = {}

    def dispatch(environ: Any, start_response: Any) -> Any:
        return holder["app"](environ, start_response)

    server = make_server("127.0.0.1", 0, dispatch, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    settings = dataclasses.replace(base_settings, protocols=ProtocolSettings(enabled=("oidc",)),
                                   server=dataclasses.replace(base_settings.server, base_url=base))
    services = build_services(settings, clock=clock, db=clean_db)
    app = create_app(settings, services)
    holder["app"] = app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(base, app, services)
    finally:
        server.shutdown()
        thread.join(5)


# --- a relying party's back-channel logout endpoint ------------------------------------------------


class LogoutReceiver:
    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.event = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                body = parse_qs(self.rfile.read(length).decode())
                receiver.tokens.extend(body.get("logout_token", []))
                receiver.event.set()
                self.send_response(200)
                self.send_header("Cache-Control", "no-store")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/backchannel"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def logout_receiver() -> Iterator[LogoutReceiver]:
    receiver = LogoutReceiver()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


class OicRp:
    """A relying party built on the ``oic`` library, with a ``requests`` session as the person's browser."""

    def __init__(self, live: LiveServer, registered: Registered, auth_method: str = "client_secret_basic") -> None:
        import requests
        from oic.oic import Client
        from oic.oic.message import RegistrationResponse
        from oic.utils.authn.client import CLIENT_AUTHN_METHOD

        self.live = live
        self.registered = registered
        self.redirect_uri = registered.record.redirect_uris[0]
        self.auth_method = auth_method
        self.oic = Client(client_authn_method=CLIENT_AUTHN_METHOD)
        self.provider = self.oic.provider_config(live.base_url)
        self.oic.store_registration_info(RegistrationResponse(
            client_id=registered.client_id, client_secret=registered.secret or None,
            redirect_uris=[self.redirect_uri], token_endpoint_auth_method=auth_method))
        self.browser = requests.Session()
        self.token_kwargs: dict[str, Any] = {}
        self.jwks = requests.get(self.provider["jwks_uri"], timeout=5).json()

    def request_url(self, scope: str = "openid", *, pkce: bool = False, nonce: bool = True,
                    **extra: Any) -> tuple[str, str, str | None]:
        """The authorization URL oic builds; returns (url, state, code_verifier)."""
        state = secrets.token_urlsafe(12)
        args: dict[str, Any] = {"client_id": self.registered.client_id, "response_type": "code",
                                "scope": scope.split(), "redirect_uri": self.redirect_uri, "state": state}
        if nonce:
            args["nonce"] = secrets.token_urlsafe(12)
        verifier = None
        if pkce:
            challenge, verifier = self.oic.add_code_challenge()
            args.update(challenge)
        args.update(extra)
        request = self.oic.construct_AuthorizationRequest(request_args=args)
        return request.request(self.oic.authorization_endpoint), state, verifier

    def follow(self, url: str, identifier: str | None = None, password: str = DEFAULT_PASSWORD,
               method: str = "GET") -> str:
        """Drive the browser through the login if asked; return the final Location (at the RP)."""
        if method == "POST":
            base, _, query = url.partition("?")
            response = self.browser.post(base, data=parse_qs(query), allow_redirects=False)
        else:
            response = self.browser.get(url, allow_redirects=False)
        location = response.headers.get("Location", "")
        if response.status_code == 303 and "/login/" in location:
            assert identifier, "the provider asked for a login"
            login = self.live.base_url + location
            profile = profile_of(self.live.services, identifier)
            page = self.browser.get(login + ("&" if "?" in login else "?") + f"profil={profile}")
            assert page.status_code == 200
            form = login.split("?")[0] + f"?profil={profile}"  # where the form posts
            response = self.browser.post(form, data={"identifiant": identifier, "mot_de_passe": password,
                                                     "csrf_token": csrf_from(page.text)}, allow_redirects=False)
            assert response.status_code == 303, response.status_code
            response = self.browser.get(self.live.base_url + response.headers["Location"], allow_redirects=False)
            location = response.headers.get("Location", "")
        assert response.status_code in (302, 303), (response.status_code, response.text[:300])
        assert location.startswith(self.redirect_uri), location
        return location

    def parse(self, location: str) -> Any:
        from oic.oic.message import AuthorizationResponse

        return self.oic.parse_response(AuthorizationResponse, info=urlsplit(location).query, sformat="urlencoded")

    def token(self, state: str, code: str, verifier: str | None = None) -> Any:
        args: dict[str, Any] = {"code": code}
        if verifier:
            args["code_verifier"] = verifier
        return self.oic.do_access_token_request(state=state, request_args=args, authn_method=self.auth_method,
                                                **self.token_kwargs)

    def login_flow(self, identifier: str | None, scope: str = "openid", **extra: Any) -> tuple[str, Any]:
        """A whole code flow: (state, token response) with the ID token verified by oic and by PyJWT."""
        url, state, verifier = self.request_url(scope, **extra)
        answer = self.parse(self.follow(url, identifier))
        assert answer["state"] == state and answer["iss"] == self.live.base_url
        tokens = self.token(state, answer["code"], verifier)
        assert "error" not in tokens, tokens.to_dict()
        self.check_id_token(tokens["id_token_jwt"])
        return state, tokens

    def check_id_token(self, token: str) -> dict[str, Any]:
        return verify_jwt(token, self.jwks, audience=self.registered.client_id, issuer=self.live.base_url)


@pytest.fixture
def oic_rp(live: LiveServer) -> Any:
    from conftest import AccountFactory

    def make(auth_method: str = "client_secret_basic", **kw: Any) -> OicRp:
        registered = Clients(live.services)(auth_method=auth_method, **kw)
        return OicRp(live, registered, auth_method)

    make.account = AccountFactory(live.services)  # type: ignore[attr-defined]
    return make


def html_text(response: Any) -> str:
    import html

    return html.unescape(response.get_data(as_text=True))


def form_fields(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))


__all__ = ["REDIRECT", "RP", "Browser", "Clients", "Registered", "form_fields", "html_text", "jwks_of",
           "json", "query_of", "s256", "verify_jwt"]
