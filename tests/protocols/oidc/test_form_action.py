"""The CSP ``form-action`` of the pages an OpenID Connect login or logout goes through (SECURITY S31): the
registered ``redirect_uri``'s origin on the login screens and the consent page of its pending request, the
registered ``post_logout_redirect_uri``'s on the logout confirmation, ``'self'`` everywhere else."""

from __future__ import annotations

from typing import Any

import jwt as pyjwt
from conftest import csrf_from

from .conftest import RP, Browser, Clients

SELF = ["'self'"]
WITH_RP = ["'self'", RP]
BYE = "https://depart.ecole.test/au-revoir"


def form_action(response: Any) -> list[str]:
    """The sources of the ``form-action`` directive of the answer's CSP."""
    directives = [d.split() for d in response.headers["Content-Security-Policy"].split(";")]
    return next(d[1:] for d in directives if d and d[0] == "form-action")


def test_login_screens_of_an_authorization_request_allow_the_redirect_uri_origin(browser: Browser,
                                                                                  clients: Clients,
                                                                                  parent: Any) -> None:
    rp = clients()
    start = browser.authorize(rp, state="s")
    login_url = start.headers["Location"]
    assert form_action(browser.client.get(login_url)) == WITH_RP
    page = browser.client.get(login_url + "?profil=parent")
    assert form_action(page) == WITH_RP
    wrong = browser.client.post(login_url + "?profil=parent", data={"identifiant": parent.identifier, "mot_de_passe": "pas-le-bon",
                                                 "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert wrong.status_code == 200 and form_action(wrong) == WITH_RP
    assert form_action(browser.client.get("/login?profil=parent")) == SELF  # the portal: nothing pending


def test_consent_page_allows_the_redirect_uri_origin(browser: Browser, clients: Clients, parent: Any) -> None:
    rp = clients("Application partenaire", first_party=False, scopes=("openid", "profile"))
    done = browser.login(browser.authorize(rp, state="c").headers["Location"], parent.identifier)
    consent_url = browser.client.get(done.headers["Location"]).headers["Location"]
    assert consent_url.startswith("/oidc/consent/")
    page = browser.client.get(consent_url)
    assert page.status_code == 200 and form_action(page) == WITH_RP


def test_an_untrusted_authorization_request_allows_nothing_more(browser: Browser, clients: Clients) -> None:
    rp = clients()
    refused = browser.authorize(rp, redirect_uri="https://evil.tld/callback")
    assert refused.status_code == 400 and form_action(refused) == SELF


def test_logout_confirmation_allows_the_registered_post_logout_uri(browser: Browser, clients: Clients,
                                                                   parent: Any, client: Any) -> None:
    """A hint of another session: the person confirms, and the answer goes to the registered address."""
    rp = clients(post_logout_redirect_uris=(BYE,))
    tokens = browser.tokens(rp, parent.identifier)
    client.delete_cookie("__Host-sso", path="/")
    browser.tokens(rp, parent.identifier)  # a new session: the hint names the old one
    assert pyjwt.decode(tokens["id_token"], options={"verify_signature": False})["sid"]
    page = browser.client.get("/oidc/logout", query_string={"id_token_hint": tokens["id_token"],
                                                            "post_logout_redirect_uri": BYE})
    assert page.status_code == 200 and form_action(page) == ["'self'", "https://depart.ecole.test"]
    # Without a hint nothing redirects anywhere afterwards: the confirmation keeps 'self'.
    bare = browser.client.get("/oidc/logout", query_string={"post_logout_redirect_uri": BYE})
    assert bare.status_code == 200 and form_action(bare) == SELF
