"""Recovery through the web client (seeds 003, 004): forgotten identifier by SMS or mail, forgotten password
with a code, same answers whether or not the account exists (A14, A15)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from conftest import DEFAULT_PASSWORD, LoginHelper, csrf_from, page_in, stored_login_url
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "flows"))
from test_activation_support import (  # noqa: E402
    CODE_RE,
    GOOD_PASSWORD,
    MAIL,
    PHONE,
    Browser,
    flow_settings,
    outbox,
    text_of,
    with_contacts,
)

from idp.core.accounts.model import Profile  # noqa: E402
from idp.core.activation.errors import CodeExpired, CodeRejected, StepNotAllowed  # noqa: E402
from idp.core.activation.model import Channel  # noqa: E402
from idp.core.clock import FrozenClock  # noqa: E402
from idp.settings import Settings  # noqa: E402
from idp.storage.models import SsoSessionRow  # noqa: E402
from idp.wiring import Services  # noqa: E402


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    return flow_settings(base_settings)


@pytest.fixture
def sophie(services: Services, account_factory):
    return with_contacts(services, account_factory("Sophie", "Martin"))


def _client(app: Flask, ip: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def _code(services: Services, to: str) -> str:
    body = outbox(services, to)[-1]["body"]
    return CODE_RE.search(body.split(":", 2)[-1]).group(1)


def test_login_links_lead_to_recovery_with_the_request(client: FlaskClient, services: Services) -> None:
    form_url = stored_login_url(client, services)
    page = text_of(client.get(form_url))
    request_id = form_url.split("/login/")[1].split("?")[0]
    assert f'href="/identifiant-oublie?depuis=/login/{request_id}"' in page
    assert f'href="/mot-de-passe-oublie?depuis=/login/{request_id}"' in page
    reset_page = text_of(client.get(f"/mot-de-passe-oublie?depuis=/login/{request_id}"))
    assert f'name="demande" value="{request_id}"' in reset_page
    assert 'name="demande" value=""' in text_of(client.get("/mot-de-passe-oublie?depuis=https://evil.example/"))
    ident_page = text_of(client.get(f"/identifiant-oublie?depuis=/login/{request_id}"))
    for words in ("Je récupère mon identifiant", "Par SMS", "Par mail", "Je contacte l'école ou l'établissement"):
        assert words in ident_page


def test_forgotten_identifier_by_sms_and_by_mail(app: Flask, services: Services, sophie) -> None:
    browser = Browser(_client(app, "10.1.0.1"))
    sent = browser.post("/identifiant-oublie", {"canal": "sms", "telephone": "06 12 34 56 78"})
    assert sent.status_code == 303
    assert "vous allez recevoir votre identifiant" in text_of(browser.client.get(sent.headers["Location"]))
    sms = outbox(services, PHONE)
    assert len(sms) == 1 and sophie.identifier in sms[0]["body"]
    browser.post("/identifiant-oublie", {"canal": "mail", "courriel": MAIL.upper()})
    mail = outbox(services, MAIL)
    assert len(mail) == 1 and sophie.identifier in mail[0]["body"]


def test_forgotten_identifier_same_answer_for_unknown_contacts(app: Flask, services: Services, sophie) -> None:
    answers = []
    for ip, phone in (("10.1.0.2", "06 12 34 56 78"), ("10.1.0.3", "06 11 22 33 44")):
        browser = Browser(_client(app, ip))
        response = browser.post("/identifiant-oublie", {"canal": "sms", "telephone": phone})
        answers.append((response.status_code, response.headers["Location"], response.get_data()))
    assert answers[0] == answers[1]
    assert [m["to"] for m in outbox(services)] == [PHONE]


def test_unverified_contact_receives_nothing(app: Flask, services: Services, account_factory) -> None:
    account = account_factory("Paul", "Roux")
    with services.uow() as uow:
        uow.accounts.set_phone(account.id, "+33611111111", None)
        uow.commit()
    Browser(_client(app, "10.1.0.4")).post("/identifiant-oublie", {"canal": "sms", "telephone": "0611111111"})
    assert outbox(services) == []


def test_password_reset_by_sms_end_to_end(app: Flask, client: FlaskClient, services: Services, sophie) -> None:
    ended_by_hooks: list[str] = []
    services.extras["logout_hooks"].append(lambda session: ended_by_hooks.append(session.id))
    other_device = LoginHelper(app.test_client())
    assert other_device(sophie.identifier).status_code == 303
    with services.uow() as uow:
        before = [s.id for s in uow.sessions.active_for_account(sophie.id, services.clock.now())]
    form_url = stored_login_url(client, services)
    request_id = form_url.split("/login/")[1].split("?")[0]
    browser = Browser(client)
    start = browser.post("/mot-de-passe-oublie", {"identifiant": sophie.identifier, "canal": "sms",
                                                  "demande": request_id},
                         page=f"/mot-de-passe-oublie?demande={request_id}")
    assert start.status_code == 303 and start.headers["Location"] == "/mot-de-passe-oublie/code"
    page = text_of(client.get("/mot-de-passe-oublie/code"))
    assert "Si ce compte existe" in page and "(valable 30 min)" in page
    code = _code(services, PHONE)
    assert browser.post("/mot-de-passe-oublie/code", {"code": code}).headers["Location"] == \
        "/mot-de-passe-oublie/nouveau"
    weak = browser.post("/mot-de-passe-oublie/nouveau", {"mot_de_passe": "sophie", "confirmation": "sophie"})
    assert weak.status_code == 400 and 'role="alert"' in text_of(weak)
    done = browser.post("/mot-de-passe-oublie/nouveau", {"mot_de_passe": GOOD_PASSWORD, "confirmation": GOOD_PASSWORD})
    assert done.status_code == 303 and not any("sso" in c for c in done.headers.getlist("Set-Cookie"))
    final = text_of(client.get("/mot-de-passe-oublie/termine"))
    assert "Votre mot de passe a été modifié" in final
    assert f"/login/{request_id}?login_hint={sophie.identifier}" in final
    with services.uow() as uow:
        live = uow.session.scalars(select(SsoSessionRow).where(SsoSessionRow.ended_at.is_(None))).all()
    assert live == []  # every session ended (A15)
    assert ended_by_hooks == before and before  # through the logout path: single logout, tokens revoked
    notice = outbox(services, MAIL)
    assert len(notice) == 1 and "a été modifié" in notice[0]["body"]  # on the other channel
    fresh = LoginHelper(app.test_client())
    assert fresh(sophie.identifier, DEFAULT_PASSWORD).status_code == 200
    assert fresh(sophie.identifier, GOOD_PASSWORD).status_code == 303
    replay = browser.post("/mot-de-passe-oublie/code", {"code": code}, page="/mot-de-passe-oublie")
    assert replay.status_code in (400, 403)


def test_password_reset_by_mail_uses_a_15_minute_code(services: Services, sophie, clock: FrozenClock) -> None:
    token = services.recovery.start_reset(sophie.identifier, Channel.MAIL, ip="10.1.0.5", browser_id="m" * 43)
    mail = outbox(services, MAIL)
    assert "valable 15 min" in mail[-1]["body"]
    clock.advance(minutes=15, seconds=1)
    with pytest.raises(CodeExpired):
        services.recovery.verify(token, "m" * 43, _code(services, MAIL))


@pytest.mark.parametrize(("channel", "words"), [("sms", "par SMS"), ("mail", "par mail")])
def test_the_code_page_says_where_the_code_went_the_same_for_an_unknown_identifier(
        app: Flask, services: Services, sophie, channel: str, words: str) -> None:
    """The identifier as typed and the channel chosen, never the account's number or address: the pages differ
    only by what was typed, and only the matching account gets a message."""
    pages = []
    for ip, typed in (("10.1.0.6", " " + sophie.identifier.upper()), ("10.1.0.7", "z.personne9")):
        browser = Browser(_client(app, ip))
        start = browser.post("/mot-de-passe-oublie", {"identifiant": typed, "canal": channel})
        page = text_of(browser.client.get(start.headers["Location"]))
        assert f"pour l'identifiant <strong>{typed.strip()}</strong>, {words}." in page
        assert "5678" not in page and " 78" not in page and "@example.fr" not in page  # nothing of the account
        assert f"/mot-de-passe-oublie?identifiant={typed.strip()}" in page  # « Corriger ma demande » keeps it
        page = re.sub(r'value="[^"]{43}"', "", page).replace(typed.strip(), "<typed>")
        pages.append((start.status_code, start.headers["Location"], page))
    assert pages[0] == pages[1]
    assert [m["to"] for m in outbox(services)] == [PHONE if channel == "sms" else MAIL]


def test_the_typed_identifier_is_shown_as_text(app: Flask, services: Services) -> None:
    browser = Browser(_client(app, "10.1.0.8"))
    start = browser.post("/mot-de-passe-oublie", {"identifiant": "<b>x</b>", "canal": "sms"})
    page = browser.client.get(start.headers["Location"]).get_data(as_text=True)
    assert "<strong>&lt;b&gt;x&lt;/b&gt;</strong>" in page and "<b>x</b>" not in page


def test_newer_request_and_password_change_invalidate_a_reset(services: Services, sophie) -> None:
    first = services.recovery.start_reset(sophie.identifier, Channel.SMS, ip="10.1.0.8", browser_id="x" * 43)
    first_code = _code(services, PHONE)
    second = services.recovery.start_reset(sophie.identifier, Channel.SMS, ip="10.1.0.8", browser_id="y" * 43)
    with pytest.raises((StepNotAllowed, CodeExpired, CodeRejected)):
        services.recovery.verify(first, "x" * 43, first_code)
    services.recovery.verify(second, "y" * 43, _code(services, PHONE))
    services.accounts.set_password(sophie.identifier, "Autre-Chose-2027!")  # any change, here the helpdesk's
    with pytest.raises(StepNotAllowed):
        services.recovery.set_password(second, "y" * 43, GOOD_PASSWORD, GOOD_PASSWORD, ip="10.1.0.8")


def test_pupil_recovers_by_confirmed_email(app: Flask, services: Services, account_factory) -> None:
    pupil = account_factory("Noé", "Lefèvre", profile=Profile.STUDENT)
    with services.uow() as uow:
        uow.accounts.set_email(pupil.id, "noe@example.fr", services.clock.now())
        uow.commit()
    browser = Browser(_client(app, "10.1.0.9"))
    browser.post("/mot-de-passe-oublie", {"identifiant": pupil.identifier, "canal": "mail"})
    assert browser.post("/mot-de-passe-oublie/code", {"code": _code(services, "noe@example.fr")}).status_code == 303


def test_recovery_starts_are_limited_per_ip(app: Flask, services: Services) -> None:
    browser = Browser(_client(app, "10.1.0.10"))
    for n in range(10):
        assert browser.post("/mot-de-passe-oublie", {"identifiant": f"a.b{n + 1}", "canal": "sms"},
                            page="/mot-de-passe-oublie").status_code == 303
    refused = browser.post("/mot-de-passe-oublie", {"identifiant": "a.b99", "canal": "sms"},
                           page="/mot-de-passe-oublie")
    assert refused.status_code == 429


def test_recovery_forms_need_csrf_and_send_no_referrer(client: FlaskClient) -> None:
    assert client.post("/mot-de-passe-oublie", data={"identifiant": "a.b1", "canal": "sms"}).status_code == 400
    assert client.post("/identifiant-oublie", data={"canal": "sms", "telephone": "0612345678"}).status_code == 400
    assert client.get("/mot-de-passe-oublie").headers["Referrer-Policy"] == "no-referrer"


def test_forgotten_identifier_with_only_a_mail_typed_goes_by_mail(client: FlaskClient) -> None:
    """Both fields are on the page with SMS chosen first: a mail alone is what the person meant."""
    page = text_of(client.get("/identifiant-oublie"))
    answer = client.post("/identifiant-oublie", data={"csrf_token": csrf_from(page), "canal": "sms",
                                                     "telephone": "", "courriel": "parent@example.fr"})
    assert answer.status_code == 303 and "canal=mail" in answer.headers["Location"]


def _group(page: str, field_id: str) -> str:
    """The DSFR input group (label, input, own error) of one field."""
    return re.search(rf'<div class="fr-input-group[^"]*">(?:(?!</div>).)*id="{field_id}"(?:(?!</div>).)*</div>',
                     page, re.DOTALL).group(0)


def _post_form(client: FlaskClient, path: str, data: dict[str, str]) -> tuple[int, str]:
    page = text_of(client.get(path))
    answer = client.post(path, data={"csrf_token": csrf_from(page), **data})
    return answer.status_code, text_of(answer)


def test_forgotten_identifier_preselects_nothing_and_a_mail_alone_goes_by_mail(client: FlaskClient) -> None:
    page = text_of(client.get("/identifiant-oublie"))
    assert "checked" not in page
    answer = client.post("/identifiant-oublie", data={"csrf_token": csrf_from(page), "telephone": "",
                                                     "courriel": "parent@example.fr"})
    assert answer.status_code == 303 and "canal=mail" in answer.headers["Location"]


def test_forgotten_identifier_errors_are_at_their_fields_with_the_values_kept(client: FlaskClient) -> None:
    status, page = _post_form(client, "/identifiant-oublie", {"canal": "mail", "courriel": "", "telephone": ""})
    group = _group(page, "courriel")
    assert status == 400 and "fr-input-group--error" in group and 'id="courriel-erreur"' in group
    assert "Indiquez l'adresse mail de votre compte." in group and "invalide" not in group
    assert 'href="#courriel"' in page and 'aria-describedby="courriel-aide courriel-erreur"' in group
    status, page = _post_form(client, "/identifiant-oublie", {"canal": "mail", "courriel": "parent@exemple"})
    group = _group(page, "courriel")
    assert status == 400 and "invalide" in group and 'value="parent@exemple"' in group
    assert 'id="canal_mail" name="canal" value="mail" checked' in page
    status, page = _post_form(client, "/identifiant-oublie", {"canal": "sms", "telephone": "12"})
    group = _group(page, "telephone")
    assert status == 400 and "fr-input-group--error" in group and 'value="12"' in group
    status, page = _post_form(client, "/identifiant-oublie", {"telephone": "06 12 34 56 78",
                                                              "courriel": "parent@example.fr"})
    assert status == 400 and "fr-fieldset--error" in page and 'id="canal-erreur"' in page
    assert 'href="#canal_sms"' in page and 'value="06 12 34 56 78"' in page


def test_forgotten_password_empty_identifier_is_said_at_the_field(client: FlaskClient) -> None:
    status, page = _post_form(client, "/mot-de-passe-oublie", {"identifiant": " ", "canal": "mail"})
    group = _group(page, "identifiant")
    assert status == 400 and "Indiquez votre identifiant (au format p.nomXX)." in group
    assert "fr-input-group--error" in group and 'id="canal_mail" name="canal" value="mail" checked' in page
    status, page = _post_form(client, "/mot-de-passe-oublie", {"identifiant": "s.martin1", "canal": "pigeon"})
    assert status == 400 and "fr-fieldset--error" in page and 'value="s.martin1"' in _group(page, "identifiant")


@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_the_code_page_in_the_page_language(app: Flask, services: Services, sophie, lang: str) -> None:
    browser = Browser(_client(app, "10.1.0.9"))
    browser.client.set_cookie("idp_lang", lang)
    start = browser.post("/mot-de-passe-oublie", {"identifiant": sophie.identifier, "canal": "mail"})
    page = page_in(browser.client.get(start.headers["Location"]), lang,
                   "Ce n'est pas le bon identifiant ? Corriger ma demande")
    assert f"<strong>{sophie.identifier}</strong>" in page
