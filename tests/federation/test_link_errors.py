"""Linking an existing account to FranceConnect: each refusal (empty field, wrong password, the wait after too many)
is shown at its field in the DSFR error state, with ``aria-describedby`` and the summary at the top linking to it;
the identifier typed is kept. Both forms: the flow's « compte existant » page and « Mon compte »."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from conftest import DEFAULT_PASSWORD, LoginHelper, page_in
from flask.testing import FlaskClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fc_support import FcBrowser, Upstream, make_register, settings, text_of, upstream  # noqa: E402,F401 - fixtures

from idp.wiring import Services  # noqa: E402

EXISTING = "/franceconnect/compte-existant"


def field_error(page: str, field: str) -> str:
    """The error shown at ``field``: the field in the error state, described by its message, the summary linking
    to it. Returns the message."""
    assert re.search(rf'<input[^>]*id="{field}"[^>]*aria-invalid="true"', page, re.S), f"{field} not in error"
    assert re.search(rf'<input[^>]*id="{field}"[^>]*aria-describedby="[^"]*{field}-erreur', page, re.S)
    message = re.search(rf'<p class="fr-error-text" id="{field}-erreur">([^<]+)</p>', page)
    assert message is not None, f"no message under {field}"
    assert f'href="#{field}"' in page  # the summary at the top
    return message.group(1)


@pytest.fixture
def linking(client: FlaskClient, services: Services, upstream: Upstream, account_factory: object) -> tuple[FcBrowser,
                                                                                                          str]:
    """Karim, who has an account, comes back from FranceConnect: the flow offers his password as the proof."""
    make_register(services)
    account = account_factory("Karim", "Lefort")  # type: ignore[operator]
    with services.uow() as uow:
        uow.accounts.claim_register(account.id, representatives=[("0301234A", "R1")])
        uow.commit()
    browser = FcBrowser(client, upstream)
    assert browser.login("karim").headers["Location"] == "/franceconnect/code"
    return browser, account.identifier


def test_empty_fields_are_named_at_each_field(linking: tuple[FcBrowser, str]) -> None:
    browser, _ = linking
    answer = browser.post(EXISTING, {"identifiant": " ", "mot_de_passe": ""})
    page = text_of(answer)
    assert answer.status_code == 400
    assert "Indiquez votre identifiant" in field_error(page, "identifiant")
    assert field_error(page, "mot_de_passe") == "Indiquez le mot de passe de ce compte."


def test_a_wrong_password_is_said_under_the_password_and_the_identifier_kept(linking: tuple[FcBrowser, str]) -> None:
    browser, identifier = linking
    typed = " " + identifier.upper()  # kept as typed
    answer = browser.post(EXISTING, {"identifiant": typed, "mot_de_passe": "faux"})
    page = text_of(answer)
    assert answer.status_code == 401
    assert field_error(page, "mot_de_passe") == "Identifiant ou mot de passe incorrect."
    assert f'value="{typed}"' in page and 'id="identifiant-erreur"' not in page
    assert 'value="faux"' not in page  # a password is never sent back


def test_the_wait_after_too_many_tries_is_said_under_the_password(linking: tuple[FcBrowser, str]) -> None:
    browser, identifier = linking
    for _ in range(30):
        answer = browser.post(EXISTING, {"identifiant": identifier, "mot_de_passe": "faux"})
        if answer.status_code == 429:
            break
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) > 0
    assert "la connexion avec cet identifiant est suspendue pendant" in field_error(text_of(answer), "mot_de_passe")
    # The right password waits too: the throttling is the login's.
    assert browser.post(EXISTING, {"identifiant": identifier, "mot_de_passe": DEFAULT_PASSWORD}).status_code == 429


def test_the_refusal_is_in_the_page_language(linking: tuple[FcBrowser, str]) -> None:
    browser, identifier = linking
    browser.client.set_cookie("idp_lang", "ar")
    answer = browser.post(EXISTING, {"identifiant": identifier, "mot_de_passe": ""})
    page_in(answer, "ar", "Indiquez le mot de passe de ce compte.", "Le formulaire n'a pas pu être envoyé")


def test_the_account_page_form_says_it_under_its_password(client: FlaskClient, services: Services,
                                                          upstream: Upstream, account_factory: object,
                                                          login: LoginHelper) -> None:
    account = account_factory("Karim", "Lefort")  # type: ignore[operator]
    login(account.identifier)
    browser = FcBrowser(client, upstream)
    empty = browser.post("/compte/franceconnect/lier", {"actuel": ""}, page="/compte/franceconnect")
    assert empty.status_code == 400
    assert field_error(text_of(empty), "actuel-franceconnect") == "Indiquez votre mot de passe actuel."
    wrong = browser.post("/compte/franceconnect/lier", {"actuel": "mauvais"}, page="/compte/franceconnect")
    assert wrong.status_code == 400 and "incorrect" in field_error(text_of(wrong), "actuel-franceconnect")
