"""The SAML pages a parent may see (a refused request, the logout confirmation, the end of a single logout that a
service did not confirm) in French and in Arabic (right to left), with the language switch; the SAML statuses sent
to services stay as they are."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import DEFAULT_PASSWORD, csrf_from, page_in
from tests.protocols.saml.conftest import OneLoginSp, login_through, path_of

LANGS = pytest.mark.parametrize("lang", ["fr", "ar"])


@LANGS
def test_a_refused_request_gets_the_error_page_in_the_page_language(client: Any, lang: str) -> None:
    client.set_cookie("idp_lang", lang)
    response = client.get("/saml/init", query_string={"sp": "https://inconnu.example/sp"})
    assert response.status_code == 400 and "Location" not in response.headers
    page_in(response, lang, "Application non autorisée", "Revenir à la page de connexion",
            "Ce service n'accepte pas les connexions ouvertes depuis ce portail. Ouvrez-le depuis son propre site.")


@LANGS
def test_a_logout_a_service_did_not_confirm_ends_on_a_page_in_the_page_language(
        client: Any, login: Any, account_factory: Any, sp1: OneLoginSp, lang: str) -> None:
    account = account_factory()
    url, _ = sp1.login_url()
    login_through(client, login, url, account.identifier, DEFAULT_PASSWORD)
    client.set_cookie("idp_lang", lang)
    confirm = client.get("/logout")
    page_in(confirm, lang, "Se déconnecter", "Rester connecté", "Me déconnecter")
    step = client.post("/logout", data={"csrf_token": csrf_from(confirm.get_data(as_text=True))})
    first = client.get(path_of(step.headers["Location"]))
    assert first.headers["Location"].startswith(sp1.sls)  # sp1 never answers; the browser goes on
    final = client.get(path_of(step.headers["Location"]))
    assert final.status_code == 200
    page = page_in(final, lang, "Vous êtes déconnecté", "Se reconnecter",
                   "Ces services n'ont pas confirmé la déconnexion ; fermez le navigateur pour terminer votre "
                   "session :")
    assert "<li>ENT de test</li>" in page  # the service named as registered
