"""Campaigns: the population is shown before anything runs, exactly the chosen accounts are touched, audited;
a forced password change is real in the login: nothing is answered before the new password is set."""

from __future__ import annotations

import html
import re
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from idp.core.authn.model import AuthMethod
from idp.core.authn.sessions import new_session
from idp.storage.models import AccountRow, AuditEventRow
from idp.wiring import Services

from .staff_support import SCHOOL_A, Register, account_for, csrf, enrol

NEW_PASSWORD = "Nouveau-Cartable-2026!"


def _flags(services: Services) -> dict[str, bool]:
    with services.uow() as uow:
        return dict(uow.session.execute(select(AccountRow.given_names, AccountRow.must_change_password)).all())


def _session(services: Services, account_id: int) -> str:
    with services.uow() as uow:
        token, session = new_session(account_id, AuthMethod.PASSWORD, services.flow.session_policy,
                                     services.clock.now(), "203.0.113.9", "")
        uow.sessions.add(session)
        uow.commit()
    return token


def _run(client: FlaskClient, data: dict[str, str]) -> Any:
    page = client.get(f"/etablissement/campagnes/{SCHOOL_A}")
    preview = client.post(f"/etablissement/campagnes/{SCHOOL_A}", data={"csrf_token": csrf(page), **data})
    assert preview.status_code == 200
    count = re.search(r'name="attendu" value="(\d+)"', preview.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    return count, client.post(f"/etablissement/campagnes/{SCHOOL_A}", data={
        "csrf_token": csrf(page), "confirmer": "1", "attendu": count, **data})


def test_campaign_touches_exactly_the_chosen_accounts(client: FlaskClient, services: Services,
                                                      register: Register) -> None:
    account_for(services, "student", register.students["tom"], "Tom", "Durand")
    sessions = {name: _session(services, register.accounts[name]) for name in ("lea", "sophie", "karim")}
    enrol(client, services, "ref@college.fr", SCHOOL_A)
    count, done = _run(client, {"classe": "5A", "profil": "student", "mot_de_passe": "1", "sessions": "1"})
    assert count == "1" and done.status_code == 303
    assert _flags(services) == {"Sophie": False, "Léa": True, "Karim": False, "Tom": False}
    with services.uow() as uow:
        alive = {name: bool(uow.sessions.active_for_account(register.accounts[name], services.clock.now()))
                 for name in sessions}
        details = uow.session.scalar(select(AuditEventRow.details).where(AuditEventRow.event == "staff.campaign"))
    assert alive == {"lea": False, "sophie": True, "karim": True}
    assert details is not None and '"accounts": 1' in details and '"class": "5A"' in details
    count, _ = _run(client, {"classe": "", "profil": "", "mot_de_passe": "1"})
    assert count == "3"  # the whole school: Léa, Tom and Sophie; never Karim (another school)
    assert _flags(services) == {"Sophie": True, "Léa": True, "Karim": False, "Tom": True}


def test_campaign_refuses_a_population_that_changed(client: FlaskClient, services: Services,
                                                    register: Register) -> None:
    enrol(client, services, "ref@college.fr", SCHOOL_A)
    page = client.get(f"/etablissement/campagnes/{SCHOOL_A}")
    answer = client.post(f"/etablissement/campagnes/{SCHOOL_A}", data={
        "csrf_token": csrf(page), "confirmer": "1", "attendu": "7", "mot_de_passe": "1", "profil": ""})
    assert answer.status_code == 400 and "La population a changé" in html.unescape(answer.get_data(as_text=True))
    assert not any(_flags(services).values())


def _flag(services: Services, account_id: int) -> str:
    services.extras["staff"].desk  # noqa: B018 - the flag is set as a campaign does
    with services.uow() as uow:
        from idp.storage.staff_console_store import SqlConsoleStore

        SqlConsoleStore(uow.session).force_password_change([account_id])
        uow.commit()
        return uow.accounts.get(account_id).identifier


def test_forced_change_at_the_portal(client: FlaskClient, services: Services, register: Register,
                                     login: Any) -> None:
    identifier = _flag(services, register.accounts["lea"])
    answer = login(identifier, "Velo-Rouge-Garonne-42", path="/login?profil=eleve")
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/login/mot-de-passe-a-changer")
    assert client.get("/services").headers["Location"].endswith("/login/mot-de-passe-a-changer")
    page = client.get("/login/mot-de-passe-a-changer")
    same = client.post("/login/mot-de-passe-a-changer", data={
        "csrf_token": csrf(page), "mot_de_passe": "Velo-Rouge-Garonne-42", "confirmation": "Velo-Rouge-Garonne-42"})
    assert same.status_code == 400 and "différent de l'ancien" in html.unescape(same.get_data(as_text=True))
    done = client.post("/login/mot-de-passe-a-changer", data={
        "csrf_token": csrf(page), "mot_de_passe": NEW_PASSWORD, "confirmation": NEW_PASSWORD})
    assert done.status_code == 303 and done.headers["Location"].endswith("/services")
    assert client.get("/services").status_code == 200
    assert _flags(services)["Léa"] is False


def test_forced_change_before_a_pending_request_is_answered(client: FlaskClient, services: Services,
                                                            register: Register, login: Any) -> None:
    from idp.web.portal import PORTAL
    from idp.web.security import browser_cookie_name

    identifier = _flag(services, register.accounts["lea"])
    client.get("/login")  # a stored request bound to this browser, as a protocol front-end makes one
    bid = client.get_cookie(browser_cookie_name(services.settings)).value
    request_id = services.flow.begin(PORTAL, {}, bid, None, profile_hint="eleve").id
    form_url = f"/login/{request_id}"
    answer = login.submit(form_url, identifier, "Velo-Rouge-Garonne-42")
    assert answer.status_code == 303 and f"demande={request_id}" in answer.headers["Location"]
    early = client.get(f"/portal/resume/{request_id}")  # the front-end's resume before the change: refused
    assert early.status_code == 400 and "expir" in html.unescape(early.get_data(as_text=True))
    page = client.get(answer.headers["Location"])
    done = client.post(answer.headers["Location"], data={
        "csrf_token": csrf(page), "mot_de_passe": NEW_PASSWORD, "confirmation": NEW_PASSWORD, "demande": request_id})
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/portal/resume/{request_id}")
    answered = client.get(done.headers["Location"])  # the front-end answers now
    assert answered.status_code == 303 and answered.headers["Location"].endswith("/services")


def test_a_live_session_does_not_answer_for_a_flagged_account(client: FlaskClient, services: Services,
                                                              register: Register) -> None:
    from idp.core.authn.flow import Client
    from idp.web.security import browser_cookie_name, sso_cookie_name

    token = _session(services, register.accounts["lea"])
    _flag(services, register.accounts["lea"])
    client.get("/login")
    bid = client.get_cookie(browser_cookie_name(services.settings)).value
    outcome = services.flow.begin(Client("cas", "ent", "ENT"), {}, bid, token)
    assert not hasattr(outcome, "fresh_login")  # a stored request for the login page, not an assertion
    client.set_cookie(sso_cookie_name(services.settings), token)
    assert client.get("/services").status_code == 200  # "Mes services" lists, answers nobody


def test_campaigns_belong_to_the_referent(client: FlaskClient, services: Services, register: Register) -> None:
    from idp.core.staff.model import Role

    enrol(client, services, "sec@college.fr", SCHOOL_A, role=Role.SECRETARIAT)
    assert "Campagnes" not in client.get("/etablissement").get_data(as_text=True)
    page = client.get(f"/etablissement/campagnes/{SCHOOL_A}")
    assert page.status_code == 403 and "référent numérique" in html.unescape(page.get_data(as_text=True))
    answer = client.post(f"/etablissement/campagnes/{SCHOOL_A}", data={
        "csrf_token": csrf(client.get("/etablissement")), "confirmer": "1", "attendu": "1", "mot_de_passe": "1"})
    assert answer.status_code == 403 and not any(_flags(services).values())
    assert client.get(f"/etablissement/eleve/{register.students['lea']}").status_code == 200  # families: yes
