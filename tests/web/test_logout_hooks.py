"""Every way an SSO session ends runs the protocols' single-logout hooks, after the commit that ended it:
logout, a helpdesk password or lock (the account page and recovery are tested with their screens)."""

from __future__ import annotations

import logging

import pytest
from conftest import AccountFactory, LoginHelper, csrf_from
from flask import Flask
from flask.testing import FlaskClient

from idp.core.authn.model import SsoSession
from idp.wiring import Services


class Recorder:
    """A logout hook that notes the sessions it is called for, and whether each was already ended."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.ended: list[SsoSession] = []
        self.committed: list[bool] = []

    def __call__(self, session: SsoSession) -> None:
        self.ended.append(session)
        with self.services.uow() as uow:  # another transaction sees the end: it was committed first
            stored = uow.sessions.get(session.id)
        self.committed.append(stored is not None and stored.ended_at is not None)


@pytest.fixture
def recorder(services: Services) -> Recorder:
    hook = Recorder(services)
    services.extras["logout_hooks"].append(hook)
    return hook


def _sessions(services: Services, account_id: int) -> list[str]:
    with services.uow() as uow:
        return [s.id for s in uow.sessions.active_for_account(account_id, services.clock.now())]


def test_logout_runs_the_hooks(client: FlaskClient, login: LoginHelper, account_factory: AccountFactory,
                               services: Services, recorder: Recorder) -> None:
    account = account_factory()
    login(account.identifier)
    [session_id] = _sessions(services, account.id)
    page = client.get("/logout").get_data(as_text=True)
    assert client.post("/logout", data={"csrf_token": csrf_from(page)}).status_code == 200
    assert [s.id for s in recorder.ended] == [session_id] and recorder.committed == [True]


@pytest.mark.parametrize("action", ["set_password", "lock"])
def test_helpdesk_password_or_lock_ends_sessions_through_the_hooks(app: Flask, account_factory: AccountFactory,
                                                                    services: Services, recorder: Recorder,
                                                                    action: str) -> None:
    account = account_factory()
    for _ in range(2):
        LoginHelper(app.test_client())(account.identifier)
    sessions = _sessions(services, account.id)
    if action == "set_password":
        services.accounts.set_password(account.identifier, "Tulipe-Ardoise-Marron-73")
    else:
        services.accounts.lock(account.identifier)
    assert sorted(s.id for s in recorder.ended) == sorted(sessions) and len(sessions) == 2
    assert recorder.committed == [True, True]
    assert _sessions(services, account.id) == []


def test_a_failing_hook_is_logged_and_the_others_still_run(app: Flask, account_factory: AccountFactory,
                                                          services: Services, caplog: pytest.LogCaptureFixture) -> None:
    def broken(session: SsoSession) -> None:
        raise RuntimeError("partner unreachable")

    services.extras["logout_hooks"].insert(0, broken)
    after = Recorder(services)
    services.extras["logout_hooks"].append(after)
    account = account_factory()
    LoginHelper(app.test_client())(account.identifier)
    with caplog.at_level(logging.ERROR, logger="idp.authn"):
        services.accounts.set_password(account.identifier, "Tulipe-Ardoise-Marron-73")
    assert len(after.ended) == 1 and after.committed == [True]
    assert any("logout hook" in r.getMessage() for r in caplog.records)
