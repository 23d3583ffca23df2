"""The PostgreSQL fast path of the hot units of work (``idp.storage.fastsql``), and the cached service catalogue."""

from __future__ import annotations

import datetime as dt
import json

import psycopg
import pytest
from conftest import DEFAULT_PASSWORD
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from idp.core.accounts.model import Account
from idp.core.authn.model import AuthMethod, AuthnRequest, SsoSession
from idp.core.authn.sessions import SessionPolicy, find_session_with_account, new_session
from idp.errors import ServiceUnavailable
from idp.storage import catalogue
from idp.storage.fastsql import FastUnitOfWork
from idp.storage.models import ServiceProviderRow, SsoSessionRow
from idp.wiring import Services

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 22, 12, 0, 0, 123456, tzinfo=UTC)
_S = SsoSessionRow.__table__

def _postgresql(services: Services) -> None:
    if services.db.dialect != "postgresql":
        pytest.skip("the fast path is PostgreSQL's")


def _session_for(services: Services, account: Account, now: dt.datetime = NOW) -> tuple[str, SsoSession]:
    return new_session(account.id, AuthMethod.PASSWORD, SessionPolicy(), now, "127.0.0.1", "pytest")


def test_hot_units_of_work_use_the_driver(services: Services) -> None:
    _postgresql(services)
    with services.uow.autocommit() as uow:
        assert isinstance(uow, FastUnitOfWork)
    with services.uow.login_state() as uow:
        assert isinstance(uow, FastUnitOfWork)


def test_datetimes_go_in_and_come_out_aware_utc(services: Services, account_factory) -> None:
    _postgresql(services)
    account = account_factory()
    paris = dt.timezone(dt.timedelta(hours=1))
    token, session = _session_for(services, account, NOW.astimezone(paris))
    with services.uow.login_state() as uow:
        uow.sessions.add(session)
        uow.commit()
    with services.uow.autocommit() as uow:
        found = uow.sessions.get_with_account(session.id)
        assert found is not None
        stored, loaded = found
        assert stored.created_at == NOW and stored.created_at.tzinfo is UTC
        assert loaded.id == account.id and loaded.created_at.tzinfo is UTC
        again = uow.sessions.get(session.id)
        assert again == stored
    # Stored as naive UTC, as the ORM path stores it.
    with services.db.engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT created_at FROM sso_sessions WHERE id = %(id)s", {"id": session.id})
        assert raw.scalar() == NOW.replace(tzinfo=None)
    with services.uow.autocommit() as uow, pytest.raises(ValueError, match="naive"):
        uow.sessions.touch(session.id, NOW.replace(tzinfo=None))


def test_rowcount_decides_conditional_updates(services: Services, account_factory) -> None:
    _postgresql(services)
    account = account_factory()
    _, session = _session_for(services, account)
    request = AuthnRequest(id="r" * 32, protocol="portal", client_id="", client_name="", payload={"a": 1},
                           created_at=NOW, expires_at=NOW + dt.timedelta(minutes=5))
    with services.uow.autocommit() as uow:
        uow.sessions.add(session)
        uow.authn_requests.add(request, "b" * 64)
        assert uow.authn_requests.get(request.id, "b" * 64).payload == {"a": 1}
        assert uow.authn_requests.get(request.id, "c" * 64) is None
        assert uow.authn_requests.complete(request.id, NOW) is True
        assert uow.authn_requests.complete(request.id, NOW) is False  # only one caller ever wins
        assert uow.sessions.end(session.id, NOW) is True
        assert uow.sessions.end(session.id, NOW) is False


def test_a_failed_statement_rolls_the_whole_login_state_back(services: Services, account_factory) -> None:
    _postgresql(services)
    account = account_factory()
    _, session = _session_for(services, account)
    _, other = _session_for(services, account)
    with pytest.raises(IntegrityError), services.uow.login_state() as uow:
        uow.sessions.add(other)
        uow.sessions.add(session)
        uow.sessions.add(session)  # the same primary key again
        uow.commit()
    with services.uow.autocommit() as uow:
        assert uow.sessions.get(other.id) is None and uow.sessions.get(session.id) is None
    # An explicit rollback, then more work and a commit, on the same unit of work.
    with services.uow.login_state() as uow:
        uow.sessions.add(other)
        uow.rollback()
        uow.sessions.add(session)
        uow.commit()
    with services.uow.autocommit() as uow:
        assert uow.sessions.get(other.id) is None and uow.sessions.get(session.id) is not None


def test_an_uncommitted_login_state_leaves_nothing(services: Services, account_factory) -> None:
    _postgresql(services)
    account = account_factory()
    _, session = _session_for(services, account)
    with services.uow.login_state() as uow:
        uow.sessions.add(session)
    with services.uow.autocommit() as uow:
        assert uow.sessions.get(session.id) is None


def test_a_terminated_backend_is_a_503_and_the_next_unit_of_work_reconnects(services: Services,
                                                                              account_factory) -> None:
    _postgresql(services)
    account = account_factory()
    _, session = _session_for(services, account)
    with pytest.raises(ServiceUnavailable), services.uow.autocommit() as uow:
        assert uow.sessions.get(session.id) is None  # the connection is checked out now
        pid = uow._driver.info.backend_pid  # noqa: SLF001 - the test needs the backend to kill
        with psycopg.connect(services.db.engine.url.render_as_string(hide_password=False)
                             .replace("+psycopg", ""), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        uow.sessions.get(session.id)
    for _ in range(3):  # the pool hands out working connections again
        with services.uow.autocommit() as uow:
            assert uow.sessions.get(session.id) is None
    with pytest.raises(ServiceUnavailable), services.uow.login_state() as uow:
        uow.sessions.add(session)
        pid = uow._driver.info.backend_pid  # noqa: SLF001
        with psycopg.connect(services.db.engine.url.render_as_string(hide_password=False)
                             .replace("+psycopg", ""), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        uow.commit()
    with services.uow.autocommit() as uow:
        assert uow.sessions.get(session.id) is None  # the lost transaction left nothing


def test_statements_built_per_call_and_orm_statements_still_work(services: Services, account_factory) -> None:
    _postgresql(services)
    first, second = account_factory(), account_factory("Paul", "Durand")
    _, one = _session_for(services, first)
    _, two = _session_for(services, second)
    with services.uow.login_state() as uow:
        uow.sessions.add(one)
        uow.sessions.add(two)
        for account, session in ((first, one), (second, two)):  # same shape, new objects, other values
            rows = uow.executor.execute(select(_S.c.id, _S.c.created_at).where(_S.c.account_id == account.id)).all()
            assert [(r.id, r._mapping["created_at"]) for r in rows] == [(session.id, NOW)]
        # ORM statements go to a Session on the same connection and transaction: it sees the rows above.
        assert [s.id for s in uow.sessions.active_for_account(first.id, NOW)] == [one.id]
        count = uow.executor.execute(update(_S).where(_S.c.account_id == second.id).values(ip="10.0.0.1")).rowcount
        assert count == 1
        uow.commit()
    with services.uow.autocommit() as uow:
        assert uow.sessions.get(two.id).ip == "10.0.0.1"
        assert [s.id for s in uow.sessions.end_all(first.id, NOW)] == [one.id]


def test_the_sso_fast_path_and_throttle_counters(services: Services, account_factory) -> None:
    _postgresql(services)
    account = account_factory()
    token, session = _session_for(services, account)
    with services.uow.autocommit() as uow:
        uow.sessions.add(session)
    clock = type("C", (), {"now": staticmethod(lambda: NOW + dt.timedelta(seconds=61))})()
    with services.uow.autocommit() as uow:
        found = find_session_with_account(uow, token, SessionPolicy(), clock)
        assert found is not None and found[0].id == session.id and found[1].identifier == account.identifier
        assert found[1].profile == account.profile and found[1].state == account.state
    with services.uow.autocommit() as uow:
        assert uow.sessions.get(session.id).last_seen_at == NOW + dt.timedelta(seconds=61)  # touched
    window = dt.timedelta(minutes=15)
    with services.uow.login_state() as uow:
        assert uow.throttle.get_many([]) == {}
        assert uow.throttle.record_failure("k1", NOW, window).failures == 1
        assert uow.throttle.record_failure("k1", NOW, window).failures == 2
        assert uow.throttle.record_failure("k1", NOW + window + window, window).failures == 1  # new window
        uow.throttle.set_lock("k1", NOW + window)
        uow.commit()
    with services.uow.autocommit() as uow:
        counters = uow.throttle.get_many(["k1", "k2"])
        assert list(counters) == ["k1"] and counters["k1"].locked_until == NOW + window
        uow.throttle.reset("k1")
        assert uow.throttle.get_many(["k1"]) == {}


def test_the_service_catalogue_is_cached_and_follows_changes_made_here(services: Services) -> None:
    def add(client_id: str, name: str) -> None:
        with services.uow() as uow:
            uow.session.add(ServiceProviderRow(protocol="cas", client_id=client_id, name=name, home_url="",
                                               description="", enabled=True, created_at=NOW))
            uow.commit()

    add("a", "Alpha")
    with services.uow.autocommit() as uow:
        assert [e.name for e in uow.services.list_enabled()] == ["Alpha"]
    add("b", "Beta")  # written behind the catalogue's back: still the cached list
    with services.uow.autocommit() as uow:
        assert [e.name for e in uow.services.list_enabled()] == ["Alpha"]
    catalogue.changed()  # what the stores call when they write the table
    with services.uow.autocommit() as uow:
        assert [e.name for e in uow.services.list_enabled()] == ["Alpha", "Beta"]
    services.db.catalogue.ttl = 0  # and the time limit
    add("c", "Gamma")
    with services.uow.autocommit() as uow:
        assert [e.name for e in uow.services.list_enabled()] == ["Alpha", "Beta", "Gamma"]
    services.db.catalogue.ttl = catalogue.TTL


def test_the_json_payload_round_trips(services: Services) -> None:
    _postgresql(services)
    request = AuthnRequest(id="q" * 32, protocol="saml", client_id="sp", client_name="SP",
                           payload={"acs": "https://sp.test/é", "n": [1, 2]}, force_authn=True,
                           created_at=NOW, expires_at=NOW + dt.timedelta(minutes=5))
    with services.uow.autocommit() as uow:
        uow.authn_requests.add(request, "h" * 64)
        got = uow.authn_requests.get(request.id, "h" * 64)
    assert got.payload == json.loads(json.dumps(request.payload)) and got.force_authn is True and got.passive is False
    assert got.created_at == NOW and got.completed_at is None


def test_text_statements_literal_nulls_and_missing_parameters(services: Services, account_factory) -> None:
    _postgresql(services)
    from sqlalchemy import bindparam, text
    from sqlalchemy.exc import InvalidRequestError

    account = account_factory()
    _, session = _session_for(services, account)
    with services.uow.autocommit() as uow:
        uow.sessions.add(session)
        rows = uow.executor.execute(text("SELECT id, created_at FROM sso_sessions WHERE account_id = :a"),
                                    {"a": account.id}).all()
        assert [(r.id, r._mapping["created_at"].replace(tzinfo=UTC)) for r in rows] == [(session.id, NOW)]
        ended = uow.executor.execute(update(_S).where(_S.c.id == session.id).values(ended_at=None, ip="")).rowcount
        assert ended == 1
        with pytest.raises(InvalidRequestError, match="sid"):
            uow.executor.execute(select(_S).where(_S.c.id == bindparam("sid")), {})


def test_a_usual_login_writes_its_one_statement_without_a_transaction(services: Services, account_factory,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``login_state(one_write=True)``: the usual success (``add_at_login`` only) in autocommit on PostgreSQL;
    a login that also ends an earlier session keeps its transaction. SQLite always keeps it."""
    from idp.storage.models import AuditEventRow
    from idp.web.portal import PORTAL

    account = account_factory()
    opened: list[tuple[bool, bool]] = []
    real = services.uow.login_state

    def spy(*, one_write: bool = False) -> object:
        uow = real(one_write=one_write)
        opened.append((one_write, isinstance(uow, FastUnitOfWork) and uow._autocommit))
        return uow

    monkeypatch.setattr(services.uow, "login_state", spy)
    flow = services.flow
    request = flow.begin(PORTAL, {}, "", None, store=False)
    first = flow.login_unstored(request, account.identifier, DEFAULT_PASSWORD, profile=account.profile,
                                ip="192.0.2.1")
    again = flow.login_unstored(request, account.identifier, DEFAULT_PASSWORD, profile=account.profile,
                                ip="192.0.2.1", old_token=first.token)
    fast = services.db.dialect == "postgresql"
    assert opened == [(True, fast), (False, False)]
    with services.uow() as uow:
        sessions = {row.id: row.ended_at for row in uow.session.scalars(select(SsoSessionRow))}
        events = uow.session.scalars(select(AuditEventRow.event).order_by(AuditEventRow.id)).all()
        last_login = uow.accounts.get(account.id).last_login_at
    assert sessions[first.session.id] is not None and sessions[again.session.id] is None  # rotated (W01)
    assert events == ["login.success", "login.success"] and last_login is not None


def test_the_saml_replay_record_goes_through_the_unit_of_works_own_connection(services: Services) -> None:
    """``SqlSamlStore`` built lazily with ``FastUnitOfWork.execute_raw``: the replay record without an ORM session,
    refused the second time, from another unit of work too (SECURITY S14)."""
    _postgresql(services)
    from idp.storage.saml_store import SqlSamlStore

    later = NOW + dt.timedelta(minutes=5)
    with services.uow.autocommit() as uow:
        store = SqlSamlStore(lambda: uow.session, uow.execute_raw)
        assert store.consume_once("_id-42", later, NOW) is True
        assert store.consume_once("_id-42", later, NOW) is False
        assert uow._session is None  # no ORM session was built
    with services.uow.login_state() as uow:
        assert SqlSamlStore(lambda: uow.session, uow.execute_raw).consume_once("_id-42", later, NOW) is False
        assert SqlSamlStore(uow.session).consume_once("_id-42", later, NOW) is False
        expired = SqlSamlStore(lambda: uow.session, uow.execute_raw)  # at ``later`` the record has expired
        assert expired.consume_once("_id-42", later + dt.timedelta(minutes=5), later) is True
        uow.commit()
