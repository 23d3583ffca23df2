"""Scope on every request: every console route walked as a member of the right school, of another school,
without the second factor and logged out. Another school's records answer 404, never 403."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.storage.activation_store import WrongLinkReportRow
from idp.wiring import Services

from .staff_support import SCHOOL_A, SCHOOL_B, Register, csrf, enrol, password_step

#: Console routes that need a staff session, and the routes of the login itself (which must not).
LOGIN_ROUTES = {"staff.login_page", "staff.login_submit", "staff.second_factor", "staff.totp_submit",
                "staff.passkey_submit", "staff.enrol_page", "staff.enrol_submit", "staff.logout"}


def _report(services: Services, uai: str, student: int, rep: int) -> int:
    with services.uow() as uow:
        row = WrongLinkReportRow(uai=uai, representative_id=rep, student_id=student, transaction_id="t",
                                 status="open", created_at=services.clock.now())
        uow.session.add(row)
        uow.session.flush()
        uow.commit()
        return row.id


def routes(reg: Register, school: str, report: int) -> dict[str, tuple[str, str]]:
    """(method, path) of every console route, aimed at ``school``'s records."""
    s, r, name = (reg.students["lea"], reg.reps["sophie"], "Martin") if school == SCHOOL_A else \
        (reg.students["hugo"], reg.reps["karim"], "Lefort")
    pupil = reg.students["zoe"] if school == SCHOOL_A else reg.students["hugo"]  # no account yet: a letter
    return {
        "staff.home": ("GET", "/etablissement"),
        "staff.search": ("GET", f"/etablissement/recherche?q={name}"),
        "staff.family": ("GET", f"/etablissement/eleve/{s}"),
        "staff.letter": ("POST", f"/etablissement/eleve/{pupil}/student/{pupil}/courrier"),
        "staff.unlock": ("POST", f"/etablissement/eleve/{s}/rep/{r}/deverrouiller"),
        "staff.end_sessions": ("POST", f"/etablissement/eleve/{s}/rep/{r}/sessions"),
        "staff.resend_identifier": ("POST", f"/etablissement/eleve/{s}/rep/{r}/identifiant"),
        "staff.correct": ("POST", f"/etablissement/eleve/{s}/rep/{r}/correction"),
        "staff.inbox": ("GET", f"/etablissement/boite?uai={school}"),
        "staff.handle": ("POST", f"/etablissement/boite/wrong_link/{report}/traite"),
        "staff.funnel": ("GET", f"/etablissement/entonnoir/{school}"),
        "staff.funnel_export": ("GET", f"/etablissement/entonnoir/{school}.csv"),
        "staff.campaign_page": ("GET", f"/etablissement/campagnes/{school}"),
        "staff.campaign_submit": ("POST", f"/etablissement/campagnes/{school}"),
    }


#: Routes that list (not address) records: they answer, showing none of another school's.
LISTING = {"staff.home", "staff.search"}


def _call(client: FlaskClient, method: str, path: str) -> Any:
    if method == "GET":
        return client.get(path)
    token = csrf(client.get("/etablissement/connexion"))
    return client.post(path, data={"csrf_token": token, "champ": "email", "valeur": "nouveau@example.fr",
                                   "mot_de_passe": "1", "attendu": "0"})


@pytest.fixture
def reports(services: Services, register: Register) -> dict[str, int]:
    return {SCHOOL_A: _report(services, SCHOOL_A, register.students["lea"], register.reps["sophie"]),
            SCHOOL_B: _report(services, SCHOOL_B, register.students["hugo"], register.reps["karim"])}


def test_the_walk_covers_every_console_route(app: Flask, register: Register) -> None:
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.startswith("staff.")}
    assert endpoints - LOGIN_ROUTES == set(routes(register, SCHOOL_A, 1))


def test_member_of_another_school_gets_404_everywhere(client: FlaskClient, services: Services, register: Register,
                                                     reports: dict[str, int]) -> None:
    enrol(client, services, "ref@college.fr", SCHOOL_A)
    for endpoint, (method, path) in routes(register, SCHOOL_B, reports[SCHOOL_B]).items():
        answer = _call(client, method, path)
        if endpoint in LISTING:
            assert answer.status_code == 200, endpoint
            page = answer.get_data(as_text=True)
            assert "Lycée du Parc" not in page and "/eleve/" not in page, endpoint
        else:
            assert answer.status_code == 404, (endpoint, answer.status_code)
    # Search by every kind of key of school B's family finds nothing either.
    for q in ("Lefort", "Hugo", "120456790CD", "1G2", "5432", "Karim"):
        assert "0 élève(s) trouvé(s)" in client.get(f"/etablissement/recherche?q={q}").get_data(as_text=True), q


def test_member_of_the_school_reaches_every_route(client: FlaskClient, services: Services, register: Register,
                                                  reports: dict[str, int]) -> None:
    enrol(client, services, "ref@college.fr", SCHOOL_A)
    for endpoint, (method, path) in routes(register, SCHOOL_A, reports[SCHOOL_A]).items():
        answer = _call(client, method, path)
        assert answer.status_code in (200, 303, 400), (endpoint, answer.status_code)
        assert answer.status_code != 400 or endpoint == "staff.campaign_submit", endpoint


def test_operator_sees_every_school(client: FlaskClient, services: Services, register: Register,
                                    reports: dict[str, int]) -> None:
    enrol(client, services, "ops@academie.fr", "", operator=True)
    assert client.get(f"/etablissement/eleve/{register.students['hugo']}").status_code == 200
    assert client.get(f"/etablissement/entonnoir/{SCHOOL_A}").status_code == 200


@pytest.mark.parametrize("state", ["logged_out", "password_only"])
def test_no_console_without_both_factors(client: FlaskClient, services: Services, register: Register,
                                         reports: dict[str, int], state: str) -> None:
    if state == "password_only":
        enrol(client, services, "ref@college.fr", SCHOOL_A)
        client.post("/etablissement/deconnexion", data={"csrf_token": csrf(client.get("/etablissement/connexion"))})
        assert password_step(client, "ref@college.fr").status_code == 303
    target = "/etablissement/second-facteur" if state == "password_only" else "/etablissement/connexion"
    for endpoint, (method, path) in routes(register, SCHOOL_A, reports[SCHOOL_A]).items():
        answer = _call(client, method, path)
        assert answer.status_code == 303 and answer.headers["Location"].endswith(target), (endpoint, answer.status_code)


def test_console_forms_need_the_csrf_token(client: FlaskClient, services: Services, register: Register,
                                           reports: dict[str, int]) -> None:
    enrol(client, services, "ref@college.fr", SCHOOL_A)
    for endpoint, (method, path) in routes(register, SCHOOL_A, reports[SCHOOL_A]).items():
        if method == "POST":
            assert client.post(path, data={"champ": "email", "valeur": "x@example.fr"}).status_code == 400, endpoint
