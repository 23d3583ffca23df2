"""Accounts in the database: identifiers unique under concurrent creation, the audit trail, no secrets logged."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import DEFAULT_PASSWORD, LoginHelper
from sqlalchemy import select

from idp.core.accounts.model import NewAccount, Profile
from idp.storage.models import AuditEventRow
from idp.wiring import Services


def test_identifiers_follow_the_p_nom_form(services: Services) -> None:
    made = [services.accounts.create(NewAccount(Profile.PARENT, family, given)).identifier
            for given, family in [("Marie", "Dupont"), ("Marc", "Dupont"), ("Élodie", "Œuvray"),
                                  ("Jean-Pierre", "N'Diaye"), ("Anne", "de La Fontaine")]]
    assert made == ["m.dupont1", "m.dupont2", "e.oeuvray1", "j.ndiaye1", "a.fontaine1"]


def test_identifiers_stay_unique_under_concurrent_creation(services: Services) -> None:
    def create(_: int) -> str:
        return services.accounts.create(NewAccount(Profile.PARENT, "Martin", "Léa")).identifier

    with ThreadPoolExecutor(max_workers=8) as pool:
        identifiers = list(pool.map(create, range(24)))
    assert len(set(identifiers)) == 24
    assert all(i.startswith("l.martin") for i in identifiers)


def test_login_events_are_audited_without_secrets(services: Services, login: LoginHelper, account_factory,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    account = account_factory()
    with caplog.at_level(logging.INFO, logger="idp"):
        login(account.identifier, "Faux-Secret-Tres-Long-77")
        login(account.identifier)
    with services.uow() as uow:
        events = [(e.event, e.subject, e.details, e.ip) for e in
                  uow.session.scalars(select(AuditEventRow).order_by(AuditEventRow.id))]
    names = [e[0] for e in events]
    assert "login.failure" in names and "login.success" in names
    dump = " ".join(f"{subject} {details}" for _, subject, details, _ in events) + caplog.text
    assert "Faux-Secret-Tres-Long-77" not in dump and DEFAULT_PASSWORD not in dump
    assert all(ip == "127.0.0.1" for name, _, _, ip in events if name.startswith("login"))


def test_five_failures_record_a_lock_event(services: Services, login: LoginHelper, account_factory) -> None:
    account = account_factory()
    for _ in range(5):
        login(account.identifier, "Mauvais-Mot-2!")
    with services.uow() as uow:
        names = uow.session.scalars(select(AuditEventRow.event)).all()
    assert names.count("login.failure") == 5 and names.count("login.locked") == 1
