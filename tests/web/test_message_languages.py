"""Every SMS and mail a family receives, and the core's refusals, are in the language of the page (issue 19).

The flows below are driven in English through the web client and the outbox read back (the text is written
while the request is served, in its language); the other kinds are rendered under an English request the way
the flows render them. French stays the default (the other tests of the flows read French texts).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "flows"))
from test_activation_support import (  # noqa: E402
    MAIL,
    PHONE,
    Browser,
    flow_settings,
    last_code,
    make_family,
    outbox,
    text_of,
    with_contacts,
)

from idp.core import i18n as core_i18n  # noqa: E402
from idp.core.activation import messages  # noqa: E402
from idp.settings import Settings  # noqa: E402
from idp.web.i18n import PageCatalogue  # noqa: E402
from idp.wiring import Services  # noqa: E402


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    return flow_settings(base_settings)


@pytest.fixture
def sophie(services: Services, account_factory):
    return with_contacts(services, account_factory("Sophie", "Martin"))


def _english(app: Flask, ip: str) -> Browser:
    client: FlaskClient = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    client.set_cookie("idp_lang", "en")
    return Browser(client)


def test_the_activation_code_sms_is_in_the_page_language(app: Flask, services: Services) -> None:
    make_family(services)
    assert _english(app, "10.3.0.1").start_activation().status_code == 303
    body = outbox(services, PHONE)[-1]["body"]
    assert "your security code is" in body and "(valid for 30 min)" in body and "valable" not in body


def test_a_wrong_code_says_the_tries_left_in_the_page_language(app: Flask, services: Services) -> None:
    make_family(services)
    browser = _english(app, "10.3.0.4")
    browser.start_activation()
    wrong = "000000" if last_code(services) != "000000" else "111111"
    assert "Incorrect code. You have 4 attempts left." in text_of(browser.code(wrong))


def test_the_identifier_reminder_is_in_the_page_language(app: Flask, services: Services, sophie) -> None:
    _english(app, "10.3.0.2").post("/identifiant-oublie", {"canal": "mail", "courriel": MAIL})
    mail = outbox(services, MAIL)[-1]
    assert f"your username is {sophie.identifier} (Legal guardian)" in mail["body"] and "username" in mail["subject"]


def test_the_password_reset_code_and_notice_are_in_the_page_language(app: Flask, services: Services,
                                                                       sophie) -> None:
    browser = _english(app, "10.3.0.3")
    browser.post("/mot-de-passe-oublie", {"identifiant": sophie.identifier, "canal": "sms", "demande": ""})
    sms = outbox(services, PHONE)[-1]["body"]
    assert "code to choose a new password" in sms and "(valid for 30 min)" in sms


@pytest.mark.parametrize(("kind", "english"), [
    ("contact code", "code to confirm these new contact details: 123456 (valid for 30 min)"),
    ("contact changed", "the phone number of account s.martin1 has just been changed"),
    ("password changed", "the password of account s.martin1 was changed on"),
    ("login locked", "failed login attempts on account s.martin1"),
    ("email confirmation", "open this link (valid for 24 hours)"),
    ("email confirmation, one hour", "open this link (valid for 1 hour)"),
])
def test_each_message_kind_is_translated(app: Flask, kind: str, english: str) -> None:
    at = dt.datetime(2026, 12, 4, 16, 5, tzinfo=dt.UTC)
    render = {
        "contact code": lambda: messages.contact_code("Compte", "123456", 30),
        "contact changed": lambda: " ".join(messages.contact_changed("Compte", "s.martin1", phone=True)),
        "password changed": lambda: messages.password_changed("Compte", "s.martin1", at),
        "login locked": lambda: messages.login_locked("Compte", "s.martin1", at),
        "email confirmation": lambda: " ".join(messages.email_confirmation("Compte", "https://x/c/t", 24)),
        "email confirmation, one hour": lambda: " ".join(messages.email_confirmation("Compte", "https://x/c/t", 1)),
    }[kind]
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        token = core_i18n.use(PageCatalogue())
        try:
            assert english in render()
        finally:
            core_i18n.reset(token)
    assert english not in render()  # outside a request: French
