"""The téléservices' OpenID Connect client, written with requests and PyJWT (not the provider's library):
discovery, authorization code flow with PKCE S256, state and nonce, client_secret_basic, the ID token
verified against the provider's JWKS (issuer, audience, expiry, nonce), userinfo, RP-initiated logout and
the back-channel logout token (OpenID Connect Back-Channel Logout 1.0 §2.6)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlencode

import jwt
import requests

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
ALGORITHMS = ["RS256", "ES256"]


class OidcFailure(Exception):
    """An answer of the provider this client refuses."""


class OidcClient:
    def __init__(self, issuer: str, client_id: str, client_secret: str, redirect_uri: str, scope: str) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id, self.client_secret = client_id, client_secret
        self.redirect_uri, self.scope = redirect_uri, scope
        self._discovery: dict[str, Any] | None = None
        self._jwks: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    def discovery(self) -> dict[str, Any]:
        with self._lock:
            if self._discovery is None:
                answer = requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=10)
                answer.raise_for_status()
                document = answer.json()
                if document.get("issuer") != self.issuer:
                    raise OidcFailure("issuer de la découverte différent de celui configuré")
                self._discovery = document
                self._jwks = jwt.PyJWKClient(document["jwks_uri"], cache_keys=True, lifespan=600)
            return self._discovery

    # --- login -------------------------------------------------------------------------------------------

    def start(self) -> tuple[str, dict[str, str]]:
        """The authorization URL and what to keep in the browser's session until the callback."""
        pending = {"state": secrets.token_urlsafe(32), "nonce": secrets.token_urlsafe(32),
                   "verifier": secrets.token_urlsafe(64)}
        challenge = base64.urlsafe_b64encode(hashlib.sha256(pending["verifier"].encode()).digest()).rstrip(b"=")
        query = urlencode({"response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
                           "scope": self.scope, "state": pending["state"], "nonce": pending["nonce"],
                           "code_challenge": challenge.decode(), "code_challenge_method": "S256"})
        return f"{self.discovery()['authorization_endpoint']}?{query}", pending

    def finish(self, args: dict[str, str], pending: dict[str, str] | None) -> tuple[dict[str, Any], str]:
        """Check the callback, exchange the code, verify the ID token; return (claims, raw ID token)."""
        if not pending or not hmac.compare_digest(args.get("state", ""), pending.get("state", "")):
            raise OidcFailure("state absent ou différent")
        if args.get("error"):
            raise OidcFailure(f"erreur du fournisseur : {args['error']}")
        if not args.get("code"):
            raise OidcFailure("code absent")
        meta = self.discovery()
        answer = requests.post(meta["token_endpoint"], timeout=10, auth=(self.client_id, self.client_secret),
                               data={"grant_type": "authorization_code", "code": args["code"],
                                     "redirect_uri": self.redirect_uri, "code_verifier": pending["verifier"]})
        if answer.status_code != 200:
            raise OidcFailure(f"échange du code refusé ({answer.status_code})")
        tokens = answer.json()
        if str(tokens.get("token_type", "")).lower() != "bearer" or "id_token" not in tokens:
            raise OidcFailure("réponse du point de jeton incomplète")
        claims = self.verify(tokens["id_token"])
        if not hmac.compare_digest(str(claims.get("nonce", "")), pending["nonce"]):
            raise OidcFailure("nonce différent")
        info = requests.get(meta["userinfo_endpoint"], timeout=10,
                            headers={"Authorization": f"Bearer {tokens['access_token']}"})
        if info.status_code != 200:
            raise OidcFailure(f"userinfo refusé ({info.status_code})")
        userinfo = info.json()
        if userinfo.get("sub") != claims["sub"]:
            raise OidcFailure("sub de userinfo différent de celui du jeton d'identité")
        return {**userinfo, **claims}, tokens["id_token"]

    def verify(self, token: str, *, logout: bool = False) -> dict[str, Any]:
        """Signature against the provider's JWKS, issuer, audience, expiry (and ``iat``)."""
        self.discovery()
        assert self._jwks is not None
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(token, key.key, algorithms=ALGORITHMS, audience=self.client_id,
                                                issuer=self.issuer, leeway=30,
                                                options={"require": ["iss", "aud", "iat", "exp"]
                                                         + ([] if logout else ["sub"])})
        except (jwt.PyJWTError, jwt.PyJWKClientError) as exc:
            raise OidcFailure(f"jeton refusé : {type(exc).__name__}") from exc
        return claims

    def verify_logout_token(self, token: str) -> dict[str, Any]:
        """A back-channel logout token: signed, ours, with the logout event, ``sid`` or ``sub``, no nonce."""
        claims = self.verify(token, logout=True)
        events = claims.get("events")
        if not isinstance(events, dict) or BACKCHANNEL_EVENT not in events:
            raise OidcFailure("événement de déconnexion absent")
        if "nonce" in claims or not (claims.get("sid") or claims.get("sub")):
            raise OidcFailure("jeton de déconnexion mal formé")
        if not isinstance(claims.get("jti"), str) or not claims["jti"] or len(claims["jti"]) > 200:
            raise OidcFailure("jeton de déconnexion sans jti")
        if claims["iat"] < time.time() - 600:
            raise OidcFailure("jeton de déconnexion trop ancien")
        return claims

    def logout_url(self, id_token: str, post_logout_redirect_uri: str) -> str:
        """RP-initiated logout at the provider's ``end_session_endpoint``."""
        query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": post_logout_redirect_uri,
                           "client_id": self.client_id, "state": secrets.token_urlsafe(16)})
        return f"{self.discovery()['end_session_endpoint']}?{query}"
