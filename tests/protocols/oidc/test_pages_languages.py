"""The OpenID Connect pages a parent may see (refusals, consent, logout confirmation, logged out) in French and in
Arabic (right to left), with the language switch; the OAuth errors sent to clients stay as they are."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import page_in

from .conftest import Browser, Clients, form_fields

LANGS = pytest.mark.parametrize("lang", ["fr", "ar"])


UNKNOWN_CLIENT = ("Application inconnue", "Le service qui vous a envoyé ici n'est pas enregistré auprès de nous. "
                  "Retournez sur le site du service et signalez-lui ce problème.")
UNREGISTERED_RETURN = ("Adresse de retour non enregistrée", "L'adresse de retour demandée par ce service "
                       "(redirect_uri invalide) ne fait pas partie de celles qu'il a enregistrées. Par sécurité, nous "
                       "ne vous y renvoyons pas. Retournez sur le site du service et signalez-lui ce problème.")


@LANGS
@pytest.mark.parametrize(("params", "texts"), [({"client_id": "inconnu"}, UNKNOWN_CLIENT),
                                               ({"redirect_uri": "https://evil.example/cb"}, UNREGISTERED_RETURN)])
def test_an_untrusted_request_gets_the_refusal_in_the_page_language(browser: Browser, clients: Clients, lang: str,
                                                                    params: dict[str, str],
                                                                    texts: tuple[str, str]) -> None:
    rp = clients()
    browser.client.set_cookie("idp_lang", lang)
    response = browser.authorize(rp, **params)
    assert response.status_code == 400 and "Location" not in response.headers  # never sent back there
    page_in(response, lang, *texts, "Aller à mes services")


@LANGS
def test_the_consent_page_names_each_scope_in_the_page_language(browser: Browser, clients: Clients, parent: Any,
                                                                lang: str) -> None:
    rp = clients("Application partenaire", first_party=False, scopes=("openid", "profile", "email"))
    start = browser.authorize(rp, scope="openid profile email", state="s")
    done = browser.login(start.headers["Location"], parent.identifier)
    consent_url = browser.client.get(done.headers["Location"]).headers["Location"]
    browser.client.set_cookie("idp_lang", lang)
    page_in(browser.client.get(consent_url), lang, "Vos nom et prénom", "Votre adresse mail vérifiée",
            "Votre identifiant pour ce service (un numéro propre à ce service)", "Autoriser", "Refuser")


@LANGS
def test_logout_confirmation_and_logged_out_pages_in_the_page_language(browser: Browser, clients: Clients,
                                                                        parent: Any, lang: str) -> None:
    rp = clients()
    browser.tokens(rp, parent.identifier)
    browser.client.set_cookie("idp_lang", lang)
    confirm = browser.client.get("/oidc/logout", query_string={"client_id": rp.client_id})
    page_in(confirm, lang, "Se déconnecter", "Rester connecté", "Me déconnecter")
    fields = form_fields(confirm.get_data(as_text=True))
    fields["confirmer"] = "1"
    done = browser.client.post("/oidc/logout", data=fields)
    page_in(done, lang, "Vous êtes déconnecté", "Se reconnecter",
            "Vous êtes déconnecté. Sur un ordinateur partagé, fermez aussi le navigateur.")
