"""Registering OIDC clients (what ``idp oidc add`` and friends call): checks, hashed secrets, "Mes services".

A client secret is 256 random bits, shown once and stored as its SHA-256 (SECURITY O08, Defaults "Secret
storage"). Redirect URIs (and logout, back-channel and JWKS URIs) go through the one URL-safety parse and
transport rule of ``idp.core.urls`` (no dot-segment, no encoded slash; ``https``, ``http`` only on a loopback
host, RFC 8252 §7.3, or in development: SECURITY C15, S29, the rule of CAS services and SAML endpoints too),
have no fragment, and are later compared byte for byte.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from idp.core import urls
from idp.errors import IdpError
from idp.oidc.claims import RESTRICTED_SCOPES, SCOPES
from idp.oidc.jose import JwtRejected, import_client_keys
from idp.storage.oidc_store import ClientRecord, SqlOidcStore, digest
from idp.storage.uow import SqlUnitOfWork

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
DEFAULT_SCOPES = ("openid", "profile", "email", "fr_edu")
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class ClientRejected(IdpError):
    """A client registration is refused; the description names the problem in French."""

    code = "oidc_client_rejected"


@dataclass(frozen=True)
class ClientSpec:
    """What an operator gives to register a client."""

    name: str
    redirect_uris: tuple[str, ...]
    client_id: str = ""
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    auth_method: str = "client_secret_basic"
    jwks: str = ""
    jwks_uri: str = ""
    subject_type: str = "pairwise"
    sector_identifier: str = ""
    refresh_tokens: bool = False
    first_party: bool = False
    post_logout_redirect_uris: tuple[str, ...] = ()
    backchannel_logout_uri: str = ""
    id_token_alg: str = "RS256"
    home_url: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def check_uri(uri: str, what: str, *, development: bool = False) -> str:
    """An absolute https URI without fragment (http only on loopback, or in development); returned unchanged."""
    try:
        url = urls.parse_url(uri)
    except urls.UnsafeUrl as exc:
        raise ClientRejected(f"{what} invalide : {uri!r} ({exc} ; adresse https absolue sans fragment attendue)") \
            from None
    if url.fragment or "#" in uri:
        raise ClientRejected(f"{what} invalide : {uri!r} (adresse https absolue sans fragment attendue)")
    if not urls.transport_allowed(url, development=development):
        raise ClientRejected(f"{what} invalide : {uri!r} (http n'est accepté que pour 127.0.0.1 ou localhost "
                             "hors mode développement)")
    if "*" in uri or any(c.isspace() for c in uri) or len(uri) > 400:
        raise ClientRejected(f"{what} invalide : {uri!r}")
    return uri


def _check(spec: ClientSpec, development: bool) -> tuple[str, ...]:
    if not spec.name.strip():
        raise ClientRejected("le nom du client est obligatoire")
    if spec.client_id and not CLIENT_ID_RE.match(spec.client_id):
        raise ClientRejected("identifiant de client invalide (lettres, chiffres, . _ -, 64 au plus)")
    if not spec.redirect_uris:
        raise ClientRejected("au moins une redirect_uri est obligatoire")
    for uri in spec.redirect_uris:
        check_uri(uri, "redirect_uri", development=development)
    for uri in spec.post_logout_redirect_uris:
        check_uri(uri, "post_logout_redirect_uri", development=development)
    if spec.backchannel_logout_uri:
        check_uri(spec.backchannel_logout_uri, "backchannel_logout_uri", development=development)
    if spec.auth_method not in AUTH_METHODS:
        raise ClientRejected(f"méthode d'authentification inconnue : {spec.auth_method}")
    if spec.auth_method == "private_key_jwt":
        if not (spec.jwks or spec.jwks_uri):
            raise ClientRejected("private_key_jwt demande un JWKS (--jwks) ou une URL de JWKS (--jwks-uri)")
        if spec.jwks:
            try:
                import_client_keys(spec.jwks)
            except JwtRejected as exc:
                raise ClientRejected(str(exc)) from exc
        if spec.jwks_uri:
            check_uri(spec.jwks_uri, "jwks_uri", development=development)
    if spec.id_token_alg not in ("RS256", "ES256"):
        raise ClientRejected("algorithme des jetons d'identité : RS256 ou ES256")
    if spec.subject_type not in ("public", "pairwise"):
        raise ClientRejected("type de sujet : public ou pairwise")
    hosts = {urlsplit(u).hostname for u in spec.redirect_uris}
    if spec.subject_type == "pairwise" and not spec.sector_identifier and len(hosts) > 1:
        raise ClientRejected("redirect_uri sur plusieurs hôtes : donnez un identifiant de secteur (--sector)")
    unknown = [s for s in spec.scopes if s not in SCOPES]
    if unknown:
        raise ClientRejected(f"scope inconnu : {unknown[0]} (connus : {', '.join(SCOPES)})")
    return tuple(dict.fromkeys(("openid", *spec.scopes)))


def register(uow: SqlUnitOfWork, spec: ClientSpec, now: dt.datetime, *,
             development: bool = False) -> tuple[ClientRecord, str]:
    """Register a client; return it with its secret in clear (shown once; empty for public/JWT clients).

    ``development`` is ``[server] development`` (http then allowed on any host, ``idp.core.urls``)."""
    scopes = _check(spec, development)
    store = SqlOidcStore(uow.session)
    client_id = spec.client_id or secrets.token_urlsafe(18)
    if store.client(client_id) is not None:
        raise ClientRejected(f"un client {client_id} existe déjà")
    secret = secrets.token_urlsafe(32) if spec.auth_method.startswith("client_secret") else ""
    record = ClientRecord(
        client_id=client_id, name=spec.name.strip(), auth_method=spec.auth_method,
        redirect_uris=tuple(spec.redirect_uris), scopes=scopes,
        post_logout_redirect_uris=tuple(spec.post_logout_redirect_uris), jwks=spec.jwks, jwks_uri=spec.jwks_uri,
        subject_type=spec.subject_type, sector_identifier=spec.sector_identifier,
        refresh_tokens=spec.refresh_tokens, first_party=spec.first_party,
        backchannel_logout_uri=spec.backchannel_logout_uri, id_token_alg=spec.id_token_alg,
    )
    store.add_client(record, digest(secret) if secret else "", now, home_url=spec.home_url)
    return record, secret


def rotate_secret(uow: SqlUnitOfWork, client_id: str, now: dt.datetime) -> str:
    """Replace a client's secret; the old one stops working at once. Returns the new one (shown once)."""
    store = SqlOidcStore(uow.session)
    client = store.client(client_id)
    if client is None:
        raise ClientRejected(f"client inconnu : {client_id}")
    if not client.auth_method.startswith("client_secret"):
        raise ClientRejected(f"le client {client_id} n'utilise pas de secret ({client.auth_method})")
    secret = secrets.token_urlsafe(32)
    store.set_secret(client_id, digest(secret), now)
    return secret


def restricted(scopes: tuple[str, ...]) -> list[str]:
    """Scopes that only clients allowed them explicitly receive (shown by ``idp oidc show``)."""
    return [s for s in scopes if s in RESTRICTED_SCOPES]
