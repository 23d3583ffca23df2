"""The journeys of a September morning, as a browser and a service provider make them (requests, no SP process).

- SSO login (a person with an SSO session opens a service): SAML — ``/saml/init`` answers a signed assertion
  for the demo ENT; CAS — ``/cas/login`` gives a ticket, Pronote's back channel validates it
  (``/cas/p3/serviceValidate``); OIDC — ``/oidc/authorize`` gives a code, the téléservices redeem it
  (``/oidc/token``, client_secret_basic).
- Password login: the form, then identifier and password (argon2id with the default parameters).
- SMS activation: name and mobile → the code read from the outbox table (the phone) → the child's birth date →
  the password (an argon2id hash) → the success page.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import psycopg
import requests

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ACTION = re.compile(r'<form method="post" action="([^"]+)"')
CODE = re.compile(r"est ([2-9A-HJKMNP-Z]{6})")
NEW_PASSWORD = "Cartable-Matin-2026!"  # noqa: S105 - benchmark accounts only


@dataclass(frozen=True)
class Target:
    """What the journeys need to know about the topology under test."""

    base: str
    database_url: str
    ent_entity_id: str
    cas_service: str
    oidc_client: str
    oidc_secret: str
    oidc_redirect: str
    account: str
    password: str


class Failed(Exception):
    """A journey got an unexpected answer."""


def _csrf(text: str) -> str:
    found = CSRF.search(text)
    if not found:
        raise Failed("no CSRF token")
    return found.group(1)


def password_login(t: Target, browser: requests.Session) -> None:
    """The login form, then the password: 303 to « Mes services »."""
    page = browser.get(f"{t.base}/login?profil=parent", timeout=30)
    action = ACTION.search(page.text)
    url = t.base + (action.group(1).replace("&amp;", "&") if action else "/login?profil=parent")
    answer = browser.post(url, data={"identifiant": t.account, "mot_de_passe": t.password,
                                     "csrf_token": _csrf(page.text)}, allow_redirects=False, timeout=30)
    if answer.status_code != 303:
        raise Failed(f"password login answered {answer.status_code}")


def sso_saml(t: Target, browser: requests.Session) -> None:
    """IdP-initiated SSO to the ENT from the live session: the page posting the signed response."""
    answer = browser.get(f"{t.base}/saml/init", params={"sp": t.ent_entity_id}, timeout=30)
    if answer.status_code != 200 or "SAMLResponse" not in answer.text:
        raise Failed(f"SAML SSO answered {answer.status_code}")


def sso_cas(t: Target, browser: requests.Session) -> None:
    """A service ticket from the session, then its validation on the back channel."""
    answer = browser.get(f"{t.base}/cas/login", params={"service": t.cas_service}, allow_redirects=False, timeout=30)
    location = answer.headers.get("Location", "")
    ticket = parse_qs(urlsplit(location).query).get("ticket", [""])[0]
    if not ticket:
        raise Failed(f"CAS login answered {answer.status_code}")
    valid = requests.get(f"{t.base}/cas/p3/serviceValidate", params={"service": t.cas_service, "ticket": ticket},
                         timeout=30)
    if "<cas:authenticationSuccess>" not in valid.text:
        raise Failed("CAS validation refused")


def sso_oidc(t: Target, browser: requests.Session) -> None:
    """An authorization code from the session (PKCE S256), then the token request."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    answer = browser.get(f"{t.base}/oidc/authorize", allow_redirects=False, timeout=30, params={
        "response_type": "code", "client_id": t.oidc_client, "redirect_uri": t.oidc_redirect,
        "scope": "openid profile", "state": secrets.token_urlsafe(12), "nonce": secrets.token_urlsafe(12),
        "code_challenge": challenge, "code_challenge_method": "S256"})
    code = parse_qs(urlsplit(answer.headers.get("Location", "")).query).get("code", [""])[0]
    if not code:
        raise Failed(f"OIDC authorize answered {answer.status_code}")
    token = requests.post(f"{t.base}/oidc/token", auth=(t.oidc_client, t.oidc_secret), timeout=30, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": t.oidc_redirect,
        "code_verifier": verifier})
    if token.status_code != 200:
        raise Failed(f"OIDC token answered {token.status_code}")


class Phone:
    """Reads SMS codes from the outbox table, as the parents' phones receive them."""

    def __init__(self, url: str) -> None:
        self._conn = psycopg.connect(url, autocommit=True)

    def code_for(self, number: str, timeout: float = 30) -> str:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            row = self._conn.execute("SELECT body FROM outbox_messages WHERE recipient = %s ORDER BY id DESC LIMIT 1",
                                     (number,)).fetchone()
            if row and (found := CODE.search(row[0])):
                return found.group(1)
            time.sleep(0.02)
        raise Failed(f"no SMS for {number}")


def _post(browser: requests.Session, url: str, data: dict[str, str]) -> requests.Response:
    page = browser.get(url, timeout=30)
    return browser.post(url, data={**data, "csrf_token": _csrf(page.text)}, allow_redirects=False, timeout=30)


def activation(t: Target, phone: Phone, parent: tuple[str, str, str, str]) -> None:
    """One parent's activation by SMS in a new browser (family name, given name, mobile, child's birth date)."""
    family, given, mobile, born = parent
    with requests.Session() as browser:
        started = _post(browser, f"{t.base}/creer-mon-compte", {"nom": family, "prenom": given, "telephone": mobile})
        if started.status_code != 303:
            raise Failed(f"activation start answered {started.status_code}")
        code = phone.code_for(mobile)
        checked = _post(browser, f"{t.base}/creer-mon-compte/code", {"code": code})
        if checked.headers.get("Location") != "/creer-mon-compte/eleves":
            raise Failed(f"code answered {checked.status_code}")
        year, month, day = born.split("-")
        kids = _post(browser, f"{t.base}/creer-mon-compte/eleves", {
            "lien_0": "oui", "naissance_0_jour": day, "naissance_0_mois": month, "naissance_0_annee": year})
        if kids.headers.get("Location") != "/creer-mon-compte/mot-de-passe":
            raise Failed(f"children answered {kids.status_code}")
        done = _post(browser, f"{t.base}/creer-mon-compte/mot-de-passe",
                     {"mot_de_passe": NEW_PASSWORD, "confirmation": NEW_PASSWORD})
        if done.status_code != 303:
            raise Failed(f"password answered {done.status_code}")
