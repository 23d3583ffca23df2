"""Messages the console sends a family go out in the language stored on its account (issue 19): Arabic or
Turkish when recorded, French when nothing is; the family page and the inbox tell staff which language it is."""

from __future__ import annotations

import html
import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from test_activation_support import outbox

from idp.storage.models import AccountRow
from idp.storage.staff_inbox_store import HelpRequestRow
from idp.wiring import Services

from .staff_support import SCHOOL_A, Register, csrf, enrol

SOPHIE_PHONE, SOPHIE_MAIL = "+33612345678", "sophie.martin@example.fr"


def _store_language(services: Services, account_id: int, language: str | None) -> None:
    with services.uow() as uow:
        if language is not None:
            uow.accounts.set_language(account_id, language)
        uow.commit()


def _resend(client: FlaskClient, services: Services, register: Register) -> None:
    enrol(client, services, "ref@college.fr")
    base = f"/etablissement/eleve/{register.students['lea']}/rep/{register.reps['sophie']}"
    assert client.post(f"{base}/identifiant", data={"csrf_token": csrf(client.get("/etablissement"))}).status_code == 303


@pytest.mark.parametrize(("language", "words"), [
    ("ar", "اسم المستخدم الخاص بك هو"),
    ("tr", "kullanıcı adınız"),
    (None, "votre identifiant est"),
    ("de", "votre identifiant est"),  # a code the catalogues do not know: French
])
def test_the_identifier_sent_again_by_sms_is_in_the_account_language(
        client: FlaskClient, services: Services, register: Register, language: str | None, words: str) -> None:
    _store_language(services, register.accounts["sophie"], language)
    _resend(client, services, register)
    (sms,) = outbox(services, SOPHIE_PHONE)
    assert words in sms["body"]
    if language in ("ar", "tr"):
        assert "votre identifiant" not in sms["body"]


@pytest.mark.parametrize(("language", "subject", "body"), [
    ("tr", "kullanıcı adınız", "kullanıcı adınız"),
    ("ar", "اسم المستخدم الخاص بك", "(الولي الشرعي)"),
    (None, "votre identifiant", "(Représentant légal)"),
])
def test_the_identifier_sent_again_by_mail_has_subject_and_body_in_the_account_language(
        client: FlaskClient, services: Services, register: Register, language: str | None, subject: str,
        body: str) -> None:
    sophie = register.accounts["sophie"]
    with services.uow() as uow:
        uow.accounts.set_email(sophie, SOPHIE_MAIL, services.clock.now())
        uow.commit()
    _store_language(services, sophie, language)
    _resend(client, services, register)
    (mail,) = outbox(services, SOPHIE_MAIL)
    assert subject in mail["subject"] and body in mail["body"]
    # The console itself stays French (flash and page), whatever the family's language.
    page = html.unescape(client.get(f"/etablissement/eleve/{register.students['lea']}").get_data(as_text=True))
    assert "L'identifiant a été envoyé" in page and '<html lang="fr"' in page


def test_the_family_page_shows_each_account_language(client: FlaskClient, services: Services,
                                                     register: Register) -> None:
    _store_language(services, register.accounts["sophie"], "ar")
    enrol(client, services, "ref@college.fr")
    page = html.unescape(client.get(f"/etablissement/eleve/{register.students['lea']}").get_data(as_text=True))
    facts = re.findall(r"<dt>Langue</dt><dd>([^<]+)</dd>", page)
    assert facts == ["non connue : les messages envoyés depuis la console partent en français",  # Léa (no language)
                     "arabe : les messages envoyés depuis la console partent dans cette langue"]  # Sophie


def test_a_request_for_help_keeps_its_page_language_for_the_inbox(client: FlaskClient, services: Services,
                                                                   register: Register) -> None:
    client.set_cookie("idp_lang", "tr")
    page = client.get("/aide/demande")
    assert '<html lang="tr"' in page.get_data(as_text=True)
    sent = client.post("/aide/demande", data={"csrf_token": csrf(page), "nom": "Durand", "prenom": "Paul",
                                              "uai": SCHOOL_A, "enfants": "Tom Durand, 5B",
                                              "contact": "06 11 22 33 44", "message": ""})
    assert sent.status_code == 200
    with services.uow() as uow:
        assert uow.session.scalar(select(HelpRequestRow.language)) == "tr"
        # Nothing is stored on any account: a request for help is made without one.
        assert set(uow.session.scalars(select(AccountRow.language))) == {None}
    enrol(client, services, "ref@college.fr")
    inbox = html.unescape(client.get("/etablissement/boite").get_data(as_text=True))
    assert "langue de la demande : turc" in inbox
