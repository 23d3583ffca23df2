"""The CAS pages a parent may see (refusal, logout confirmation, logged out) in French and in Arabic (right to
left), with the language switch; the protocol answers themselves are not translated (tests/protocols/cas)."""

from __future__ import annotations

import pytest
from conftest import page_in

from .conftest import SERVICE, CasBrowser, People, csrf_of, quote

LANGS = pytest.mark.parametrize("lang", ["fr", "ar"])


@LANGS
def test_an_unregistered_service_gets_the_refusal_in_the_page_language(browser: CasBrowser, register,
                                                                        lang: str) -> None:
    register()
    browser.client.set_cookie("idp_lang", lang)
    response = browser.client.get("/cas/login?service=" + quote("https://evil.tld/"))
    assert response.status_code == 400 and "Location" not in response.headers
    page_in(response, lang, "Application non autorisée", "Aller à mes services",
            "Cette application n'est pas autorisée à utiliser ce service d'authentification. Aucune connexion "
            "n'a été transmise. Retournez sur le site de l'application ; si le problème persiste, signalez-le à "
            "votre établissement.")


@LANGS
def test_logout_confirmation_and_logged_out_pages_in_the_page_language(browser: CasBrowser, people: People,
                                                                        register, lang: str) -> None:
    register()
    browser.first_login(people.parent.identifier)
    browser.client.set_cookie("idp_lang", lang)
    confirm = browser.client.get("/cas/logout?service=" + quote(SERVICE))
    page_in(confirm, lang, "Se déconnecter", "Rester connecté", "Me déconnecter")
    done = browser.client.post("/cas/logout", data={"csrf_token": csrf_of(confirm), "service": SERVICE})
    page_in(done, lang, "Vous êtes déconnecté", "Retourner à l'application")
