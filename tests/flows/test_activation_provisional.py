"""Provisional credentials (seed 001, "Parcours 3"): letters issued by the CLI, then the first login."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import stat
from pathlib import Path

import pytest
from conftest import LoginHelper, stored_login_url
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from test_activation_support import (
    GOOD_PASSWORD,
    Browser,
    add_parent,
    add_school,
    add_student,
    flow_settings,
    make_family,
    outbox,
    text_of,
)

from idp.core.accounts.model import AccountState, Profile
from idp.core.clock import FrozenClock
from idp.settings import Settings
from idp.storage.models import AccountRow, RepresentativeRow, SsoSessionRow, StudentRow
from idp.wiring import Services


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    return flow_settings(base_settings)


def _class(services: Services) -> None:
    add_school(services, "0690026D", "Lycée du Parc", "lycee", "Lyon")
    noe = add_student(services, "0690026D", "130000001AA", "Lefèvre", "Noé", dt.date(2009, 5, 6), "2C")
    ines = add_student(services, "0690026D", "130000002BB", "Œuvrard", "Inès", dt.date(2009, 7, 8), "2C")
    add_student(services, "0690026D", "130000003CC", "Autre", "Classe", dt.date(2009, 1, 1), "2D")
    add_parent(services, "0690026D", "P1", "Lefèvre", "Karim", "+33687654321", [noe])
    add_parent(services, "0690026D", "P2", "Œuvrard", "Claire", "", [ines])


def _issued(services: Services, **kwargs: object):
    report = services.provisional.issue("0690026D", **kwargs)  # type: ignore[arg-type]
    return {f"{c.given_names} {c.family_name}": c for c in report.issued}


def test_cli_writes_letters_and_csv_for_a_class(runner, services: Services, tmp_path: Path) -> None:
    _class(services)
    result = runner("account", "issue-provisional", "--uai", "0690026D", "--class", "2C", "--parents",
                    "--out", str(tmp_path / "lettres"))
    assert result.exit_code == 0, result.output
    assert "4 identifiant(s) provisoire(s) : 2 élève(s), 2 représentant(s)" in result.output
    pdf = tmp_path / "lettres" / "identifiants-0690026D-2C.pdf"
    table = tmp_path / "lettres" / "identifiants-0690026D-2C.csv"
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.read_bytes().count(b"/Type /Page\n") + \
        pdf.read_bytes().count(b"/Type /Page\r") + pdf.read_bytes().count(b"/Type /Page>") >= 0
    assert stat.S_IMODE(pdf.stat().st_mode) == 0o600 and stat.S_IMODE(table.stat().st_mode) == 0o600
    rows = list(csv.DictReader(table.read_text(encoding="utf-8-sig").splitlines(), delimiter=";"))
    assert {r["nom"] for r in rows} == {"Lefèvre", "Œuvrard"} and len(rows) == 4
    parent = next(r for r in rows if r["prenoms"] == "Karim")
    assert parent["enfants"] == "Noé Lefèvre" and parent["profil"] == "Représentant légal"
    assert all(len(r["mot_de_passe_provisoire"]) == 14 for r in rows)
    with services.uow() as uow:
        states = set(uow.session.scalars(select(AccountRow.state)))
        expiry = uow.session.scalar(select(AccountRow.provisional_expires_at))
        linked = uow.session.scalars(select(StudentRow.account_id).where(StudentRow.class_code == "2C")).all()
    assert states == {"provisional"} and all(linked)
    assert dt.timedelta(days=91) < expiry - dt.datetime.now(dt.UTC) <= dt.timedelta(days=92)
    again = runner("account", "issue-provisional", "--uai", "0690026D", "--ine", "130000001AA", "--out",
                   str(tmp_path / "lettres"))
    assert "1 renouvelé(s)" in again.output
    with services.uow() as uow:
        assert uow.session.scalar(select(AccountRow.id).where(AccountRow.id > 4)) is None  # reissued, not created


def test_pdf_renders_names_outside_latin1(services: Services, tmp_path: Path) -> None:
    from idp.delivery.letters import write_letters

    _class(services)
    issued = list(_issued(services, class_code="2C").values())
    write_letters(tmp_path / "l.pdf", issued, product="Compte scolaire", login_url="https://idp.test/login")
    assert (tmp_path / "l.pdf").stat().st_size > 1000


def test_pupil_first_login_then_services(client: FlaskClient, services: Services, login: LoginHelper) -> None:
    _class(services)
    noe = _issued(services, ine="130000001AA")["Noé Lefèvre"]
    form_url = stored_login_url(client, services, "eleve")
    request_id = form_url.split("/login/")[1].split("?")[0]
    answer = login.submit(form_url, noe.identifier, noe.password)
    assert answer.status_code == 303 and answer.headers["Location"] == f"/activation/premiere-connexion/{request_id}"
    assert client.get("/services").headers["Location"] == "/activation"  # nothing else opens
    assert client.get("/compte").status_code == 303
    page = text_of(client.get(answer.headers["Location"]))
    assert "Je crée mon compte" in page and "Ma date de naissance" in page and noe.identifier in page
    checklist = json.loads(re.search(r"data-checklist='([^']*)'", page).group(1))  # the live checklist's data
    assert checklist["years"] == ["2009"] and {"noe", "lefevre"} <= set(checklist["words"])
    browser = Browser(client)
    url = answer.headers["Location"]
    form = {"mot_de_passe": noe.password, "confirmation": noe.password, "jour": "06", "mois": "05", "annee": "2009"}
    same = browser.post(url, form)
    assert same.status_code == 400 and "différent du mot de passe provisoire" in text_of(same)
    wrong_date = browser.post(url, {**form, "mot_de_passe": GOOD_PASSWORD, "confirmation": GOOD_PASSWORD, "jour": "07"})
    assert wrong_date.status_code == 400 and "date de naissance" in text_of(wrong_date)
    done = browser.post(url, {**form, "mot_de_passe": GOOD_PASSWORD, "confirmation": GOOD_PASSWORD,
                              "courriel": "noe.lefevre@example.fr"})
    assert done.status_code == 303 and done.headers["Location"] == "/activation/termine"
    new_cookie = next(c for c in done.headers.getlist("Set-Cookie") if c.startswith("__Host-sso="))
    old_cookie = next(c for c in answer.headers.getlist("Set-Cookie") if c.startswith("__Host-sso="))
    assert new_cookie.split(";")[0] != old_cookie.split(";")[0]  # a new session id, never the provisional one
    with services.uow() as uow:
        sessions = uow.session.execute(select(SsoSessionRow.auth_method, SsoSessionRow.ended_at)).all()
    assert sorted((method, ended is None) for method, ended in sessions) == [("password", True), ("provisional", False)]
    success = text_of(client.get("/activation/termine"))
    assert "Votre compte a été activé avec succès" in success and noe.identifier in success
    go = client.get("/activation/acceder")
    assert go.headers["Location"] == f"/portal/resume/{request_id}"
    assert client.get(go.headers["Location"]).headers["Location"] == "/services"
    assert client.get("/services").status_code == 200
    with services.uow() as uow:
        account = uow.accounts.by_identifier(noe.identifier)
        assert account.state is AccountState.ACTIVE and not account.email_verified
    mail = outbox(services, "noe.lefevre@example.fr")
    assert len(mail) == 1 and "confirmez" in mail[0]["subject"]
    link = re.search(r"https://idp\.test(/courriel/\S+)", mail[0]["body"]).group(1)
    confirmed = client.get(link)
    assert confirmed.status_code == 303 and confirmed.headers["Location"] == "/courriel/confirme"
    assert "confirmée" in text_of(client.get("/courriel/confirme"))
    assert client.get(link).status_code == 400  # single use
    with services.uow() as uow:
        assert uow.accounts.by_identifier(noe.identifier).email_verified
    fresh = LoginHelper(client.application.test_client())
    assert fresh(noe.identifier, noe.password, path="/login?profil=eleve").status_code == 200  # old one dead
    assert fresh(noe.identifier, GOOD_PASSWORD, path="/login?profil=eleve").status_code == 303


def test_email_link_expires_after_24_hours(client: FlaskClient, services: Services, login: LoginHelper,
                                           clock: FrozenClock) -> None:
    _class(services)
    noe = _issued(services, ine="130000001AA")["Noé Lefèvre"]
    url = login(noe.identifier, noe.password, path="/login?profil=eleve").headers["Location"]
    Browser(client).post(url, {"mot_de_passe": GOOD_PASSWORD, "confirmation": GOOD_PASSWORD, "jour": "06",
                               "mois": "05", "annee": "2009", "courriel": "noe@example.fr"})
    link = re.search(r"(/courriel/\S+)", outbox(services, "noe@example.fr")[0]["body"]).group(1)
    clock.advance(hours=24, seconds=1)
    assert client.get(link).status_code == 400


def test_three_wrong_birth_dates_end_the_provisional_session(client: FlaskClient, services: Services,
                                                             login: LoginHelper) -> None:
    _class(services)
    noe = _issued(services, ine="130000001AA")["Noé Lefèvre"]
    url = login(noe.identifier, noe.password, path="/login?profil=eleve").headers["Location"]
    browser = Browser(client)
    form = {"mot_de_passe": GOOD_PASSWORD, "confirmation": GOOD_PASSWORD, "jour": "01", "mois": "01", "annee": "2001"}
    assert browser.post(url, form).status_code == 400
    assert browser.post(url, form).status_code == 400
    assert browser.post(url, form).status_code == 403
    assert client.get(url).status_code == 400  # the provisional session is over


def test_parent_letter_requires_email_and_a_child_birth_date(client: FlaskClient, services: Services,
                                                            login: LoginHelper) -> None:
    _class(services)
    karim = _issued(services, ine="130000001AA", parents=True)["Karim Lefèvre"]
    url = login(karim.identifier, karim.password).headers["Location"]
    page = text_of(client.get(url))
    assert "La date de naissance de l'un de" in page and "J'ai déjà un compte" in page
    browser = Browser(client)
    form = {"mot_de_passe": GOOD_PASSWORD, "confirmation": GOOD_PASSWORD, "jour": "06", "mois": "05", "annee": "2009"}
    no_mail = browser.post(url, form)
    assert no_mail.status_code == 400 and "adresse mail" in text_of(no_mail)
    ok = browser.post(url, {**form, "courriel": "karim@example.fr"})
    assert ok.status_code == 303


def test_second_letter_attaches_the_child_to_the_existing_account(client: FlaskClient, services: Services,
                                                                  login: LoginHelper, account_factory) -> None:
    family = make_family(services)
    sophie = account_factory("Sophie", "Martin")
    with services.uow() as uow:
        uow.accounts.link_register(sophie.id, representatives=[family.parent_records[0]])
        uow.commit()
    letter = {c.given_names: c for c in services.provisional.issue("0690026D", parents=True).issued}["Sophie Anne"]
    assert letter.profile is Profile.PARENT
    url = login(letter.identifier, letter.password).headers["Location"]
    browser = Browser(client)
    bad = browser.post(url.replace("premiere-connexion", "rattacher"),
                       {"identifiant": sophie.identifier, "mot_de_passe_existant": "pas le bon"}, page=url)
    assert bad.status_code == 401
    done = browser.post(url.replace("premiere-connexion", "rattacher"),
                        {"identifiant": sophie.identifier, "mot_de_passe_existant": "Velo-Rouge-Garonne-42"}, page=url)
    assert done.status_code == 303 and done.headers["Location"] == "/activation/termine"
    assert sophie.identifier in text_of(client.get("/activation/termine"))
    with services.uow() as uow:
        owners = set(uow.session.scalars(select(RepresentativeRow.account_id)))
        records = uow.accounts.linked_records(sophie.id)
        closed = uow.accounts.by_identifier(letter.identifier)
    assert owners == {sophie.id} and {r["uai"] for r in records} == {"0301234A", "0690026D"}
    assert closed.state is AccountState.CLOSED


def test_a_pupils_account_takes_no_second_letter(client: FlaskClient, services: Services, login: LoginHelper,
                                                account_factory) -> None:
    """The right password of a pupil's account: named as such, nothing attached, no failure counted."""
    make_family(services)
    pupil = account_factory("Léo", "Martin", profile=Profile.STUDENT)
    letter = {c.given_names: c for c in services.provisional.issue("0690026D", parents=True).issued}["Sophie Anne"]
    url = login(letter.identifier, letter.password).headers["Location"]
    for _ in range(6):  # beyond the free failures: a counted failure would lock the pupil's identifier
        refused = Browser(client).post(url.replace("premiere-connexion", "rattacher"),
                                       {"identifiant": pupil.identifier, "mot_de_passe_existant": "Velo-Rouge-Garonne-42"},
                                       page=url)
        assert refused.status_code == 401 and "celui d'un compte « Élève »" in text_of(refused)
    client.delete_cookie("__Host-sso", path="/")
    assert login(pupil.identifier, "Velo-Rouge-Garonne-42", path="/login?profil=eleve").status_code == 303


def test_expired_provisional_credentials_are_refused(client: FlaskClient, services: Services, login: LoginHelper,
                                                     clock: FrozenClock) -> None:
    _class(services)
    noe = _issued(services, ine="130000001AA")["Noé Lefèvre"]
    clock.advance(days=92, seconds=1)
    refused = login(noe.identifier, noe.password, path="/login?profil=eleve")
    assert refused.status_code == 403 and "expiré" in text_of(refused)


def test_provisional_session_cannot_answer_a_service(app: Flask, client: FlaskClient, services: Services,
                                                     login: LoginHelper) -> None:
    _class(services)
    noe = _issued(services, ine="130000001AA")["Noé Lefèvre"]
    login(noe.identifier, noe.password, path="/login?profil=eleve")
    again = client.get("/login?profil=eleve")
    assert again.status_code == 200 and "mot_de_passe" in again.get_data(as_text=True)  # a new login, nothing released
