"""Parent self-enrolment by SMS, end to end through the web client with the outbox backend (seeds 000, 002,
003): from a login a front-end began, "Je n'ai pas de compte" … "Accéder à mes services" resumes it."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from conftest import LoginHelper, stored_login_url
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from test_activation_support import (
    GOOD_PASSWORD,
    PHONE,
    Browser,
    add_parent,
    add_student,
    flow_settings,
    last_code,
    make_family,
    outbox,
    text_of,
)

from idp.core.accounts.model import AccountState, NewAccount, Profile
from idp.core.clock import FrozenClock
from idp.settings import Settings
from idp.storage.activation_store import WrongLinkReportRow
from idp.storage.models import AccountRow, AuditEventRow, RepresentativeRow, StudentLinkRow
from idp.wiring import Services

OTHER_PHONE = "+33698765432"


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    return flow_settings(base_settings)


@pytest.fixture
def browser(client: FlaskClient) -> Browser:
    return Browser(client)


def _dates(browser: Browser, family_children: dict[str, dt.date]) -> dict[int, tuple[str, dt.date | None]]:
    order = browser.child_order()
    return {i: ("oui", next(d for n, d in family_children.items() if name.startswith(n)))
            for i, name in enumerate(order)}


def test_parent_route_from_a_front_end_login_back_to_the_service(client: FlaskClient, services: Services,
                                                                  browser: Browser) -> None:
    family = make_family(services)
    form_url = stored_login_url(client, services)  # a request stored as a protocol front-end stores it
    request_id = form_url.split("/login/")[1].split("?")[0]
    login_page = text_of(client.get(form_url))
    link = re.search(r'href="([^"]*creer-mon-compte[^"]*)"', login_page).group(1)
    assert link == f"/creer-mon-compte?depuis=/login/{request_id}"
    step1 = text_of(client.get(link))
    assert f'name="demande" value="{request_id}"' in step1
    for words in ("Je confirme mon identité", "Nom", "Prénom", "N° de téléphone portable", "FR +33"):
        assert words in step1
    answer = browser.start_activation("martin", "SOPHIE", "06 12 34 56 78", request_id=request_id)
    assert answer.status_code == 303 and answer.headers["Location"] == "/creer-mon-compte/code"
    page = text_of(client.get("/creer-mon-compte/code"))
    assert "Un code de sécurité a été envoyé" in page and "(valable 30 min)" in page and "+33 6 •• •• •• 78" in page
    sms = outbox(services, PHONE)
    assert len(sms) == 1 and "valable 30 min" in sms[0]["body"]
    code = last_code(services)
    assert code not in page
    assert browser.code(code.lower()).headers["Location"] == "/creer-mon-compte/eleves"
    children_page = text_of(client.get("/creer-mon-compte/eleves"))
    for words in ("Je confirme mon lien avec l'élève", "Je suis le représentant légal de cet élève",
                  "Je ne suis pas le représentant légal de cet élève", "Collège Claude Chappe", "Lycée du Parc"):
        assert words in children_page
    assert browser.children(_dates(browser, family.children)).headers["Location"] == "/creer-mon-compte/mot-de-passe"
    pw_page = text_of(client.get("/creer-mon-compte/mot-de-passe"))
    assert "Une lettre majuscule" in pw_page and 'src="/static/activation_password.js"' in pw_page
    assert "<script>" not in pw_page
    done = browser.password()
    assert done.status_code == 303 and done.headers["Location"] == "/creer-mon-compte/termine"
    assert any(c.startswith("__Host-sso=") for c in done.headers.getlist("Set-Cookie"))
    success = text_of(client.get("/creer-mon-compte/termine"))
    assert "Votre compte a été activé avec succès" in success and "Accéder à mes services" in success
    identifier = re.search(r'id="identifiant"><strong>([a-z.0-9]+)</strong>', success).group(1)
    assert identifier.startswith("s.martin")
    go = client.get("/creer-mon-compte/acceder")
    assert go.status_code == 303 and go.headers["Location"] == f"/portal/resume/{request_id}"
    resumed = client.get(go.headers["Location"])
    assert resumed.status_code == 303 and resumed.headers["Location"] == "/services"
    services_page = text_of(client.get("/services"))
    assert identifier in services_page and "Mes services" in services_page
    with services.uow() as uow:
        account = uow.accounts.by_identifier(identifier)
        assert account.state is AccountState.ACTIVE and account.profile is Profile.PARENT
        assert account.phone == PHONE and account.phone_verified
        records = uow.accounts.linked_records(account.id)
        assert {r["uai"] for r in records} == {"0301234A", "0690026D"}
        linked = uow.session.scalars(select(RepresentativeRow.account_id)).all()
        assert linked == [account.id, account.id]


def test_then_the_new_password_logs_in(client: FlaskClient, services: Services, browser: Browser, app) -> None:
    family = make_family(services)
    browser.start_activation()
    browser.code(last_code(services))
    browser.children(_dates(browser, family.children))
    browser.password()
    identifier = re.search(r'<strong>([a-z]\.[a-z]+[0-9]+)</strong>', text_of(client.get("/creer-mon-compte/termine"))).group(1)
    other_browser = LoginHelper(app.test_client())
    assert other_browser(identifier, GOOD_PASSWORD).status_code == 303


def test_unknown_person_gets_the_same_page_and_no_sms(client: FlaskClient, services: Services,
                                                      browser: Browser) -> None:
    make_family(services)
    answer = browser.start_activation("Durand", "Sophie", "06 12 34 56 78")
    assert answer.status_code == 303 and answer.headers["Location"] == "/creer-mon-compte/code"
    page = text_of(client.get("/creer-mon-compte/code"))
    assert "Un code de sécurité a été envoyé" in page
    assert outbox(services) == []
    # Guessing stays useless: whatever is typed, "code incorrect".
    wrong = browser.code("ABCDEF")
    assert wrong.status_code == 400 and "Code incorrect" in text_of(wrong)


def test_sms_goes_only_to_the_register_number_and_only_to_mobiles(client: FlaskClient, services: Services,
                                                                  browser: Browser) -> None:
    make_family(services, phone="+33123456789")  # a landline in the register
    browser.start_activation("Martin", "Sophie", "01 23 45 67 89")
    assert outbox(services) == []


def test_overseas_number_typed_nationally_matches(client: FlaskClient, services: Services, browser: Browser) -> None:
    make_family(services, phone="+590690123456")
    browser.start_activation("Martin", "Sophie", "0690 12 34 56")
    assert len(outbox(services, "+590690123456")) == 1


def test_parent_with_an_account_is_told_so(client: FlaskClient, services: Services, browser: Browser,
                                           account_factory) -> None:
    make_family(services)
    existing = account_factory("Sophie", "Martin")
    with services.uow() as uow:
        uow.accounts.link_register(existing.id, representatives=[("0301234A", "R1")])
        uow.commit()
    browser.start_activation()
    assert browser.code(last_code(services)).headers["Location"] == "/creer-mon-compte/compte-existant"
    page = text_of(client.get("/creer-mon-compte/compte-existant"))
    assert "Vous avez déjà un compte" in page and existing.identifier in page and "Mot de passe oublié ?" in page
    assert browser.password().status_code == 403  # a later step cannot be posted (A09)
    with services.uow() as uow:
        assert uow.session.scalar(select(AccountRow.id).where(AccountRow.id != existing.id)) is None


def test_wrong_link_is_reported_and_the_child_skipped(client: FlaskClient, services: Services,
                                                      browser: Browser) -> None:
    family = make_family(services)
    browser.start_activation()
    browser.code(last_code(services))
    order = browser.child_order()
    answers = {i: (("non", None) if name.startswith("Hugo") else ("oui", family.children["Léa"]))
               for i, name in enumerate(order)}
    assert browser.children(answers).headers["Location"] == "/creer-mon-compte/mot-de-passe"
    browser.password()
    with services.uow() as uow:
        reports = uow.session.scalars(select(WrongLinkReportRow)).all()
        assert [(r.uai, r.status) for r in reports] == [("0690026D", "open")]
        statuses = dict(uow.session.execute(select(StudentLinkRow.representative_id, StudentLinkRow.status)).all())
        assert sorted(statuses.values()) == ["disputed", "present"]
        identifier = uow.session.scalar(select(AccountRow.identifier))
        records = uow.accounts.linked_records(uow.accounts.by_identifier(identifier).id)
        assert [r["given_names"] for r in records] == ["Léa Marie"]


def test_birth_dates_three_failures_cancel_and_alert_the_school(client: FlaskClient, services: Services,
                                                                browser: Browser) -> None:
    family = make_family(services)
    browser.start_activation()
    browser.code(last_code(services))
    order = browser.child_order()
    wrong = {i: ("oui", dt.date(2010, 1, 1) if name.startswith("Hugo") else family.children["Léa"])
             for i, name in enumerate(order)}
    first = browser.children(wrong)
    assert first.status_code == 400
    message = text_of(first)
    assert "ne correspondent pas" in message and "Hugo" not in message.split("role=\"alert\"")[1].split("</div>")[0]
    assert browser.children(wrong).status_code == 400
    third = browser.children(wrong)
    assert third.status_code == 403 and "l'établissement en est informé" in text_of(third)
    assert browser.children(_dates(browser, family.children)).status_code == 403
    with services.uow() as uow:
        events = uow.session.scalars(select(AuditEventRow).where(
            AuditEventRow.event == "activation.birthdate_locked")).all()
        assert len(events) == 1 and "0690026D" in events[0].details and "0301234A" in events[0].details
        assert uow.session.scalar(select(AccountRow.id)) is None


def test_all_links_refused_ends_without_account(client: FlaskClient, services: Services, browser: Browser) -> None:
    make_family(services)
    browser.start_activation()
    browser.code(last_code(services))
    answer = browser.children({0: ("non", None), 1: ("non", None)})
    assert answer.headers["Location"] == "/creer-mon-compte/annulee"
    assert "signalé ces rattachements" in text_of(client.get("/creer-mon-compte/annulee"))
    with services.uow() as uow:
        assert len(uow.session.scalars(select(WrongLinkReportRow)).all()) == 2


def test_password_rules_checked_on_the_server(client: FlaskClient, services: Services, browser: Browser) -> None:
    family = make_family(services)
    browser.start_activation()
    browser.code(last_code(services))
    browser.children(_dates(browser, family.children))
    weak = browser.password("motdepasse")
    page = text_of(weak)
    assert weak.status_code == 400 and 'role="alert"' in page
    assert "une lettre majuscule" in page and "un chiffre" in page
    mismatch = browser.password(GOOD_PASSWORD, GOOD_PASSWORD + "x")
    assert mismatch.status_code == 400 and "pas identiques" in text_of(mismatch)
    with_child_name = browser.password("Hugo-Martin-2008!")
    assert with_child_name.status_code == 400 and "nom" in text_of(with_child_name)


def test_identifier_shown_before_the_password_is_the_account_s(client: FlaskClient, services: Services,
                                                                browser: Browser) -> None:
    """Password managers file the new password under the identifier: the password step shows it (read-only,
    autocomplete="username") and the account created gets that very identifier."""
    family = make_family(services)
    browser.start_activation()
    browser.code(last_code(services))
    browser.children(_dates(browser, family.children))
    page = text_of(client.get("/creer-mon-compte/mot-de-passe"))
    field = re.search(r'<input[^>]*id="identifiant-affiche"[^>]*>', page).group(0)
    assert 'autocomplete="username"' in field and "readonly" in field
    shown = re.search(r'value="([a-z.0-9]+)"', field).group(1)
    assert shown.startswith("s.martin")
    checklist = json.loads(re.search(r"data-checklist='([^']*)'", page).group(1))
    assert "hugo" in checklist["words"] and checklist["identifier"] == shown
    refused = text_of(browser.password("motdepasse"))
    assert f'value="{shown}"' in refused  # still shown after a refusal
    browser.password()
    with services.uow() as uow:
        assert uow.accounts.by_identifier(shown) is not None


def _shown_identifier(client: FlaskClient) -> str:
    page = text_of(client.get("/creer-mon-compte/mot-de-passe"))
    return re.search(r'id="identifiant-affiche"[^>]*value="([a-z.0-9]+)"', page).group(1)


def _final_identifier(client: FlaskClient) -> str:
    return re.search(r"<strong>([a-z]\.[a-z]+[0-9]+)</strong>", text_of(client.get("/creer-mon-compte/termine"))).group(1)


def test_identifier_shown_is_reserved_until_the_account_is_made(client: FlaskClient, services: Services,
                                                                 browser: Browser) -> None:
    """Shown and reserved: an account created meanwhile (staff, command line) gets the next number, and the
    activation's account, and its last page, the one shown above the password."""
    family = make_family(services)
    browser.start_activation()
    browser.code(last_code(services))
    browser.children(_dates(browser, family.children))
    shown = _shown_identifier(client)
    other = services.accounts.create(NewAccount(profile=Profile.PARENT, family_name="Martin", given_names="Simon"))
    assert other.identifier != shown and other.identifier.startswith("s.martin")
    assert browser.password().headers["Location"] == "/creer-mon-compte/termine"
    assert _final_identifier(client) == shown


def test_two_parents_with_the_same_names_keep_the_identifiers_shown(app: Flask, client: FlaskClient, services: Services,
                                                                   browser: Browser) -> None:
    """Two Sophie Martin activate at once: each is shown its own identifier and gets it, whoever finishes first."""
    family = make_family(services)
    theo = add_student(services, "0301234A", "120456791EF", "Martin", "Théo", dt.date(2013, 5, 6), "6A")
    add_parent(services, "0301234A", "R9", "MARTIN", "Sophie", OTHER_PHONE, [theo])
    other = Browser(app.test_client())
    browser.start_activation()
    other.start_activation(phone="06 98 76 54 32")
    browser.code(last_code(services))
    other.code(last_code(services, OTHER_PHONE))
    browser.children(_dates(browser, family.children))
    other.children({0: ("oui", dt.date(2013, 5, 6))})
    first, second = _shown_identifier(client), _shown_identifier(other.client)
    assert first != second and {first, second} == {"s.martin1", "s.martin2"}
    other.password()
    browser.password()
    assert (_final_identifier(client), _final_identifier(other.client)) == (first, second)


def test_a_reservation_lost_after_expiry_starts_the_activation_again(client: FlaskClient, services: Services,
                                                                     browser: Browser, clock: FrozenClock) -> None:
    """Defensive path: the transaction expired, an account took its identifier meanwhile, and a worker whose
    clock lags still accepts the password: no account under another identifier, the démarche starts again."""
    family = make_family(services)
    browser.start_activation()
    browser.code(last_code(services))
    browser.children(_dates(browser, family.children))
    shown = _shown_identifier(client)
    clock.advance(hours=2)
    taken = services.accounts.create(NewAccount(profile=Profile.PARENT, family_name="Martin", given_names="Simon"))
    assert taken.identifier == shown  # the expired reservation no longer holds it
    clock.advance(hours=-2)
    refused = browser.password()
    assert refused.status_code == 400 and "Recommencez depuis le début" in text_of(refused)
    with services.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(AccountRow)) == 1
        assert uow.session.scalars(select(RepresentativeRow.account_id)).all() == [None, None]


def test_resend_replaces_the_code_within_limits(client: FlaskClient, services: Services, browser: Browser,
                                                clock: FrozenClock) -> None:
    make_family(services)
    browser.start_activation()
    first = last_code(services)
    early = browser.post("/creer-mon-compte/renvoyer", {}, page="/creer-mon-compte/code")
    assert early.status_code == 429 and "secondes" in text_of(early) and early.headers["Retry-After"]
    clock.advance(seconds=61)
    again = browser.post("/creer-mon-compte/renvoyer", {}, page="/creer-mon-compte/code")
    assert again.status_code == 200
    second = last_code(services)
    assert len(outbox(services, PHONE)) == 2
    if first != second:
        assert browser.code(first).status_code == 400  # the old code died with the resend (A05)
    assert browser.code(second).headers["Location"] == "/creer-mon-compte/eleves"
