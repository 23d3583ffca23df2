"""The language stored on the account (issue 19): recorded where the person shows it — password login, SMS
activation, the end of a password reset, the switch of a logged-in person — written only when it changed, and
used for the lockout notice, which the holder did not ask for on any page."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import AccountFactory, LoginHelper
from flask import Flask
from flask.testing import FlaskClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "flows"))
from test_activation_support import (  # noqa: E402
    CODE_RE,
    GOOD_PASSWORD,
    MAIL,
    PHONE,
    Browser,
    flow_settings,
    last_code,
    make_family,
    outbox,
    with_contacts,
)

from idp.core.accounts.model import Account  # noqa: E402
from idp.settings import Settings  # noqa: E402
from idp.storage.accounts import SqlAccountRepository  # noqa: E402
from idp.storage.sessions import SqlSessionRepository  # noqa: E402
from idp.wiring import Services  # noqa: E402


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    return flow_settings(base_settings)


@pytest.fixture
def sophie(services: Services, account_factory: AccountFactory) -> Account:
    return with_contacts(services, account_factory("Sophie", "Martin"))


def _language(services: Services, account_id: int) -> str | None:
    with services.uow() as uow:
        account = uow.accounts.get(account_id)
    assert account is not None
    return account.language


def _in(client: FlaskClient, language: str) -> FlaskClient:
    client.set_cookie("idp_lang", language)
    return client


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """What the login write and the language statement were given (the same methods on SQLite and PostgreSQL)."""
    calls: list[tuple[str, Any]] = []
    at_login, set_language = SqlSessionRepository.add_at_login, SqlAccountRepository.set_language

    def spy_login(self: SqlSessionRepository, *args: Any, **kwargs: Any) -> None:
        calls.append(("login", kwargs.get("language")))
        at_login(self, *args, **kwargs)

    def spy_language(self: SqlAccountRepository, account_id: int, language: str) -> None:
        calls.append(("set_language", language))
        set_language(self, account_id, language)

    monkeypatch.setattr(SqlSessionRepository, "add_at_login", spy_login)
    monkeypatch.setattr(SqlAccountRepository, "set_language", spy_language)
    return calls


def test_a_password_login_records_the_page_language_and_an_unchanged_one_writes_nothing(
        app: Flask, services: Services, sophie: Account, written: list[tuple[str, Any]]) -> None:
    assert _language(services, sophie.id) is None
    assert LoginHelper(_in(app.test_client(), "ar"))(sophie.identifier).status_code == 303
    assert _language(services, sophie.id) == "ar"
    assert written == [("login", "ar")]  # folded into the login's own write, no statement of its own
    written.clear()
    assert LoginHelper(_in(app.test_client(), "ar"))(sophie.identifier).status_code == 303
    assert written == [("login", None)] and _language(services, sophie.id) == "ar"  # the stored one is kept
    assert LoginHelper(_in(app.test_client(), "tr"))(sophie.identifier).status_code == 303
    assert _language(services, sophie.id) == "tr"


def test_a_failed_login_records_nothing(app: Flask, services: Services, sophie: Account,
                                        written: list[tuple[str, Any]]) -> None:
    LoginHelper(_in(app.test_client(), "ar"))(sophie.identifier, "Mauvais-Mot-2!")
    assert _language(services, sophie.id) is None and written == []


def test_the_language_switch_records_for_a_logged_in_person_only(
        app: Flask, client: FlaskClient, services: Services, sophie: Account, login: LoginHelper,
        written: list[tuple[str, Any]]) -> None:
    assert client.get("/langue/es?retour=/").status_code == 303  # nobody logged in: the cookie only
    assert written == []
    assert login(sophie.identifier).status_code == 303
    assert _language(services, sophie.id) == "es"  # the cookie the switch set, read at the login
    written.clear()
    client.get("/langue/es?retour=/services")
    assert written == []  # the stored language: nothing written
    client.get("/langue/pt?retour=/services")
    assert written == [("set_language", "pt")] and _language(services, sophie.id) == "pt"
    client.get("/langue/xx?retour=/services")  # not a language offered: ignored
    assert _language(services, sophie.id) == "pt"


def test_sms_activation_records_the_page_language(app: Flask, services: Services) -> None:
    family = make_family(services)
    browser = Browser(_in(app.test_client(), "ar"))
    browser.start_activation()
    assert "رمز" in outbox(services, PHONE)[-1]["body"]  # the code itself came in the page's language
    browser.code(last_code(services))
    browser.children({i: ("oui", next(born for n, born in family.children.items() if name.startswith(n)))
                      for i, name in enumerate(browser.child_order())})
    assert browser.password(GOOD_PASSWORD).status_code == 303
    with services.uow() as uow:
        (account,) = uow.accounts.with_verified_contact(phone=PHONE)
    assert account.language == "ar"


def test_the_end_of_a_password_reset_records_the_page_language(app: Flask, services: Services,
                                                               sophie: Account) -> None:
    browser = Browser(_in(app.test_client(), "tr"))
    browser.post("/mot-de-passe-oublie", {"identifiant": sophie.identifier, "canal": "sms", "demande": ""})
    body = outbox(services, PHONE)[-1]["body"]
    browser.post("/mot-de-passe-oublie/code", {"code": CODE_RE.search(body.split(":", 2)[-1]).group(1)})
    assert _language(services, sophie.id) is None  # not before the reset is done
    done = browser.post("/mot-de-passe-oublie/nouveau", {"mot_de_passe": GOOD_PASSWORD,
                                                          "confirmation": GOOD_PASSWORD})
    assert done.status_code == 303 and _language(services, sophie.id) == "tr"


@pytest.mark.parametrize(("stored", "words"), [
    ("tr", "başarısız giriş denemeleri"),
    (None, "tentatives de connexion échouées"),
])
def test_the_lockout_notice_is_in_the_stored_language_not_the_page_one(
        app: Flask, services: Services, sophie: Account, stored: str | None, words: str) -> None:
    if stored:
        with services.uow() as uow:
            uow.accounts.set_language(sophie.id, stored)
            uow.commit()
    attacker = LoginHelper(_in(app.test_client(), "en"))  # whoever types the wrong passwords reads English
    for _ in range(5):
        attacker(sophie.identifier, "Mauvais-Mot-2!")
    (notice,) = outbox(services, MAIL)
    assert words in notice["body"] and "failed login attempts" not in notice["body"]
    assert _language(services, sophie.id) == stored  # failures record nothing
