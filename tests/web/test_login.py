"""The common login through the Flask test client: profile choice, password, session, throttling, logout."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from conftest import DEFAULT_PASSWORD, AccountFactory, LoginHelper, csrf_from, form_url_of, stored_login_url
from flask.testing import FlaskClient

from idp.core.accounts.model import AccountState, Profile
from idp.core.clock import FrozenClock
from idp.storage.activation_store import SqlOutbox
from idp.wiring import Services

GENERIC = "Identifiant ou mot de passe incorrect."


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_profile_choice_then_form_with_the_seeds_links(client: FlaskClient) -> None:
    choice = client.get("/login")  # the screen at once, no redirect
    page = text_of(choice)
    assert choice.status_code == 200
    assert 'lang="fr"' in page
    assert "Représentant légal" in page and "Élève" in page
    form = client.get(form_url_of(choice) + "?profil=parent")
    page_html = text_of(form)
    for link_text in ("Identifiant oublié ?", "Mot de passe oublié ?", "Je n'ai pas de compte",
                      "S'identifier avec", '<span class="fr-connect__brand">FranceConnect</span>', "Aide",
                      "Mentions légales", "Accessibilité"):
        assert link_text in page_html, link_text
    assert '<label class="fr-label" for="identifiant">' in page_html and 'id="identifiant"' in page_html
    assert '<label class="fr-label" for="mot_de_passe">' in page_html and 'id="mot_de_passe"' in page_html
    assert "p.nomXX" in page_html
    # The design system's script (a file from 'self') only improves the page; no inline script.
    assert re.findall(r"<script[^>]*>", page_html) == [
        '<script type="module" src="/static/dsfr/dsfr.module.min.js">']


def test_every_login_link_leads_to_a_real_page(client: FlaskClient) -> None:
    form = text_of(client.get("/login?profil=parent"))
    links = {html.unescape(link) for link in re.findall(r'href="(/[^"]+)"', form)
             if not link.startswith("/static/") and not re.fullmatch(r"/login/[^/?]+(\?.*)?", link)}
    assert len(links) >= 7, links
    for link in links:
        response = client.get(link, follow_redirects=True)
        assert response.status_code == 200, link
        assert 'lang="fr"' in text_of(response)


def test_successful_login_lands_on_mes_services(client: FlaskClient, login: LoginHelper,
                                                account_factory: AccountFactory) -> None:
    account = account_factory("Marie", "Dupont")
    response = login(account.identifier)
    # The portal needs nothing from a resume step: the login completes its request and goes straight on.
    assert response.status_code == 303 and response.headers["Location"] == "/services"
    services = client.get("/services")
    assert services.status_code == 200
    assert "Marie Dupont" in text_of(services) and account.identifier in text_of(services)


def test_identifier_is_case_and_space_insensitive(client: FlaskClient, login: LoginHelper,
                                                  account_factory: AccountFactory) -> None:
    account = account_factory()
    response = login(f"  {account.identifier.upper()} ")
    assert response.status_code == 303


def test_sso_cookie_flags(client: FlaskClient, login: LoginHelper, account_factory: AccountFactory) -> None:
    account = account_factory()
    response = login(account.identifier)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("__Host-sso="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Domain" not in cookie and "Expires" not in cookie and "Max-Age" not in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    assert len(value) >= 43  # 256 bits


def test_unknown_identifier_and_wrong_password_answer_the_same(client: FlaskClient, login: LoginHelper,
                                                               account_factory: AccountFactory) -> None:
    account = account_factory()
    wrong = login(account.identifier, "Pas-Le-Bon-1!")
    unknown = login("z.inconnu99", "Pas-Le-Bon-1!")
    assert wrong.status_code == unknown.status_code == 200
    assert GENERIC in text_of(wrong) and GENERIC in text_of(unknown)
    strip = lambda page: re.sub(r'value="[^"]*"|/login/[^"?]+', "", page)  # noqa: E731
    assert strip(text_of(wrong)) == strip(text_of(unknown))
    assert "Set-Cookie" not in wrong.headers or "sso" not in wrong.headers.get("Set-Cookie", "")


@pytest.mark.parametrize("form", [{}, {"csrf_token": "forged"}])
def test_login_without_valid_csrf_token_is_refused(client: FlaskClient, login: LoginHelper,
                                                   account_factory: AccountFactory, form: dict[str, str]) -> None:
    account = account_factory()
    url = login.start()
    client.get(url)
    response = client.post(url, data={"identifiant": account.identifier, "mot_de_passe": DEFAULT_PASSWORD, **form})
    assert response.status_code == 400
    assert "La page a expiré" in text_of(response)
    assert "sso" not in response.headers.get("Set-Cookie", "")


def test_tampered_browser_cookie_is_discarded(client: FlaskClient, login: LoginHelper,
                                              account_factory: AccountFactory) -> None:
    account = account_factory()
    url = login.start()
    token = csrf_from(text_of(client.get(url)))
    cookie = client.get_cookie("__Host-browser")
    assert cookie is not None and cookie.http_only and cookie.secure
    assert client.get_cookie("__Host-session") is None  # the login route never needs Flask's session cookie
    client.set_cookie("__Host-browser", cookie.value[:-4] + "AAAA", path="/")
    response = client.post(url, data={"identifiant": account.identifier, "mot_de_passe": DEFAULT_PASSWORD,
                                      "csrf_token": token})
    assert response.status_code == 400
    assert "<html" in text_of(response) and "Traceback" not in text_of(response)


def test_oversized_fields_and_bodies(client: FlaskClient, login: LoginHelper) -> None:
    url = login.start()
    token = csrf_from(text_of(client.get(url)))
    long_id = client.post(url, data={"identifiant": "a" * 65, "mot_de_passe": "x", "csrf_token": token})
    assert long_id.status_code == 400 and "trop long" in text_of(long_id)
    long_pw = client.post(url, data={"identifiant": "m.dupont1", "mot_de_passe": "x" * 1025, "csrf_token": token})
    assert long_pw.status_code == 400 and "trop long" in text_of(long_pw)
    huge = client.post(url, data={"identifiant": "m.dupont1", "mot_de_passe": "x" * 70000, "csrf_token": token})
    assert huge.status_code == 413
    assert "trop volumineuses" in text_of(huge)


def test_progressive_lock_then_success_after_the_wait(client: FlaskClient, login: LoginHelper,
                                                      account_factory: AccountFactory, clock: FrozenClock) -> None:
    account = account_factory()
    for left in (4, 3, 2):
        page = text_of(login(account.identifier, "Mauvais-Mot-2!"))
        assert GENERIC in page and f"Il vous reste {left} essais avant que la connexion soit suspendue" in page
    assert "encore 1 essai incorrect" in text_of(login(account.identifier, "Mauvais-Mot-2!"))
    fifth = login(account.identifier, "Mauvais-Mot-2!")  # the failure that starts the lock says so at once
    assert fifth.status_code == 429 and 0 < int(fifth.headers["Retry-After"]) <= 61
    page = text_of(fifth)
    assert "Connexion suspendue quelques minutes" in page and "pendant 1 min" in page
    assert "Mot de passe oublié ?" in page and 'action="/login?profil=parent"' in page  # a way out, same form
    assert "Code de l" not in page  # an ordinary event, not an incident
    locked = login(account.identifier)  # right password, but locked for a minute
    assert locked.status_code == 429 and "Connexion suspendue" in text_of(locked)
    assert 0 < int(locked.headers["Retry-After"]) <= 61
    clock.advance(seconds=61)
    sixth = login(account.identifier, "Mauvais-Mot-2!")  # 6th failure: 2 minutes
    assert sixth.status_code == 429 and "pendant 2 min" in text_of(sixth)
    second = login(account.identifier)
    assert second.status_code == 429 and 60 < int(second.headers["Retry-After"]) <= 121
    clock.advance(seconds=121)
    assert login(account.identifier).status_code == 303
    client.delete_cookie("__Host-sso", path="/")
    # A success clears the counter: five new failures are needed to lock again.
    for _ in range(4):
        login(account.identifier, "Mauvais-Mot-2!")
    assert login(account.identifier).status_code == 303


def test_lock_never_exceeds_fifteen_minutes(client: FlaskClient, login: LoginHelper,
                                            account_factory: AccountFactory, clock: FrozenClock) -> None:
    account = account_factory()
    for _ in range(12):
        login(account.identifier, "Mauvais-Mot-2!")
        clock.advance(minutes=16)
    login(account.identifier, "Mauvais-Mot-2!")
    locked = login(account.identifier)
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) <= 901
    clock.advance(minutes=15, seconds=1)
    assert login(account.identifier).status_code == 303


def test_unknown_identifier_is_throttled_like_a_known_one(client: FlaskClient, login: LoginHelper) -> None:
    answers = [login("z.personne1", "Mauvais-Mot-2!") for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 4 + [429] * 2
    assert "Il vous reste 4 essais" in text_of(answers[0])  # the same counts as for a real account


def test_many_failures_from_one_address_are_refused(client: FlaskClient, login: LoginHelper,
                                                    account_factory: AccountFactory) -> None:
    account = account_factory()
    for number in range(30):
        login(f"z.inconnu{number}", "Mauvais-Mot-2!")
    refused = login(account.identifier)
    assert refused.status_code == 429
    other = client.application.test_client()
    other.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    assert LoginHelper(other)(account.identifier).status_code == 303


@pytest.mark.parametrize("stored", [False, True], ids=["portal", "stored-request"])
def test_a_new_session_id_at_login_and_the_old_one_dies(client: FlaskClient, login: LoginHelper, services: Services,
                                                        account_factory: AccountFactory, stored: bool) -> None:
    account = account_factory()
    # Two login forms opened before the first login; the second is sent after it.
    urls = [stored_login_url(client, services) if stored else login.start() for _ in range(2)]
    tokens = [csrf_from(text_of(client.get(url))) for url in urls]
    form = {"identifiant": account.identifier, "mot_de_passe": DEFAULT_PASSWORD}
    assert client.post(urls[0], data={**form, "csrf_token": tokens[0]}).status_code == 303
    old = client.get_cookie("__Host-sso").value
    assert client.post(urls[1], data={**form, "csrf_token": tokens[1]}).status_code == 303
    new = client.get_cookie("__Host-sso").value
    assert new != old
    client.set_cookie("__Host-sso", old, path="/", secure=True)
    assert client.get("/services").status_code == 303  # old session ended at the second login


def test_attacker_planted_cookie_is_not_adopted(client: FlaskClient, login: LoginHelper,
                                                account_factory: AccountFactory) -> None:
    account = account_factory()
    client.set_cookie("__Host-sso", "planted-by-attacker-" + "x" * 30, path="/", secure=True)
    login(account.identifier)
    assert client.get_cookie("__Host-sso").value != "planted-by-attacker-" + "x" * 30


def test_idle_timeout(client: FlaskClient, login: LoginHelper, account_factory: AccountFactory,
                      clock: FrozenClock) -> None:
    account = account_factory()
    client.get(login(account.identifier).headers["Location"])
    clock.advance(minutes=29)
    assert client.get("/services").status_code == 200
    clock.advance(minutes=29)
    assert client.get("/services").status_code == 200  # activity refreshed the idle timer
    clock.advance(minutes=31)
    assert client.get("/services").status_code == 303


def test_absolute_timeout(client: FlaskClient, login: LoginHelper, account_factory: AccountFactory,
                          clock: FrozenClock) -> None:
    account = account_factory()
    client.get(login(account.identifier).headers["Location"])
    for _ in range(33):
        clock.advance(minutes=18)
        assert client.get("/services").status_code == 200
    clock.advance(minutes=18)  # 10 h 12 after login
    assert client.get("/services").status_code == 303


def test_logout_needs_a_confirmed_post_and_kills_the_session(client: FlaskClient, login: LoginHelper,
                                                             account_factory: AccountFactory) -> None:
    account = account_factory()
    client.get(login(account.identifier).headers["Location"])
    old = client.get_cookie("__Host-sso").value
    confirm = client.get("/logout")
    assert confirm.status_code == 200 and "Me déconnecter" in text_of(confirm)
    assert client.post("/logout", data={}).status_code == 400
    done = client.post("/logout", data={"csrf_token": csrf_from(text_of(confirm))})
    assert done.status_code == 200 and "Vous êtes déconnecté" in text_of(done)
    client.set_cookie("__Host-sso", old, path="/", secure=True)
    assert client.get("/services").status_code == 303


def test_authn_request_is_bound_to_its_browser(client: FlaskClient, services: Services, app,
                                               account_factory: AccountFactory) -> None:
    account = account_factory()
    url = stored_login_url(client, services)
    assert client.get(url).status_code == 200
    other = app.test_client()
    response = other.get(url)
    assert response.status_code == 400
    assert "a expiré" in text_of(response)
    # Nor can another browser post to it, even with its own valid CSRF token.
    token = csrf_from(text_of(other.get("/login?profil=parent")))
    posted = other.post(url, data={"identifiant": account.identifier, "mot_de_passe": DEFAULT_PASSWORD,
                                   "csrf_token": token})
    assert posted.status_code == 400 and "sso" not in posted.headers.get("Set-Cookie", "")


def test_authn_request_expires(client: FlaskClient, services: Services, clock: FrozenClock) -> None:
    url = stored_login_url(client, services)
    clock.advance(minutes=61)
    assert client.get(url).status_code == 400


def test_the_portal_stores_no_request(client: FlaskClient, login: LoginHelper, services: Services,
                                      account_factory: AccountFactory) -> None:
    from sqlalchemy import func, select

    from idp.storage.models import AuditEventRow, AuthnRequestRow

    account = account_factory()
    page = client.get("/login?profil=parent")
    assert page.status_code == 200 and form_url_of(page) == "/login?profil=parent"
    assert 'href="/identifiant-oublie?depuis=/login"' in text_of(page)
    # The screen is rendered once per process; each browser still gets its own token, and only its own works.
    other = client.application.test_client()
    other_token = csrf_from(text_of(other.get("/login?profil=parent")))
    assert other_token != csrf_from(text_of(page)) and "csrf-token-slot" not in text_of(page)
    stolen = client.post("/login?profil=parent", data={"identifiant": account.identifier,
                                                       "mot_de_passe": DEFAULT_PASSWORD, "csrf_token": other_token})
    assert stolen.status_code == 400
    hinted = text_of(client.get(f"/login?profil=parent&login_hint={account.identifier}"))
    assert f'value="{account.identifier}"' in hinted and f'value="{account.identifier}"' not in text_of(page)
    old = login(account.identifier).headers["Location"]
    assert old == "/services" and client.get("/services").status_code == 200
    first = client.get_cookie("__Host-sso").value
    client.get("/logout")
    # A second login from the same browser still rotates the session (W01) and audits each success.
    client.delete_cookie("__Host-sso", path="/")
    client.set_cookie("__Host-sso", first, path="/", secure=True)
    client.post("/logout", data={"csrf_token": csrf_from(text_of(client.get("/logout")))})
    assert login(account.identifier).status_code == 303
    assert client.get_cookie("__Host-sso").value != first
    with services.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(AuthnRequestRow)) == 0
        events = uow.session.scalars(select(AuditEventRow.event).order_by(AuditEventRow.id)).all()
    assert events.count("login.success") == 2


def test_resume_is_single_use(client: FlaskClient, login: LoginHelper, services: Services,
                              account_factory: AccountFactory) -> None:
    account = account_factory()
    url = stored_login_url(client, services)
    request_id = url.split("/login/")[1].split("?")[0]
    assert login.submit(url, account.identifier, DEFAULT_PASSWORD).headers["Location"] == "/services"
    # Completed by the login itself: its resume URL answers nothing more.
    assert client.get(f"/portal/resume/{request_id}").status_code == 400


def test_existing_session_skips_the_form(client: FlaskClient, login: LoginHelper,
                                         account_factory: AccountFactory) -> None:
    account = account_factory()
    client.get(login(account.identifier).headers["Location"])
    again = client.get("/login")
    assert again.status_code == 303 and again.headers["Location"] == "/services"


@pytest.mark.parametrize("state", [AccountState.LOCKED, AccountState.CLOSED])
def test_locked_or_closed_account(client: FlaskClient, login: LoginHelper, account_factory: AccountFactory,
                                  state: AccountState) -> None:
    account = account_factory(state=state)
    assert GENERIC in text_of(login(account.identifier, "Mauvais-Mot-2!"))
    right = login(account.identifier)
    assert right.status_code == 403
    assert "Contactez votre établissement" in text_of(right)


def test_provisional_credentials_open_nothing_but_activation(client: FlaskClient, login: LoginHelper,
                                                             account_factory: AccountFactory) -> None:
    account = account_factory("Noé", "Moulin", profile=Profile.STUDENT, state=AccountState.PROVISIONAL)
    response = login(account.identifier, path="/login?profil=eleve")
    assert response.status_code == 303 and response.headers["Location"].startswith("/activation/")
    assert client.get("/services").headers["Location"] == "/activation"


def test_rehash_when_parameters_change(client: FlaskClient, login: LoginHelper, account_factory: AccountFactory,
                                       services) -> None:
    from idp.core.passwords.hashing import HashParameters, PasswordHasher

    old_hasher = PasswordHasher(HashParameters(time_cost=1, memory_kib=512, parallelism=1))
    account = account_factory()
    with services.uow() as uow:
        uow.accounts.set_password_hash(account.id, old_hasher.hash(DEFAULT_PASSWORD), services.clock.now(),
                                       changed=False)
        uow.commit()
    assert login(account.identifier).status_code == 303
    with services.uow() as uow:
        stored = uow.accounts.get(account.id).password_hash
    assert "m=1024" in stored and not services.hasher.needs_rehash(stored)


def test_security_headers_on_pages(client: FlaskClient) -> None:
    response = client.get("/login")
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert headers["Cache-Control"] == "no-store"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"


def test_unknown_page_is_a_french_404(client: FlaskClient) -> None:
    response = client.get("/nulle-part")
    assert response.status_code == 404 and "Cette page n'existe pas" in text_of(response)


def test_healthz(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok", "database": "up"}


def test_a_lockout_sends_one_notice_per_lock(client: FlaskClient, login: LoginHelper, services: Services,
                                             account_factory: AccountFactory, clock: FrozenClock) -> None:
    """SECURITY A22: the holder hears about a lockout, once per lockout window, never about mere failures."""
    services.delivery.background = False  # delivered on demand by outbox(), no thread racing the reads
    account = account_factory()
    with services.uow() as uow:
        uow.accounts.set_email(account.id, "marie.dupont@example.fr", clock.now())
        uow.commit()
    for _ in range(4):
        login(account.identifier, "Mauvais-Mot-2!")
    assert outbox(services, "marie.dupont@example.fr") == []  # failures alone send nothing
    login(account.identifier, "Mauvais-Mot-2!")  # the fifth failure starts the lock
    notices = outbox(services, "marie.dupont@example.fr")
    assert len(notices) == 1 and "tentatives de connexion échouées" in notices[0]["body"]
    assert account.identifier in notices[0]["body"] and "Mauvais-Mot" not in notices[0]["body"]
    for _ in range(3):  # during the lock: refused, no new notice
        assert login(account.identifier, "Mauvais-Mot-2!").status_code == 429
    assert len(outbox(services, "marie.dupont@example.fr")) == 1
    clock.advance(seconds=61)
    login(account.identifier, "Mauvais-Mot-2!")  # a new lockout window: a new notice
    assert len(outbox(services, "marie.dupont@example.fr")) == 2


def test_a_lockout_of_an_account_without_contact_sends_nothing(login: LoginHelper, services: Services,
                                                                account_factory: AccountFactory) -> None:
    services.delivery.background = False
    account = account_factory()
    for _ in range(6):
        login(account.identifier, "Mauvais-Mot-2!")
    assert outbox(services) == []


def outbox(services: Services, to: str = "") -> list[dict[str, Any]]:
    """Deliver what is queued, then read the development outbox."""
    services.delivery.run_pending()
    return SqlOutbox(services.db.sessionmaker).messages(to=to)


def test_stored_request_screens_are_rendered_once_with_each_requests_id_and_service(
        client: FlaskClient, services: Services) -> None:
    from idp.core.authn.flow import Client
    from idp.web.security import browser_cookie_name

    client.get("/login")  # the browser cookie
    bid = client.get_cookie(browser_cookie_name(services.settings)).value
    ent = Client(protocol="saml", client_id="https://ent.example/sp", name="ENT <Occitanie> & Co")
    first = services.flow.begin(ent, {}, bid, None)
    second = services.flow.begin(ent, {}, bid, None)
    other = services.flow.begin(Client(protocol="cas", client_id="pronote", name="Pronote"), {}, bid, None)
    pages = {req.id: client.get(f"/login/{req.id}?profil=parent").get_data(as_text=True)
             for req in (first, second, other)}
    for req in (first, second, other):
        page = pages[req.id]
        assert f'action="/login/{req.id}?profil=parent"' in page and f"?depuis=/login/{req.id}" in page
        assert "slot" not in page
        assert all(o.id not in page for o in (first, second, other) if o.id != req.id)
    assert "ENT &lt;Occitanie&gt; &amp; Co" in pages[first.id] and "Pronote" in pages[other.id]
    assert "Pronote" not in pages[first.id]
    assert csrf_from(pages[first.id]) == csrf_from(pages[other.id])  # this browser's token
    stranger = client.application.test_client()
    assert stranger.get(f"/login/{first.id}?profil=parent").status_code != 200  # bound to its browser
    choice = client.get(f"/login/{second.id}").get_data(as_text=True)
    assert f'href="/login/{second.id}?profil=parent"' in choice and "ENT &lt;Occitanie&gt; &amp; Co" in choice
