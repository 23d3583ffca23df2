"""The profile chosen is the profile that logs in (issue 16 item 3), through the Flask test client: the portal's
form and a stored request's form, on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re

from conftest import DEFAULT_PASSWORD, AccountFactory, LoginHelper, csrf_from, stored_login_url
from flask.testing import FlaskClient
from sqlalchemy import select

from idp.core.accounts.model import Profile
from idp.core.authn import throttle
from idp.storage.models import AuditEventRow
from idp.wiring import Services

GENERIC = "Identifiant ou mot de passe incorrect."
WRONG = "Mauvais-Mot-2!"


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def audit_events(services: Services) -> list[str]:
    with services.uow() as uow:
        return list(uow.session.scalars(select(AuditEventRow.event).order_by(AuditEventRow.id)))


def identifier_failures(services: Services, identifier: str) -> int:
    key = throttle.keys_for(identifier, "127.0.0.1").identifier
    with services.uow() as uow:
        counter = uow.throttle.get_many([key]).get(key)
    return counter.failures if counter else 0


def sso_cookie_set(response) -> bool:
    return any(h.startswith(("__Host-sso=", "idp_sso=")) for h in response.headers.getlist("Set-Cookie"))


def test_a_parent_on_the_pupil_form_is_not_logged_in_and_is_sent_to_the_parent_form(
        client: FlaskClient, login: LoginHelper, account_factory: AccountFactory, services: Services) -> None:
    parent = account_factory("Sandrine", "Dupuis")
    answer = login(parent.identifier, path="/login?profil=eleve")  # the portal's form runs the login
    page = text_of(answer)
    assert answer.status_code == 200 and not sso_cookie_set(answer)
    assert "Cet identifiant est celui d'un compte « Représentant légal », pas d'un compte « Élève »" in page
    assert 'href="/login?profil=parent"' in page and GENERIC not in page
    assert client.get("/services").status_code == 303  # nobody is logged in
    assert audit_events(services) == ["login.wrong_profile"]
    # The link leads to the parent form, where the same identifier and password log in.
    done = login(parent.identifier, path="/login?profil=parent")
    assert done.status_code == 303 and done.headers["Location"] == "/services"


def test_a_pupil_on_the_parent_form_of_a_stored_request_goes_back_to_the_same_request(
        client: FlaskClient, login: LoginHelper, account_factory: AccountFactory, services: Services) -> None:
    pupil = account_factory("Noé", "Moulin", profile=Profile.STUDENT)
    form_url = stored_login_url(client, services, "parent")  # a request a front-end stored: the Flask view
    answer = login.submit(form_url + "?profil=parent", pupil.identifier, DEFAULT_PASSWORD)
    page = text_of(answer)
    assert answer.status_code == 200 and not sso_cookie_set(answer)
    assert "celui d'un compte « Élève », pas d'un compte « Représentant légal »" in page
    link = f'href="{form_url}?profil=eleve"'
    assert link in page  # the same pending request, on the pupil's form
    assert f'value="{pupil.identifier}"' in page
    done = login.submit(form_url + "?profil=eleve", pupil.identifier, DEFAULT_PASSWORD)
    assert done.status_code == 303  # the request it was started for is completed
    assert client.get("/services").status_code == 200


def test_the_wrong_profile_counts_as_no_failure(client: FlaskClient, login: LoginHelper,
                                                account_factory: AccountFactory, services: Services) -> None:
    parent = account_factory()
    for _ in range(8):  # more than the five free failures: a wrong password would have locked it
        assert "compte « Représentant légal »" in text_of(login(parent.identifier, path="/login?profil=eleve"))
    assert identifier_failures(services, parent.identifier) == 0
    assert login(parent.identifier).status_code == 303
    assert audit_events(services) == ["login.wrong_profile"] * 8 + ["login.success"]


def test_a_wrong_password_on_the_wrong_profile_reveals_nothing(client: FlaskClient, login: LoginHelper,
                                                                 account_factory: AccountFactory,
                                                                 services: Services) -> None:
    """Without the password, an identifier of the other profile answers as an unknown one (SECURITY W06)."""
    parent = account_factory()
    known = login(parent.identifier, WRONG, path="/login?profil=eleve")
    unknown = login("z.personne9", WRONG, path="/login?profil=eleve")
    strip = re.compile(r'value="[^"]*"|X-Correlation-Id: \S+|correlation[^<]*')
    assert known.status_code == unknown.status_code == 200
    assert GENERIC in text_of(known) and "Représentant légal »" not in text_of(known)
    assert strip.sub("", text_of(known)) == strip.sub("", text_of(unknown))
    assert identifier_failures(services, parent.identifier) == 1  # an ordinary failure, counted
    assert audit_events(services) == ["login.failure", "login.failure"]


def test_a_post_without_a_profile_checks_nothing(client: FlaskClient, account_factory: AccountFactory,
                                                 services: Services) -> None:
    parent = account_factory()
    token = csrf_from(client.get("/login?profil=parent").get_data(as_text=True))
    answer = client.post("/login", data={"identifiant": parent.identifier, "mot_de_passe": DEFAULT_PASSWORD,
                                         "csrf_token": token})
    assert answer.status_code == 400 and not sso_cookie_set(answer)
    page = text_of(answer)
    assert "Choisissez d'abord votre profil." in page and 'href="/login?profil=eleve"' in page
    assert audit_events(services) == []


def test_provisional_credentials_of_a_pupil_on_the_parent_form(client: FlaskClient, login: LoginHelper,
                                                               account_factory: AccountFactory) -> None:
    from idp.core.accounts.model import AccountState

    pupil = account_factory("Léa", "Martin", profile=Profile.STUDENT, state=AccountState.PROVISIONAL)
    answer = login(pupil.identifier)
    assert answer.status_code == 200 and "compte « Élève »" in text_of(answer)
    assert login(pupil.identifier, path="/login?profil=eleve").headers["Location"].startswith("/activation/")
