"""The CSP ``form-action`` of the pages a CAS login goes through (SECURITY S31): the registered service's
origin on the pages of its pending request (Chromium applies ``form-action`` to the redirects that follow the
form: ``POST /login/<id>`` → 303 ``/cas/resume/<id>`` → 302 to the service), ``'self'`` everywhere else."""

from __future__ import annotations

from typing import Any

from idp.core.accounts.model import AccountState, Profile

from .conftest import PASSWORD, SERVICE, CasBrowser, People, csrf_of, quote

SELF = ["'self'"]
WITH_SERVICE = ["'self'", "https://ent.example.fr"]


def form_action(response: Any) -> list[str]:
    """The sources of the ``form-action`` directive of the answer's CSP."""
    directives = [d.split() for d in response.headers["Content-Security-Policy"].split(";")]
    return next(d[1:] for d in directives if d and d[0] == "form-action")


def test_login_screens_of_a_cas_request_allow_the_service_origin(browser: CasBrowser, people: People,
                                                                  register: Any) -> None:
    register()
    form_url = browser.login.start(f"/cas/login?service={quote(SERVICE)}")
    assert form_action(browser.client.get(form_url)) == WITH_SERVICE  # the profile choice
    assert form_action(browser.client.get(form_url + "?profil=parent")) == WITH_SERVICE
    wrong = browser.login.submit(form_url + "?profil=parent", people.parent.identifier, "pas-le-bon")
    assert wrong.status_code == 200 and form_action(wrong) == WITH_SERVICE
    csp = wrong.headers["Content-Security-Policy"]
    assert "*" not in csp and "unsafe" not in csp and "frame-ancestors 'none'" in csp


def test_pages_without_a_pending_request_keep_self(browser: CasBrowser, register: Any) -> None:
    register()
    for path in ("/login", "/login?profil=parent", "/login?profil=eleve", "/creer-mon-compte",
                 "/mot-de-passe-oublie", "/identifiant-oublie"):
        response = browser.client.get(path)
        assert response.status_code == 200 and form_action(response) == SELF, path


def test_a_request_of_another_browser_or_unknown_allows_nothing_more(browser: CasBrowser, register: Any,
                                                                     app: Any) -> None:
    register()
    form_url = browser.login.start(f"/cas/login?service={quote(SERVICE)}")
    other = app.test_client()
    assert form_action(other.get(form_url + "?profil=parent")) == SELF  # bound to the browser that began it
    assert form_action(browser.client.get("/login/inconnu?profil=parent")) == SELF
    refused = browser.client.get("/cas/login?service=" + quote("https://evil.tld/"))
    assert refused.status_code == 400 and form_action(refused) == SELF


def test_first_login_with_provisional_credentials_allows_the_service(browser: CasBrowser, register: Any,
                                                                     account_factory: Any) -> None:
    register()
    pupil = account_factory("Noé", "Moulin", profile=Profile.STUDENT, state=AccountState.PROVISIONAL)
    form_url = browser.login.start(f"/cas/login?service={quote(SERVICE)}")
    detour = browser.login.submit(form_url + "?profil=eleve", pupil.identifier, PASSWORD)
    assert detour.status_code == 303 and "/activation/premiere-connexion/" in detour.headers["Location"]
    page = browser.client.get(detour.headers["Location"])
    assert page.status_code == 200 and form_action(page) == WITH_SERVICE
    refused = browser.client.post(detour.headers["Location"], data={"csrf_token": csrf_of(page)})
    assert refused.status_code == 400 and form_action(refused) == WITH_SERVICE


def test_cas_logout_confirmation_keeps_self_without_an_upstream_session(browser: CasBrowser, people: People,
                                                                        register: Any) -> None:
    """Its answer is our own logged-out page (the link back to the service is a link, not a redirect)."""
    register()
    browser.first_login(people.parent.identifier)
    confirm = browser.client.get("/cas/logout?service=" + quote(SERVICE))
    assert "Me déconnecter" in confirm.get_data(as_text=True) and form_action(confirm) == SELF
