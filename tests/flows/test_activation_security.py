"""SECURITY.md activation cases A01, A03, A04, A05, A06, A09, A10, A20 and R05, from the outside (web client)
or through the core with one unit of work per thread (the parallel cases)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from test_activation_support import (
    GOOD_PASSWORD,
    PHONE,
    Browser,
    add_parent,
    add_school,
    add_student,
    flow_settings,
    last_code,
    make_family,
    outbox,
    text_of,
)

from idp.core.activation.codes import ALPHABET
from idp.core.activation.enrolment import ChildAnswer
from idp.core.activation.errors import (
    AlreadyActivated,
    CodeExpired,
    CodeRejected,
    FlowExpired,
    StepNotAllowed,
    TooManyAttempts,
)
from idp.core.activation.model import Channel
from idp.core.clock import FrozenClock
from idp.delivery.memory import MemorySmsSender
from idp.settings import Settings, SmsSettings
from idp.storage.activation_store import ActivationCodeRow, ActivationTxRow, DeliveryRow
from idp.storage.models import AccountRow, AuditEventRow, RepresentativeRow
from idp.wiring import Services

BROWSER_A = "a" * 43
BROWSER_B = "b" * 43


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    return flow_settings(base_settings)


def _client(app: Flask, ip: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def _wrong(code: str) -> str:
    return "".join(ALPHABET[(ALPHABET.index(c) + 1) % len(ALPHABET)] for c in code)


def _answers(services: Services, token: str, browser: str) -> dict[int, ChildAnswer]:
    view = services.enrolment.view(token, browser)
    dates = {"Léa": (2012, 3, 14), "Hugo": (2008, 11, 2)}
    return {c.index: ChildAnswer(True, dt.date(*next(d for n, d in dates.items() if c.name.startswith(n))))
            for c in view.children}


def _to_password_step(services: Services, browser: str) -> str:
    token, _ = services.enrolment.start("Martin", "Sophie", "0612345678", ip="10.0.0.1", browser_id=browser)
    services.enrolment.verify_code(token, browser, last_code(services))
    services.enrolment.confirm_children(token, browser, _answers(services, token, browser))
    return token


def _parallel(count: int, work: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - the test inspects what each thread got
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


# --- A01 -------------------------------------------------------------------------------------------------


def _cookie_shape(response: Any) -> list[str]:
    return sorted(re.sub(r"=[^;]*", "=…", c, count=1) for c in response.headers.getlist("Set-Cookie"))


def test_a01_step_one_answers_identically_with_the_same_timing(app: Flask, services: Services) -> None:
    make_family(services)
    cases = {"match": ("Martin", "Sophie", "06 12 34 56 78"), "wrong_phone": ("Martin", "Sophie", "06 98 76 54 32"),
             "unknown": ("Inconnu", "Paul", "06 12 34 56 78")}
    timings: dict[str, list[float]] = {name: [] for name in cases}
    shapes: dict[str, set[tuple[Any, ...]]] = {name: set() for name in cases}
    code_pages: dict[str, str] = {}
    for i in range(200):
        for name, (family, given, phone) in cases.items():
            client = _client(app, f"10.{i // 250}.{i % 250}.{len(name)}")
            token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/creer-mon-compte").get_data(True))
            data = {"nom": family, "prenom": given, "telephone": phone, "csrf_token": token.group(1), "demande": ""}
            started = time.perf_counter()
            response = client.post("/creer-mon-compte", data=data)
            timings[name].append(time.perf_counter() - started)
            shapes[name].add((response.status_code, response.headers["Location"], response.get_data(),
                              tuple(_cookie_shape(response))))
            if i == 0 and phone.startswith("06 12"):
                page = client.get("/creer-mon-compte/code").get_data(True)
                code_pages[name] = re.sub(r'value="[^"]{43}"', 'value="…"', page)
    assert shapes["match"] == shapes["wrong_phone"] == shapes["unknown"]
    assert len(shapes["match"]) == 1
    assert code_pages["match"] == code_pages["unknown"]
    medians = {name: statistics.median(t) * 1000 for name, t in timings.items()}
    assert max(medians.values()) - min(medians.values()) < 20, medians
    assert len(outbox(services, PHONE)) == 5  # SMS for the matches only, capped at 5 per phone per day (A03)


# --- A03 -------------------------------------------------------------------------------------------------


def test_a03_per_ip_starts_are_limited(app: Flask, services: Services) -> None:
    make_family(services)
    browser = Browser(_client(app, "192.0.2.10"))
    for _ in range(10):
        assert browser.start_activation("Inconnu", "Paul").status_code == 303
    refused = browser.start_activation("Martin", "Sophie")
    assert refused.status_code == 429 and "Réessayez dans une heure" in text_of(refused)
    assert refused.headers["Retry-After"] == "3600"
    assert outbox(services) == []


def test_a03_per_phone_daily_cap_and_per_transaction_sends(app: Flask, services: Services,
                                                          clock: FrozenClock) -> None:
    make_family(services)
    browser = Browser(_client(app, "192.0.2.20"))
    browser.start_activation()
    services.delivery.run_pending()
    for _ in range(2):
        clock.advance(seconds=61)
        assert browser.post("/creer-mon-compte/renvoyer", {}, page="/creer-mon-compte/code").status_code == 200
        services.delivery.run_pending()  # a resend cancels a code not yet sent: let the worker send each
    clock.advance(seconds=61)
    fourth = browser.post("/creer-mon-compte/renvoyer", {}, page="/creer-mon-compte/code")
    assert fourth.status_code == 429 and "trop de codes" in text_of(fourth)
    assert len(outbox(services, PHONE)) == 3
    for n in range(4):
        Browser(_client(app, f"192.0.2.{30 + n}")).start_activation()
    assert len(outbox(services, PHONE)) == 5  # 5 per phone per 24 h, the rest silently not sent
    clock.advance(hours=24, seconds=1)
    Browser(_client(app, "192.0.2.40")).start_activation()
    assert len(outbox(services, PHONE)) == 6


def test_a03_global_hourly_budget(app: Flask, base_settings: Settings, services: Services) -> None:
    services.enrolment.kit.limits = dataclasses.replace(services.enrolment.kit.limits, sms_hourly_budget=2)
    for n in range(3):
        make_phone = f"+3361234560{n}"
        if n == 0:
            add_school(services, "0301234A", "Collège Claude Chappe")
        kid = add_student(services, "0301234A", f"12045678{n}XY", "Roux", f"Enfant{n}", dt.date(2012, 1, 1))
        add_parent(services, "0301234A", f"P{n}", "Roux", f"Parent{n}", make_phone, [kid])
        Browser(_client(app, f"198.51.100.{n}")).start_activation("Roux", f"Parent{n}", make_phone)
    assert len(outbox(services)) == 2
    with services.uow() as uow:
        alerts = uow.session.scalar(select(func.count()).select_from(AuditEventRow).where(
            AuditEventRow.event == "delivery.sms_budget_exceeded"))
    assert alerts == 1


# --- A04 -------------------------------------------------------------------------------------------------


def test_a04_twenty_parallel_wrong_guesses_count_exactly_five(services: Services) -> None:
    make_family(services)
    token, _ = services.enrolment.start("Martin", "Sophie", "0612345678", ip="10.0.0.2", browser_id=BROWSER_A)
    right = last_code(services)
    results = _parallel(20, lambda i: services.enrolment.verify_code(token, BROWSER_A, _wrong(right)))
    assert all(isinstance(r, CodeRejected | TooManyAttempts | StepNotAllowed) for r in results), results
    with services.uow() as uow:
        attempts = uow.session.scalar(select(ActivationCodeRow.attempts))
        state = uow.session.scalar(select(ActivationTxRow.state))
    assert attempts == 5 and state == "cancelled"
    with pytest.raises((FlowExpired, StepNotAllowed, TooManyAttempts)):
        services.enrolment.verify_code(token, BROWSER_A, right)


def test_a04_codes_use_the_31_symbol_alphabet(services: Services) -> None:
    assert len(ALPHABET) == 31 and not set("0O1IL") & set(ALPHABET)
    make_family(services)
    services.enrolment.start("Martin", "Sophie", "0612345678", ip="10.0.0.3", browser_id=BROWSER_A)
    code = last_code(services)
    assert len(code) == 6 and set(code) <= set(ALPHABET)
    with services.uow() as uow:
        stored = uow.session.scalar(select(ActivationCodeRow.code_hash))
        payloads = uow.session.scalars(select(DeliveryRow.payload)).all()
    assert code not in stored and len(stored) == 64
    assert all(p == "" for p in payloads)  # delivered: the encrypted copy is wiped (A07)


# --- A05 / A06 -------------------------------------------------------------------------------------------


def test_a05_valid_at_29_59_expired_at_30_01(services: Services, clock: FrozenClock) -> None:
    make_family(services)
    token, _ = services.enrolment.start("Martin", "Sophie", "0612345678", ip="10.0.0.4", browser_id=BROWSER_A)
    code = last_code(services)
    clock.advance(minutes=29, seconds=59)
    services.enrolment.verify_code(token, BROWSER_A, code)
    token2, _ = services.enrolment.start("Martin", "Sophie", "0612345678", ip="10.0.0.4", browser_id=BROWSER_B)
    code2 = last_code(services)
    clock.advance(minutes=30, seconds=1)
    with pytest.raises(CodeExpired) as err:
        services.enrolment.verify_code(token2, BROWSER_B, code2)
    assert err.value.description == "Code expiré, demandez-en un nouveau."


def test_a06_code_bound_to_its_transaction_purpose_and_single_use(services: Services, account_factory) -> None:
    make_family(services)
    token_a, _ = services.enrolment.start("Martin", "Sophie", "0612345678", ip="10.0.0.5", browser_id=BROWSER_A)
    code_a = last_code(services)
    token_b, _ = services.enrolment.start("Martin", "Sophie", "0612345678", ip="10.0.0.5", browser_id=BROWSER_B)
    code_b = last_code(services)
    if code_a != code_b:
        with pytest.raises(CodeRejected):
            services.enrolment.verify_code(token_b, BROWSER_B, code_a)
    with pytest.raises(FlowExpired):  # transaction A's token from browser B
        services.enrolment.verify_code(token_a, BROWSER_B, code_a)
    services.enrolment.verify_code(token_a, BROWSER_A, code_a)
    with pytest.raises(StepNotAllowed):  # replay after success
        services.enrolment.verify_code(token_a, BROWSER_A, code_a)
    with pytest.raises(FlowExpired):  # an activation transaction is not a password reset
        services.recovery.verify(token_b, BROWSER_B, code_b)
    parent = account_factory("Anne", "Lenoir")
    with services.uow() as uow:
        uow.accounts.set_phone(parent.id, PHONE, services.clock.now())
        uow.commit()
    reset = services.recovery.start_reset(parent.identifier, Channel.SMS, ip="10.0.0.6", browser_id=BROWSER_A)
    with pytest.raises(CodeRejected):  # an activation code in the password reset
        services.recovery.verify(reset, BROWSER_A, code_b)


# --- A09 -------------------------------------------------------------------------------------------------


def test_a09_steps_cannot_be_skipped_or_replayed(app: Flask, services: Services) -> None:
    make_family(services)
    browser = Browser(_client(app, "203.0.113.9"))
    browser.start_activation()
    assert browser.password().status_code == 403
    assert browser.children({0: ("oui", None)}).status_code == 403
    assert browser.client.get("/creer-mon-compte/mot-de-passe").headers["Location"] == "/creer-mon-compte/code"
    stranger = Browser(_client(app, "203.0.113.10"))
    assert stranger.password().status_code == 400  # no transaction in this browser
    with services.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(AccountRow)) == 0


# --- A10 -------------------------------------------------------------------------------------------------


def test_a10_two_browsers_finishing_at_once_make_one_account(services: Services) -> None:
    make_family(services)
    tokens = {BROWSER_A: _to_password_step(services, BROWSER_A), BROWSER_B: _to_password_step(services, BROWSER_B)}
    browsers = [BROWSER_A, BROWSER_B]
    results = _parallel(2, lambda i: services.enrolment.choose_password(
        tokens[browsers[i]], browsers[i], GOOD_PASSWORD, GOOD_PASSWORD, ip="10.0.0.7"))
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1 and isinstance([r for r in results if isinstance(r, Exception)][0], AlreadyActivated)
    with services.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(AccountRow)) == 1
        owners = set(uow.session.scalars(select(RepresentativeRow.account_id)))
    assert len(owners) == 1 and None not in owners


def test_a10_double_click_gives_the_same_success_and_one_account(services: Services) -> None:
    make_family(services)
    token = _to_password_step(services, BROWSER_A)
    results = _parallel(2, lambda i: services.enrolment.choose_password(token, BROWSER_A, GOOD_PASSWORD,
                                                                        GOOD_PASSWORD, ip="10.0.0.8"))
    assert all(not isinstance(r, Exception) for r in results), results
    assert results[0].identifier == results[1].identifier
    assert sum(1 for r in results if r.token) == 1
    with services.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(AccountRow)) == 1
    assert len(outbox(services, PHONE)) == 1


# --- R05 -------------------------------------------------------------------------------------------------


def test_r05_a_crash_before_commit_leaves_nothing_and_the_step_can_be_retried(services: Services,
                                                                            monkeypatch) -> None:
    make_family(services)
    token = _to_password_step(services, BROWSER_A)

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("worker killed")

    monkeypatch.setattr(services.flow, "open_after_step", crash)
    with pytest.raises(RuntimeError):
        services.enrolment.choose_password(token, BROWSER_A, GOOD_PASSWORD, GOOD_PASSWORD, ip="10.0.0.9")
    with services.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(AccountRow)) == 0
        assert set(uow.session.scalars(select(RepresentativeRow.account_id))) == {None}
    monkeypatch.undo()
    done = services.enrolment.choose_password(token, BROWSER_A, GOOD_PASSWORD, GOOD_PASSWORD, ip="10.0.0.9")
    assert done.token and done.identifier


# --- A20 -------------------------------------------------------------------------------------------------


def test_a20_gateway_down_leaves_the_flow_resumable_and_uncounted(app: Flask, services: Services,
                                                                 clock: FrozenClock) -> None:
    make_family(services)
    gateway = MemorySmsSender()
    gateway.failing = True
    services.delivery.sms = gateway
    browser = Browser(_client(app, "203.0.113.20"))
    browser.start_activation()
    services.delivery.run_pending()
    # First the queue keeps the message and tries again later (issue 20): the page says it is delayed.
    page = text_of(browser.client.get("/creer-mon-compte/code"))
    assert "L'envoi du SMS prend du retard" in page and "impossible" not in page
    for _ in range(services.delivery.max_attempts - 1):  # 30 s, 60 s, 120 s, 240 s later: still down
        clock.advance(seconds=300)
        services.delivery.run_pending()
    page = text_of(browser.client.get("/creer-mon-compte/code"))
    assert "Envoi du SMS impossible pour le moment, réessayez dans quelques minutes" in page
    gateway.failing = False
    again = browser.post("/creer-mon-compte/renvoyer", {}, page="/creer-mon-compte/code")
    assert again.status_code == 200  # no cooldown: the failed send was given back
    services.delivery.run_pending()
    assert len(gateway.sent) == 1 and gateway.sent[0].to == PHONE
    code = re.search(r"est ([2-9A-Z]{6})", gateway.sent[0].text).group(1)
    assert browser.code(code).headers["Location"] == "/creer-mon-compte/eleves"
    with services.uow() as uow:
        statuses = sorted(uow.session.scalars(select(DeliveryRow.status)))
        sends = uow.session.scalar(select(ActivationTxRow.sends))
    assert statuses == ["failed", "sent"] and sends == 1


def test_a20_http_gateway_settings_are_typed(base_settings: Settings) -> None:
    custom = dataclasses.replace(base_settings, sms=SmsSettings(backend="http", url="https://sms.example/api"))
    assert custom.sms.retries == 2 and custom.sms.timeout_seconds == 5
