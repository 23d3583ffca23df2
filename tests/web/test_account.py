"""The account page through the web client: password, e-mail and phone changes (A17, W12), children and
schools, sessions listed and ended."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from conftest import DEFAULT_PASSWORD, LoginHelper
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "flows"))
from test_activation_support import (  # noqa: E402
    CODE_RE,
    GOOD_PASSWORD,
    PHONE,
    Browser,
    flow_settings,
    make_family,
    outbox,
    text_of,
)

from idp.core.accounts.model import AccountState  # noqa: E402
from idp.core.authn.model import SsoSession  # noqa: E402
from idp.settings import Settings  # noqa: E402
from idp.storage.models import SsoSessionRow  # noqa: E402
from idp.wiring import Services  # noqa: E402

OLD_MAIL = "sophie@example.fr"


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    return flow_settings(base_settings)


@pytest.fixture
def sophie(services: Services, account_factory):
    family = make_family(services)
    account = account_factory("Sophie", "Martin")
    with services.uow() as uow:
        uow.accounts.link_register(account.id, representatives=family.parent_records)
        uow.accounts.set_phone(account.id, PHONE, services.clock.now())
        uow.accounts.set_email(account.id, OLD_MAIL, services.clock.now())
        uow.commit()
    return account


@pytest.fixture
def logged_in(client: FlaskClient, login: LoginHelper, sophie) -> Browser:
    assert login(sophie.identifier).status_code == 303
    return Browser(client)


def _code(services: Services, to: str) -> str:
    return CODE_RE.search(outbox(services, to)[-1]["body"].split(":", 2)[-1]).group(1)


def test_account_page_needs_a_full_session(client: FlaskClient, services: Services, account_factory,
                                           login: LoginHelper) -> None:
    assert client.get("/compte").headers["Location"] == "/login"
    provisional = account_factory("Noé", "Lefèvre", state=AccountState.PROVISIONAL)
    login(provisional.identifier)
    assert client.get("/compte").status_code == 303


def test_account_page_shows_children_schools_and_sessions(logged_in: Browser, sophie) -> None:
    page = text_of(logged_in.client.get("/compte"))
    for words in ("Mon compte", sophie.identifier, "Léa Marie Martin", "Collège Claude Chappe", "Hugo Martin",
                  "Lycée du Parc", "Mes appareils connectés", "cet appareil", "Changer mon mot de passe",
                  'href="/compte/mot-de-passe"', 'href="/compte/telephone"', 'href="/compte/courriel"', "vérifiée"):
        assert words in page, words
    assert "<form" not in page.split("Mes appareils connectés")[0]  # an overview: each change on its own page
    password_page = text_of(logged_in.client.get("/compte/mot-de-passe"))
    assert 'for="actuel"' in password_page and 'autocomplete="username"' in password_page
    assert 'href="/compte"' in password_page  # the way back


def test_devices_are_named_and_times_are_in_paris() -> None:
    import datetime as dt

    from flask import Flask as _Flask
    from flask_babel import Babel

    from idp.web.devices import device_name, local_time

    app = _Flask(__name__)
    Babel(app, default_timezone="Europe/Paris", locale_selector=lambda: "fr")
    with app.test_request_context():
        assert device_name("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                           "Chrome/126.0 Mobile Safari/537.36") == "Chrome sur Android"
        assert device_name("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
                           "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1") == "Safari sur iOS"
        assert device_name("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                           "Chrome/126.0 Safari/537.36 Edg/126.0") == "Edge sur Windows"
        assert device_name("") == "Navigateur inconnu"
        assert local_time(dt.datetime(2026, 12, 4, 16, 5)) == "4 déc. 2026, 17:05"  # UTC+1 in winter
        assert local_time(dt.datetime(2026, 7, 4, 16, 5, tzinfo=dt.UTC)) == "4 juil. 2026, 18:05"  # UTC+2


def test_change_password_needs_the_current_one_and_ends_other_sessions(app: Flask, logged_in: Browser,
                                                                       services: Services, sophie) -> None:
    ended_by_hooks: list[SsoSession] = []
    services.extras["logout_hooks"].append(ended_by_hooks.append)
    other = LoginHelper(app.test_client())
    other(sophie.identifier)
    with services.uow() as uow:
        sessions = uow.sessions.active_for_account(sophie.id, services.clock.now())
    wrong = logged_in.post("/compte/mot-de-passe", {"actuel": "faux", "mot_de_passe": GOOD_PASSWORD,
                                                    "confirmation": GOOD_PASSWORD}, page="/compte")
    assert wrong.status_code == 400 and "Mot de passe actuel incorrect" in text_of(wrong)
    weak = logged_in.post("/compte/mot-de-passe", {"actuel": DEFAULT_PASSWORD, "mot_de_passe": "abc",
                                                   "confirmation": "abc"}, page="/compte")
    assert weak.status_code == 400 and "au moins 8 caractères" in text_of(weak)
    ok = logged_in.post("/compte/mot-de-passe", {"actuel": DEFAULT_PASSWORD, "mot_de_passe": GOOD_PASSWORD,
                                                 "confirmation": GOOD_PASSWORD}, page="/compte")
    assert ok.status_code == 303
    page = text_of(logged_in.client.get("/compte"))
    assert "Votre mot de passe a été modifié. Votre autre appareil (1) a été déconnecté." in page
    with services.uow() as uow:
        live = uow.session.scalars(select(SsoSessionRow.id).where(SsoSessionRow.ended_at.is_(None))).all()
    assert len(live) == 1
    # The other session ended through the logout path: the protocols' single-logout hooks ran for it.
    assert [s.id for s in ended_by_hooks] == [s.id for s in sessions if s.id != live[0]]
    notices = outbox(services)
    assert len(notices) == 1 and notices[0]["to"] == OLD_MAIL and "a été modifié" in notices[0]["body"]
    assert LoginHelper(app.test_client())(sophie.identifier, GOOD_PASSWORD).status_code == 303


def test_change_email_with_a_code_to_the_new_address_and_a_notice_to_the_old(logged_in: Browser,
                                                                            services: Services, sophie) -> None:
    wrong = logged_in.post("/compte/courriel", {"valeur": "new@example.fr", "actuel": "faux"}, page="/compte")
    assert wrong.status_code == 400 and outbox(services) == []
    start = logged_in.post("/compte/courriel", {"valeur": "new@example.fr", "actuel": DEFAULT_PASSWORD},
                           page="/compte")
    assert start.status_code == 303 and start.headers["Location"] == "/compte/confirmer"
    assert "new@example.fr" in text_of(logged_in.client.get("/compte/confirmer"))
    bad = logged_in.post("/compte/confirmer", {"code": "ZZZZZZ"})
    assert bad.status_code == 400 and "Code incorrect" in text_of(bad)
    done = logged_in.post("/compte/confirmer", {"code": _code(services, "new@example.fr")})
    assert done.status_code == 303
    with services.uow() as uow:
        account = uow.accounts.get(sophie.id)
    assert account.email == "new@example.fr" and account.email_verified
    old = outbox(services, OLD_MAIL)
    assert len(old) == 1 and "vient d'être modifié" in old[0]["body"]


def test_change_phone_with_a_code_by_sms(logged_in: Browser, services: Services, sophie) -> None:
    landline = logged_in.post("/compte/telephone", {"valeur": "01 23 45 67 89", "actuel": DEFAULT_PASSWORD},
                              page="/compte")
    assert landline.status_code == 400 and "portable" in text_of(landline)
    logged_in.post("/compte/telephone", {"valeur": "07 81 23 45 67", "actuel": DEFAULT_PASSWORD}, page="/compte")
    assert logged_in.post("/compte/confirmer", {"code": _code(services, "+33781234567")}).status_code == 303
    with services.uow() as uow:
        account = uow.accounts.get(sophie.id)
    assert account.phone == "+33781234567" and account.phone_verified
    assert "vient d'être modifié" in outbox(services, PHONE)[-1]["body"]


def test_end_another_session(app: Flask, logged_in: Browser, services: Services, sophie) -> None:
    ended_by_hooks: list[SsoSession] = []
    services.extras["logout_hooks"].append(ended_by_hooks.append)
    other = app.test_client()
    LoginHelper(other)(sophie.identifier)
    with services.uow() as uow:
        sessions = uow.sessions.active_for_account(sophie.id, services.clock.now())
    page = text_of(logged_in.client.get("/compte"))
    target = next(s for s in sessions if f"/compte/sessions/{s.public_id}/terminer" in page)
    ended = logged_in.post(f"/compte/sessions/{target.public_id}/terminer", {}, page="/compte")
    assert ended.status_code == 303
    assert other.get("/services").status_code == 303  # that browser is logged out
    assert logged_in.client.get("/services").status_code == 200
    assert [s.id for s in ended_by_hooks] == [target.id]  # single logout ran for it, as for a logout
    again = logged_in.post(f"/compte/sessions/{target.public_id}/terminer", {}, page="/compte")
    assert again.status_code in (303, 400) and len(ended_by_hooks) == 1  # never twice


def test_account_forms_need_csrf(logged_in: Browser) -> None:
    response = logged_in.client.post("/compte/mot-de-passe", data={"actuel": DEFAULT_PASSWORD,
                                                                   "mot_de_passe": GOOD_PASSWORD,
                                                                   "confirmation": GOOD_PASSWORD})
    assert response.status_code == 400


def _group(page: str, field_id: str) -> str:
    """The DSFR group (label, input, own error) of one field: from its group's start to the next group."""
    at = page.index(f'id="{field_id}"')
    starts = [m.start() for m in re.finditer(r'<div class="fr-(?:input-group|password)[ "]', page)]
    start = max(s for s in starts if s < at)
    return page[start:min([s for s in starts if s > at] + [page.index("</form>", at)])]


def test_account_form_problems_are_at_their_fields_with_the_values_kept(logged_in: Browser,
                                                                        services: Services) -> None:
    empty = text_of(logged_in.post("/compte/telephone", {"valeur": "", "actuel": DEFAULT_PASSWORD}, page="/compte"))
    group = _group(empty, "valeur-telephone")
    assert "fr-input-group--error" in group and "Indiquez le nouveau numéro de téléphone portable." in group
    assert 'aria-describedby="valeur-telephone-aide valeur-telephone-erreur"' in group and "invalide" not in group
    assert 'href="#valeur-telephone"' in empty
    wrong = text_of(logged_in.post("/compte/courriel", {"valeur": "new@example.fr", "actuel": "faux"},
                                   page="/compte"))
    group = _group(wrong, "actuel-courriel")
    assert "fr-input-group--error" in group and 'id="actuel-courriel-erreur"' in group
    assert "Mot de passe actuel incorrect" in group and 'href="#actuel-courriel"' in wrong
    assert 'value="new@example.fr"' in _group(wrong, "valeur-courriel")
    assert 'value="faux"' not in wrong  # passwords are never sent back
    missing = text_of(logged_in.post("/compte/mot-de-passe", {"actuel": "", "mot_de_passe": GOOD_PASSWORD,
                                                              "confirmation": GOOD_PASSWORD}, page="/compte"))
    assert "Indiquez votre mot de passe actuel." in _group(missing, "actuel")
    assert 'class="fr-password" id="mot-de-passe-groupe"' in missing  # the new password is not the problem
    assert outbox(services) == []


def test_empty_code_says_so_and_costs_no_attempt(logged_in: Browser, services: Services) -> None:
    logged_in.post("/compte/courriel", {"valeur": "new@example.fr", "actuel": DEFAULT_PASSWORD}, page="/compte")
    for _ in range(6):
        empty = logged_in.post("/compte/confirmer", {"code": " "})
        assert empty.status_code == 400 and "Indiquez le code reçu" in _group(text_of(empty), "code")
    done = logged_in.post("/compte/confirmer", {"code": _code(services, "new@example.fr")})
    assert done.status_code == 303
