"""Finding a family and the family page: the register's view, accounts, activation history with reasons, and
the help actions (letter, unlock, sessions, identifier, contact correction that a later import overrides)."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select, update
from test_activation_support import Browser, outbox

from idp.core.authn.model import AuthMethod
from idp.core.authn.sessions import new_session
from idp.core.clock import FrozenClock
from idp.storage.models import AccountRow, AuditEventRow, RepresentativeRow
from idp.wiring import Services

from .staff_support import Register, csrf, enrol


def _text(answer) -> str:  # noqa: ANN001
    import html

    return html.unescape(answer.get_data(as_text=True))


def test_search_by_every_key(client: FlaskClient, services: Services, register: Register) -> None:
    enrol(client, services, "ref@college.fr")
    with services.uow() as uow:
        sophie_identifier = uow.accounts.get(register.accounts["sophie"]).identifier
    for q, expected in (("martin", "Martin Léa"), ("Léa", "Martin Léa"), ("120456789AC", "Durand Tom"),
                        ("5a", "Petit Zoé"), (sophie_identifier, "Martin Léa"), ("5678", "Martin Léa"),
                        ("Paul", "Durand Tom")):
        page = _text(client.get(f"/etablissement/recherche?q={q}"))
        assert expected in page, q
    assert "0 élève(s) trouvé(s)" in _text(client.get("/etablissement/recherche?q=100%25"))


def test_family_page_shows_register_accounts_and_activation_reasons(client: FlaskClient, services: Services,
                                                                    register: Register) -> None:
    # Sophie types a wrong number (the register has another one), then the birth dates go wrong three times.
    family = Browser(client)
    family.start_activation("Martin", "Sophie", "06 99 99 99 99")
    enrol(client, services, "ref@college.fr")
    page = _text(client.get(f"/etablissement/eleve/{register.students['lea']}"))
    assert "Collège Claude Chappe (0340011C) – classe 5A" in page and "120456789AB" in page
    assert "Sophie MARTIN" in page and "+33612345678" in page and "sophie@example.fr" in page
    assert 'fr-badge--success">Actif</span> identifiant <strong>' in page and "jamais" in page  # state as a badge
    assert "Numéro saisi (+33 6 •• •• •• 99) différent de celui du registre" in page
    assert "Fiche consultée" not in page  # this very view is audited after the page is read


def test_history_lists_code_expiry_lockout_and_staff_actions(client: FlaskClient, services: Services,
                                                             register: Register, login: Any) -> None:
    family = Browser(client)
    family.start_activation("Martin", "Sophie", "06 12 34 56 78")
    clock = services.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(minutes=31)
    family.code("ABCDEF")  # the code has expired
    sophie = register.accounts["sophie"]
    with services.uow() as uow:
        identifier = uow.accounts.get(sophie).identifier
    for _ in range(5):
        login(identifier, "Mauvais-mot-de-passe-1")
    enrol(client, services, "ref@college.fr")
    page = _text(client.get(f"/etablissement/eleve/{register.students['lea']}"))
    assert "Code SMS expiré" in page
    assert "Compte bloqué après des échecs de connexion jusqu'au" in page
    assert "Débloquer le compte" in page
    unlock = client.post(f"/etablissement/eleve/{register.students['lea']}/rep/{register.reps['sophie']}/deverrouiller",
                         data={"csrf_token": csrf(client.get("/etablissement"))})
    assert unlock.status_code == 303
    page = _text(client.get(f"/etablissement/eleve/{register.students['lea']}"))
    assert "Compte débloqué par l'établissement" in page and "ref" in page
    assert login(identifier).status_code == 303  # the right password works at once


def test_letter_for_one_pupil_and_one_parent(client: FlaskClient, services: Services, register: Register) -> None:
    enrol(client, services, "ref@college.fr")
    token = csrf(client.get("/etablissement"))
    tom, paul = register.students["tom"], register.reps["paul"]
    pupil = client.post(f"/etablissement/eleve/{tom}/student/{tom}/courrier", data={"csrf_token": token})
    assert pupil.status_code == 200 and pupil.mimetype == "application/pdf" and pupil.data.startswith(b"%PDF")
    parent = client.post(f"/etablissement/eleve/{tom}/rep/{paul}/courrier", data={"csrf_token": token})
    assert parent.status_code == 200 and parent.data.startswith(b"%PDF")
    with services.uow() as uow:
        states = dict(uow.session.execute(select(AccountRow.given_names, AccountRow.state)).all())
        events = uow.session.scalars(select(AuditEventRow.event).where(AuditEventRow.event == "provisional.issued"))
    assert states["Tom"] == "provisional" and states["Paul"] == "provisional"
    assert len(list(events)) == 2  # one account each: nobody else in the family got a letter


def test_end_sessions_and_resend_identifier(client: FlaskClient, services: Services, register: Register) -> None:
    sophie = register.accounts["sophie"]
    with services.uow() as uow:
        _, session = new_session(sophie, AuthMethod.PASSWORD, services.flow.session_policy, services.clock.now(),
                                 "203.0.113.9", "")
        uow.sessions.add(session)
        uow.commit()
    enrol(client, services, "ref@college.fr")
    base = f"/etablissement/eleve/{register.students['lea']}/rep/{register.reps['sophie']}"
    token = csrf(client.get("/etablissement"))
    assert client.post(f"{base}/sessions", data={"csrf_token": token}).status_code == 303
    with services.uow() as uow:
        assert uow.sessions.active_for_account(sophie, services.clock.now()) == []
    assert client.post(f"{base}/identifiant", data={"csrf_token": token}).status_code == 303
    sms = outbox(services, "+33612345678")
    assert sms and "votre identifiant est" in sms[-1]["body"]


def test_contact_correction_is_kept_apart_and_the_next_import_wins(client: FlaskClient, services: Services,
                                                                   register: Register) -> None:
    enrol(client, services, "ref@college.fr")
    tom, paul = register.students["tom"], register.reps["paul"]
    token = csrf(client.get("/etablissement"))
    bad = client.post(f"/etablissement/eleve/{tom}/rep/{paul}/correction",
                      data={"csrf_token": token, "champ": "mobile_phone", "valeur": "12"})
    assert bad.status_code == 400 and "n'est pas valide" in _text(bad)
    done = client.post(f"/etablissement/eleve/{tom}/rep/{paul}/correction",
                       data={"csrf_token": token, "champ": "mobile_phone", "valeur": "06 11 22 33 44"})
    assert done.status_code == 303
    with services.uow() as uow:
        assert uow.session.get(RepresentativeRow, paul).mobile_phone == ""  # the register is untouched
    page = _text(client.get(f"/etablissement/eleve/{tom}"))
    assert "Correction de l'établissement (téléphone)" in page and "+33611223344" in page
    assert "Remplacée par le registre" not in page
    clock = services.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(minutes=5)
    with services.uow() as uow:  # the next import carries a number
        uow.session.execute(update(RepresentativeRow).where(RepresentativeRow.id == paul).values(
            mobile_phone="+33655555555", updated_at=clock.now()))
        uow.commit()
    page = _text(client.get(f"/etablissement/eleve/{tom}"))
    assert "Remplacée par le registre" in page


def test_staff_actions_are_audited_with_who_what_when(client: FlaskClient, services: Services,
                                                      register: Register) -> None:
    enrol(client, services, "ref@college.fr")
    client.get(f"/etablissement/eleve/{register.students['lea']}")
    with services.uow() as uow:
        row = uow.session.execute(select(AuditEventRow.details, AuditEventRow.at).where(
            AuditEventRow.event == "staff.family_viewed")).one()
    assert re.search(r'"staff": \d+', row.details) and row.at == services.clock.now()
    assert f"student:{register.students['lea']}" in row.details


def test_a_live_correction_is_the_number_activation_uses(client: FlaskClient, services: Services,
                                                         register: Register) -> None:
    enrol(client, services, "ref@college.fr")
    tom, paul = register.students["tom"], register.reps["paul"]
    token = csrf(client.get("/etablissement"))
    client.post(f"/etablissement/eleve/{tom}/rep/{paul}/correction",
                data={"csrf_token": token, "champ": "mobile_phone", "valeur": "06 11 22 33 44"})
    family = FlaskClient(client.application, use_cookies=True)
    Browser(family).start_activation("Durand", "Paul", "06 11 22 33 44")  # absent from the register
    assert len(outbox(services, "+33611223344")) == 1
    # A correction replaces a wrong register number: the old number no longer receives codes.
    lea, sophie = register.students["lea"], register.reps["sophie"]
    with services.uow() as uow:  # Sophie's account aside, so that her activation would send a code
        uow.session.execute(update(RepresentativeRow).where(RepresentativeRow.id == sophie).values(account_id=None))
        uow.commit()
    client.post(f"/etablissement/eleve/{lea}/rep/{sophie}/correction",
                data={"csrf_token": token, "champ": "mobile_phone", "valeur": "06 99 88 77 66"})
    Browser(FlaskClient(client.application, use_cookies=True)).start_activation("Martin", "Sophie", "06 12 34 56 78")
    assert outbox(services, "+33612345678") == []
    Browser(FlaskClient(client.application, use_cookies=True)).start_activation("Martin", "Sophie", "06 99 88 77 66")
    assert len(outbox(services, "+33699887766")) == 1
