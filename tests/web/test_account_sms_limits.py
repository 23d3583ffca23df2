"""SMS pumping from « Mon compte » (issue 21 item 2): codes to a new number or address are limited per account
and per destination, account changes have an SMS budget of their own so they never starve the codes that let
families in, the page says why a code is refused or delayed, and each refusal is audited."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import DEFAULT_PASSWORD, LoginHelper
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "flows"))
from test_activation_support import (  # noqa: E402
    PHONE,
    Browser,
    add_parent,
    add_student,
    flow_settings,
    make_family,
    outbox,
    text_of,
)

from idp.core.clock import FrozenClock  # noqa: E402
from idp.settings import Settings  # noqa: E402
from idp.storage.models import AuditEventRow  # noqa: E402
from idp.wiring import Services  # noqa: E402

VICTIM = "+33698765432"


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    return flow_settings(base_settings)


def _at(client: FlaskClient, ip: str) -> Browser:
    client.environ_base["REMOTE_ADDR"] = ip
    return Browser(client)


def _logged_in(app: Flask, services: Services, account_factory: Any, given: str, family: str) -> FlaskClient:
    account = account_factory(given, family)
    client = app.test_client()
    assert LoginHelper(client)(account.identifier).status_code == 303
    return client


@pytest.fixture
def sophie(app: Flask, services: Services, account_factory: Any) -> FlaskClient:
    family = make_family(services)
    assert family.parent_records
    return _logged_in(app, services, account_factory, "Sophie", "Martin")


def _change_phone(browser: Browser, number: str) -> Any:
    return browser.post("/compte/telephone", {"valeur": number, "actuel": DEFAULT_PASSWORD}, page="/compte")


def _refusals(services: Services, event: str = "account.phone_change_refused") -> list[dict[str, Any]]:
    with services.uow() as uow:
        rows = uow.session.scalars(select(AuditEventRow).where(AuditEventRow.event == event)
                                   .order_by(AuditEventRow.id))
        return [json.loads(r.details) if isinstance(r.details, str) else r.details for r in rows]


def _sms_to(services: Services, prefix: str) -> list[dict[str, Any]]:
    return [m for m in outbox(services) if m["to"].startswith(prefix)]


def test_one_account_rotating_numbers_and_addresses_gets_five_codes_a_day(sophie: FlaskClient, services: Services,
                                                                          clock: FrozenClock) -> None:
    for n in range(5):
        assert _change_phone(_at(sophie, f"198.51.100.{n}"), f"07 81 23 45 6{n}").status_code == 303
    refused = _change_phone(_at(sophie, "198.51.100.99"), "07 81 23 45 69")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == str(24 * 3600)
    assert "nombre maximal de codes de confirmation aujourd'hui" in text_of(refused)
    assert "Réessayez demain" in text_of(refused)
    assert len(_sms_to(services, "+3378123456")) == 5
    (refusal,) = _refusals(services)
    assert refusal == {"reason": "account", "new": refusal["new"]} and "23 45 69" not in refusal["new"]
    # The resend of the last code is refused the same way (resends count), saying so on the code page.
    clock.advance(seconds=61)
    resend = _at(sophie, "198.51.100.99").post("/compte/confirmer/renvoyer", {}, page="/compte/confirmer")
    assert resend.status_code == 429 and "nombre maximal" in text_of(resend)
    assert len(_sms_to(services, "+3378123456")) == 5
    # A day later the account may change its number again.
    clock.advance(days=1)
    assert _change_phone(_at(sophie, "198.51.100.100"), "07 81 23 45 69").status_code == 303


def test_e_mail_changes_are_limited_per_account_too(sophie: FlaskClient, services: Services) -> None:
    for n in range(5):
        browser = _at(sophie, f"198.51.100.{n}")
        assert browser.post("/compte/courriel", {"valeur": f"n{n}@example.fr", "actuel": DEFAULT_PASSWORD},
                            page="/compte").status_code == 303
    refused = _at(sophie, "198.51.100.9").post("/compte/courriel", {"valeur": "n9@example.fr",
                                                                    "actuel": DEFAULT_PASSWORD}, page="/compte")
    assert refused.status_code == 429 and "votre adresse actuelle" in text_of(refused)
    assert [r["reason"] for r in _refusals(services, "account.email_change_refused")] == ["account"]


def _register_parent_with(services: Services, phone: str) -> None:
    kid = add_student(services, "0301234A", "120456799XY", "Roux", "Enfant", dt.date(2012, 1, 1))
    add_parent(services, "0301234A", "P9", "Roux", "Camille", phone, [kid])


def test_a_number_gets_five_account_codes_a_day_and_still_its_activation_code(
        app: Flask, sophie: FlaskClient, services: Services, account_factory: Any) -> None:
    _register_parent_with(services, VICTIM)
    paul = _logged_in(app, services, account_factory, "Paul", "Durand")
    for n in range(3):
        assert _change_phone(_at(sophie, f"203.0.113.{n}"), "06 98 76 54 32").status_code == 303
    for n in range(2):
        assert _change_phone(_at(paul, f"203.0.113.{10 + n}"), "06 98 76 54 32").status_code == 303
    refused = _change_phone(_at(paul, "203.0.113.20"), "06 98 76 54 32")
    assert refused.status_code == 429 and "Ce numéro a déjà reçu le nombre maximal de codes" in text_of(refused)
    assert [r["reason"] for r in _refusals(services)] == ["recipient"]
    assert len(_sms_to(services, VICTIM)) == 5
    # The family behind that number is not starved: its activation code goes out.
    Browser(app.test_client()).start_activation("Roux", "Camille", "06 98 76 54 32")
    assert "code de sécurité" in _sms_to(services, VICTIM)[-1]["body"]


def test_account_changes_have_their_own_budget_and_never_starve_activation(
        app: Flask, sophie: FlaskClient, services: Services) -> None:
    kit = services.account_settings.kit
    kit.limits = dataclasses.replace(kit.limits, account_sms_hourly_budget=2, sms_hourly_budget=2)
    for n in range(2):
        assert _change_phone(_at(sophie, f"192.0.2.{n}"), f"07 81 23 45 6{n}").status_code == 303
    refused = _change_phone(_at(sophie, "192.0.2.9"), "07 81 23 45 69")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "3600"
    assert "suspendu pour une heure au plus" in text_of(refused)
    assert [r["reason"] for r in _refusals(services)] == ["budget"]
    _register_parent_with(services, VICTIM)
    Browser(app.test_client()).start_activation("Roux", "Camille", "06 98 76 54 32")
    assert len(_sms_to(services, VICTIM)) == 1  # the families' budget is untouched by account changes


def test_the_activation_page_says_when_the_families_budget_is_spent(app: Flask, services: Services,
                                                                    clock: FrozenClock) -> None:
    make_family(services)
    _register_parent_with(services, VICTIM)
    kit = services.enrolment.kit
    kit.limits = dataclasses.replace(kit.limits, sms_hourly_budget=1)
    first = Browser(app.test_client())
    first.start_activation()
    assert "Envoi du SMS impossible" not in text_of(first.client.get("/creer-mon-compte/code"))
    clock.advance(seconds=1)
    second = Browser(app.test_client())
    second.start_activation("Roux", "Camille", "06 98 76 54 32")
    assert "Envoi du SMS impossible pour le moment" in text_of(second.client.get("/creer-mon-compte/code"))
    assert len(outbox(services, PHONE)) == 1 and outbox(services, VICTIM) == []
