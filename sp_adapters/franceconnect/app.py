"""The provider: authorize (with its own login page), token, userinfo (signed JWT), JWKS, session/end.

State is kept in memory (a development double, one process). ``Provider.fault`` lets tests make it misbehave
(a forged, expired or misaddressed ID token…), ``Provider.delay_seconds`` makes it slow, ``rotate_key()``
signs with a new ``kid``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, jsonify, redirect, render_template_string, request
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey

from sp_adapters.franceconnect.identities import IDENTITIES, Identity

MIN_STATE = 32
CODE_TTL = 60
TOKEN_TTL = 60
FAULTS = ("", "bad_signature", "expired", "wrong_aud", "wrong_iss", "wrong_nonce", "alg_none", "hs256",
          "unknown_kid", "userinfo_other_sub")


@dataclass
class ProviderConfig:
    issuer: str  # e.g. http://127.0.0.1:5004/api/v2 (the path prefix of every endpoint)
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...] = ()
    data_dir: str = "var/franceconnect"
    clock: Callable[[], float] = field(default=time.time)


class Provider:
    """Keys, codes, tokens and sessions of the double."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.codes: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, str] = {}
        self.interactions: dict[str, dict[str, str]] = {}
        self.ended: list[dict[str, str]] = []
        self.fault = ""
        self.delay_seconds = 0.0
        self.keys: list[ECKey] = [self._load_or_create_key()]

    def _load_or_create_key(self) -> ECKey:
        directory = Path(self.config.data_dir)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "signing-es256.pem"
        if path.exists():
            pem = path.read_bytes()
            kid = hashlib.sha256(pem).hexdigest()[:16]
            return ECKey.import_key(pem, {"kid": kid, "use": "sig", "alg": "ES256"})
        key = ECKey.generate_key("P-256", private=True)
        pem = key.as_pem(private=True)
        path.touch(mode=0o600)
        path.write_bytes(pem)
        return ECKey.import_key(pem, {"kid": hashlib.sha256(pem).hexdigest()[:16], "use": "sig", "alg": "ES256"})

    def rotate_key(self) -> str:
        """Sign with a new key from now on (both published); returns the new ``kid``."""
        key = ECKey.generate_key("P-256", private=True, parameters={"kid": secrets.token_hex(8), "use": "sig",
                                                                     "alg": "ES256"})
        with self.lock:
            self.keys.insert(0, key)
        return str(key.kid)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.as_dict(private=False) for k in self.keys]}

    def sign(self, claims: dict[str, Any], fault: str = "") -> str:
        key = self.keys[0]
        if fault == "bad_signature":
            key = ECKey.generate_key("P-256", private=True, parameters={"kid": str(key.kid)})
        elif fault == "unknown_kid":
            key = ECKey.generate_key("P-256", private=True, parameters={"kid": "inconnu-" + secrets.token_hex(4)})
        if fault == "alg_none":
            head = _b64(b'{"alg":"none","typ":"JWT"}')
            import json

            return f"{head}.{_b64(json.dumps(claims).encode())}."
        if fault == "hs256":
            secret = OctKey.import_key(self.config.client_secret.encode().ljust(32, b"x"))
            return jwt.encode({"alg": "HS256", "kid": self.keys[0].kid}, claims, secret)
        return jwt.encode({"alg": "ES256", "kid": key.kid, "typ": "JWT"}, claims, key)

    def sub_for(self, identity: Identity) -> str:
        """A per-client pseudonymous ``sub``, as FranceConnect issues."""
        digest = hashlib.sha256(f"{self.config.client_id}:{identity.key}".encode()).hexdigest()
        return digest + "v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


LOGIN_PAGE = """<!doctype html><html lang="fr"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>FranceConnect (test) – connexion</title>
<style>body{font-family:sans-serif;max-width:40rem;margin:1rem auto;padding:0 1rem}
button{display:block;width:100%;margin:.5rem 0;padding:.8rem;text-align:left;font-size:1rem}</style></head>
<body><header><p><strong>FranceConnect</strong> – fournisseur d'identité de test</p></header><main>
<h1>Choisissez une identité de test</h1>
<p>Ce service de développement remplace FranceConnect : aucune donnée réelle.</p>
<form method="post" action="{{ action }}">
<input type="hidden" name="interaction" value="{{ interaction }}">
{% for i in identities %}<button type="submit" name="identity" value="{{ i.key }}">{{ i.given_name }}
{{ i.family_name }}{% if i.preferred_username %} (nom d'usage {{ i.preferred_username }}){% endif %},
né(e) le {{ i.birthdate }}</button>{% endfor %}
<button type="submit" name="identity" value="">Annuler et revenir</button>
</form></main></body></html>"""

ERROR_PAGE = """<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Erreur</title></head><body><main>
<h1>Erreur de la demande</h1><p>{{ message }}</p></main></body></html>"""


def create_app(config: ProviderConfig) -> Flask:
    """The Flask application of the provider; ``app.extensions["franceconnect"]`` is its ``Provider``."""
    app = Flask(__name__)
    provider = Provider(config)
    app.extensions["franceconnect"] = provider
    prefix = urllib.parse.urlsplit(config.issuer).path.rstrip("/")
    by_key = {i.key: i for i in IDENTITIES}

    def error(message: str, status: int = 400) -> Response:
        return Response(render_template_string(ERROR_PAGE, message=message), status, mimetype="text/html")

    def back(redirect_uri: str, params: dict[str, str]) -> Response:
        joiner = "&" if "?" in redirect_uri else "?"
        return redirect(redirect_uri + joiner + urllib.parse.urlencode(params), 303)  # type: ignore[return-value]

    def slow() -> None:
        if provider.delay_seconds:
            time.sleep(provider.delay_seconds)

    @app.get(prefix + "/.well-known/openid-configuration")
    def discovery() -> Any:
        i = config.issuer
        return jsonify({"issuer": i, "authorization_endpoint": i + "/authorize", "token_endpoint": i + "/token",
                        "userinfo_endpoint": i + "/userinfo", "end_session_endpoint": i + "/session/end",
                        "jwks_uri": i + "/jwks", "id_token_signing_alg_values_supported": ["ES256", "RS256"],
                        "userinfo_signing_alg_values_supported": ["ES256", "RS256"],
                        "acr_values_supported": ["eidas1"], "response_types_supported": ["code"],
                        "authorization_response_iss_parameter_supported": True})

    @app.get(prefix + "/jwks")
    def jwks() -> Any:
        slow()
        return jsonify(provider.jwks())

    @app.get(prefix + "/authorize")
    def authorize() -> Any:
        args = request.args
        redirect_uri = args.get("redirect_uri", "")
        if args.get("client_id") != config.client_id or redirect_uri not in config.redirect_uris:
            return error("Client inconnu ou adresse de retour non enregistrée.")
        state, nonce = args.get("state", ""), args.get("nonce", "")
        if len(state) < MIN_STATE:
            return back(redirect_uri, {"error": "invalid_request", "error_description": "state too short",
                                       "state": state})
        if len(nonce) < MIN_STATE or args.get("response_type") != "code" \
                or "openid" not in args.get("scope", "").split() or args.get("acr_values", "") != "eidas1":
            return back(redirect_uri, {"error": "invalid_request", "state": state})
        interaction = secrets.token_urlsafe(16)
        with provider.lock:
            provider.interactions[interaction] = {"redirect_uri": redirect_uri, "state": state, "nonce": nonce,
                                                  "scope": args.get("scope", "")}
        return render_template_string(LOGIN_PAGE, identities=IDENTITIES, interaction=interaction,
                                      action=prefix + "/login")

    @app.post(prefix + "/login")
    def login() -> Any:
        with provider.lock:
            pending = provider.interactions.pop(request.form.get("interaction", ""), None)
        if pending is None:
            return error("Cette demande de connexion a expiré.")
        identity = by_key.get(request.form.get("identity", ""))
        if identity is None:
            return back(pending["redirect_uri"], {"error": "access_denied", "state": pending["state"],
                                                  "iss": config.issuer})
        code = secrets.token_urlsafe(32)
        sid = request.cookies.get("fc_session") or secrets.token_urlsafe(24)
        with provider.lock:
            provider.codes[code] = {**pending, "identity": identity.key, "at": config.clock(), "sid": sid}
            provider.sessions[sid] = identity.key
        answer = back(pending["redirect_uri"], {"code": code, "state": pending["state"], "iss": config.issuer})
        answer.set_cookie("fc_session", sid, httponly=True, samesite="Lax")
        return answer

    def client_ok() -> bool:
        auth = request.authorization
        cid, secret = (auth.username, auth.password) if auth else (request.form.get("client_id"),
                                                                   request.form.get("client_secret"))
        return cid == config.client_id and hmac.compare_digest(str(secret or ""), config.client_secret)

    @app.post(prefix + "/token")
    def token() -> Any:
        slow()
        if not client_ok():
            return jsonify({"error": "invalid_client"}), 401
        with provider.lock:
            grant = provider.codes.pop(request.form.get("code", ""), None)
        if request.form.get("grant_type") != "authorization_code" or grant is None \
                or config.clock() - grant["at"] > CODE_TTL or request.form.get("redirect_uri") != grant["redirect_uri"]:
            return jsonify({"error": "invalid_grant"}), 400
        identity = by_key[grant["identity"]]
        now = int(config.clock())
        fault = provider.fault
        claims = {"iss": config.issuer, "sub": provider.sub_for(identity), "aud": config.client_id,
                  "exp": now + TOKEN_TTL, "iat": now, "auth_time": now, "nonce": grant["nonce"], "acr": "eidas1",
                  "amr": ["pwd"], "sid": grant["sid"]}
        if fault == "expired":
            claims.update(iat=now - 600, exp=now - 300)
        elif fault == "wrong_aud":
            claims["aud"] = "un-autre-client"
        elif fault == "wrong_iss":
            claims["iss"] = "https://faux-fournisseur.example/api/v2"
        elif fault == "wrong_nonce":
            claims["nonce"] = secrets.token_urlsafe(32)
        access = secrets.token_urlsafe(32)
        with provider.lock:
            provider.tokens[access] = {"identity": identity.key, "scope": grant["scope"], "exp": now + TOKEN_TTL}
        return jsonify({"access_token": access, "token_type": "Bearer", "expires_in": TOKEN_TTL,
                        "id_token": provider.sign(claims, fault), "scope": grant["scope"]})

    @app.get(prefix + "/userinfo")
    def userinfo() -> Any:
        slow()
        header = request.headers.get("Authorization", "")
        with provider.lock:
            grant = provider.tokens.get(header[7:]) if header.startswith("Bearer ") else None
        if grant is None or grant["exp"] < config.clock():
            return jsonify({"error": "invalid_token"}), 401
        identity = by_key[grant["identity"]]
        scopes = grant["scope"].split()
        now = int(config.clock())
        claims: dict[str, Any] = {k: v for k, v in identity.claims().items() if k in scopes and v}
        sub = provider.sub_for(identity) if provider.fault != "userinfo_other_sub" else "autre" + "0" * 60
        claims.update(iss=config.issuer, aud=config.client_id, sub=sub, iat=now, exp=now + TOKEN_TTL)
        return Response(provider.sign(claims), 200, mimetype="application/jwt")

    @app.get(prefix + "/session/end")
    def session_end() -> Any:
        args = request.args
        hint, target, state = args.get("id_token_hint", ""), args.get("post_logout_redirect_uri", ""), args.get("state", "")
        try:
            decoded = jwt.decode(hint, KeySet(list(provider.keys)), algorithms=["ES256"])
        except Exception:  # noqa: BLE001 - any bad hint is a refused logout
            return error("id_token_hint invalide.")
        if decoded.claims.get("aud") != config.client_id or target not in config.post_logout_redirect_uris:
            return error("Adresse de retour non enregistrée.")
        sid = request.cookies.get("fc_session", "")
        with provider.lock:
            provider.sessions.pop(sid, None)
            provider.ended.append({"sub": str(decoded.claims.get("sub")), "state": state})
        answer = back(target, {"state": state} if state else {})
        answer.delete_cookie("fc_session")
        return answer

    @app.errorhandler(404)
    def not_found(_: Exception) -> Any:
        return error("Page inconnue.", 404)

    _ = abort
    return app
