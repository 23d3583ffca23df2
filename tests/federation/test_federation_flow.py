"""The federation route end to end with the bundled provider (real HTTP on the back channel, real database):
first login with the confirmation, the next one straight through, an existing account, the account page,
logout."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from conftest import DEFAULT_PASSWORD, LoginHelper, stored_login_url
from flask.testing import FlaskClient
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fc_support import (  # noqa: E402,F401 - fixtures
    BASE,
    KARIM_CHILD_BORN,
    PHONE_KARIM,
    PHONE_SANDRINE,
    SANDRINE_CHILDREN,
    FcBrowser,
    Upstream,
    callback_params,
    last_code,
    local,
    make_register,
    settings,
    text_of,
    upstream,
)

from idp.core.accounts.model import AccountState, NewAccount, Profile  # noqa: E402
from idp.storage.federation_store import FederationLinkRow, FederationSessionRow  # noqa: E402
from idp.storage.models import AccountRow, AuditEventRow, RepresentativeRow, SsoSessionRow  # noqa: E402
from idp.wiring import Services  # noqa: E402

GOOD_PASSWORD = "Tartine-Beurre-93!"


def _links(services: Services) -> list[tuple[str, str, int]]:
    with services.uow() as uow:
        return [(r.issuer, r.sub, r.account_id) for r in uow.session.scalars(select(FederationLinkRow))]


def _events(services: Services, prefix: str = "federation.") -> list[str]:
    with services.uow() as uow:
        return [e.event for e in uow.session.scalars(select(AuditEventRow).order_by(AuditEventRow.id))
                if e.event.startswith(prefix)]


def _request_from_login(client: FlaskClient, services: Services) -> tuple[str, str]:
    """A login begun as a front-end does; returns (request id, the login form's URL)."""
    form_url = stored_login_url(client, services)
    return form_url.split("/login/")[1].split("?")[0], form_url


def test_first_login_confirms_by_sms_then_the_next_one_goes_straight_through(
        client: FlaskClient, services: Services, upstream: Upstream) -> None:
    make_register(services)
    request_id, form_url = _request_from_login(client, services)
    form = text_of(client.get(form_url))
    assert '<span class="fr-connect__login">S\'identifier avec</span>' in form
    assert '<span class="fr-connect__brand">FranceConnect</span>' in form and "Qu'est-ce que FranceConnect ?" in form
    assert f"/franceconnect?depuis=/login/{request_id}" in form
    browser = FcBrowser(client, upstream)
    authorize = browser.authorize(f"/franceconnect?demande={request_id}")
    query = callback_params(authorize)
    assert query["acr_values"] == "eidas1" and query["response_type"] == "code"
    assert query["scope"].split() == ["openid", "given_name", "family_name", "birthdate", "gender", "birthplace",
                                      "birthcountry", "email", "preferred_username"]
    assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32
    answer = client.get(local(browser.choose(authorize, "karim")))
    assert answer.status_code == 303 and answer.headers["Location"] == "/franceconnect/code"
    page = text_of(client.get("/franceconnect/code"))
    assert "Un code de sécurité a été envoyé" in page and "+33 6 •• •• •• 78" in page
    assert "Confirmer avec mon mot de passe" not in page  # no account yet
    code = last_code(services, PHONE_KARIM)
    assert browser.code(code).headers["Location"] == "/franceconnect/eleves"
    assert browser.children({"Inès": KARIM_CHILD_BORN}).headers["Location"] == "/franceconnect/mot-de-passe"
    assert _links(services) == []  # nothing linked before the account exists
    shown = re.search(r'id="identifiant-affiche"[^>]*value="(k\.lefort[0-9]+)"',
                      text_of(client.get("/franceconnect/mot-de-passe"))).group(1)
    # Reserved for this activation: an account created meanwhile gets the next number.
    assert services.accounts.create(NewAccount(Profile.PARENT, "Lefort", "Kévin")).identifier != shown
    done = browser.password(GOOD_PASSWORD)
    assert done.status_code == 303 and done.headers["Location"] == "/franceconnect/termine"
    identifier = text_of(client.get("/franceconnect/termine"))
    assert "Votre compte a été activé avec succès" in identifier and f"<strong>{shown}</strong>" in identifier
    back = client.get("/franceconnect/acceder")
    assert back.status_code == 303 and back.headers["Location"].startswith("/")  # the portal's resume URL
    (link,) = _links(services)
    assert link[0] == upstream.issuer and len(link[1]) == 66
    with services.uow() as uow:
        account = uow.accounts.get(link[2])
        rep_account = uow.session.scalar(select(RepresentativeRow.account_id).where(RepresentativeRow.external_id == "R1"))
        method = uow.session.scalars(select(SsoSessionRow.auth_method).where(SsoSessionRow.ended_at.is_(None))).all()
    assert account.state is AccountState.ACTIVE and rep_account == account.id and method == ["federation"]
    assert "federation.linked" in _events(services)

    # A new browser, a new login: straight through, no SMS, the service provider's request resumed.
    other = services_client(client)
    request_id, _ = _request_from_login(other, services)
    sent_before = len(_outbox(services))
    again = FcBrowser(other, upstream).login("karim", f"/franceconnect?demande={request_id}")
    assert again.status_code == 303
    assert request_id in again.headers["Location"]
    assert len(_outbox(services)) == sent_before
    assert _events(services)[-1] == "federation.login"
    resumed = other.get(local(again.headers["Location"]))
    assert resumed.status_code in (200, 302, 303)


def services_client(client: FlaskClient) -> FlaskClient:
    return client.application.test_client()


def _outbox(services: Services) -> list[object]:
    from test_activation_support import outbox

    return outbox(services)


def test_usage_name_and_two_schools_make_one_candidate(client: FlaskClient, services: Services,
                                                       upstream: Upstream) -> None:
    make_register(services)
    browser = FcBrowser(client, upstream)
    answer = browser.login("sandrine")  # birth name MARTIN, usage name DUPUIS, given names "Sandrine Marie"
    assert answer.headers["Location"] == "/franceconnect/code"
    browser.code(last_code(services, PHONE_SANDRINE))
    page = text_of(client.get("/franceconnect/eleves"))
    assert "Camille" in page and "Théo" in page and "Lycée du Parc" in page
    browser.children(SANDRINE_CHILDREN)
    browser.password(GOOD_PASSWORD)
    (link,) = _links(services)
    with services.uow() as uow:
        claimed = uow.session.scalar(select(func.count()).select_from(RepresentativeRow)
                                     .where(RepresentativeRow.account_id == link[2]))
    assert claimed == 2


def test_ambiguous_and_unknown_identities_link_nothing(client: FlaskClient, services: Services,
                                                       upstream: Upstream) -> None:
    make_register(services)
    browser = FcBrowser(client, upstream)
    ambiguous = browser.login("catherine")
    assert ambiguous.status_code == 409
    page = text_of(ambiguous)
    assert "Plusieurs représentants légaux portent les mêmes nom et prénom" in page
    assert 'lang="fr"' in page
    unknown = browser.login("inconnu")
    assert unknown.status_code == 200 and "aucun représentant légal" in text_of(unknown)
    assert _links(services) == [] and _outbox(services) == []
    assert _events(services) == ["federation.ambiguous", "federation.no_match"]
    with services.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(AccountRow)) == 0


def _karim_account(services: Services, account_factory: object) -> str:
    account = account_factory("Karim", "Lefort")  # type: ignore[operator]
    with services.uow() as uow:
        uow.accounts.claim_register(account.id, representatives=[("0301234A", "R1")])
        uow.commit()
    return account.identifier


def test_existing_account_links_with_its_password_inside_the_flow(
        client: FlaskClient, services: Services, upstream: Upstream, account_factory: object) -> None:
    make_register(services)
    identifier = _karim_account(services, account_factory)
    browser = FcBrowser(client, upstream)
    assert browser.login("karim").headers["Location"] == "/franceconnect/code"
    page = text_of(client.get("/franceconnect/code"))
    assert "Confirmer avec mon mot de passe" in page and identifier not in page
    wrong = browser.post("/franceconnect/compte-existant", {"identifiant": identifier, "mot_de_passe": "faux"})
    assert wrong.status_code == 401 and "Identifiant ou mot de passe incorrect" in text_of(wrong)
    assert _links(services) == []
    done = browser.post("/franceconnect/compte-existant", {"identifiant": identifier,
                                                           "mot_de_passe": DEFAULT_PASSWORD})
    assert done.status_code == 303 and done.headers["Location"] == "/franceconnect/termine"
    assert [link[2] for link in _links(services)] == [_account_id(services, identifier)]
    again = FcBrowser(services_client(client), upstream).login("karim")
    assert again.status_code == 303 and again.headers["Location"] == "/services"


def test_existing_account_links_after_code_and_birth_dates(
        client: FlaskClient, services: Services, upstream: Upstream, account_factory: object) -> None:
    make_register(services)
    identifier = _karim_account(services, account_factory)
    browser = FcBrowser(client, upstream)
    browser.login("karim")
    browser.code(last_code(services, PHONE_KARIM))
    done = browser.children({"Inès": KARIM_CHILD_BORN})
    assert done.status_code == 303 and done.headers["Location"] == "/franceconnect/termine"
    assert identifier in text_of(client.get("/franceconnect/termine"))
    assert [link[2] for link in _links(services)] == [_account_id(services, identifier)]
    with services.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(AccountRow)) == 1


def _account_id(services: Services, identifier: str) -> int:
    with services.uow() as uow:
        return uow.accounts.by_identifier(identifier).id


def test_account_page_links_and_unlinks_with_the_password(
        client: FlaskClient, services: Services, upstream: Upstream, account_factory: object,
        login: LoginHelper) -> None:
    make_register(services)
    identifier = _karim_account(services, account_factory)
    login(identifier)
    page = text_of(client.get("/compte"))
    assert "<dt>FranceConnect</dt>\n    <dd><strong>non lié</strong>" in page
    browser = FcBrowser(client, upstream)
    refused = browser.post("/compte/franceconnect/lier", {"actuel": "mauvais"}, page="/compte")
    assert refused.status_code == 400  # the same page again, the refusal under the password (below)
    assert "Mot de passe actuel incorrect" in text_of(refused)
    started = browser.post("/compte/franceconnect/lier", {"actuel": DEFAULT_PASSWORD}, page="/compte")
    assert started.status_code == 303 and started.headers["Location"].startswith(upstream.issuer)
    linked = client.get(local(browser.choose(started.headers["Location"], "karim")))
    assert linked.status_code == 303 and linked.headers["Location"] == "/compte"
    assert "<dt>FranceConnect</dt>\n    <dd><strong>lié</strong>" in text_of(client.get("/compte"))
    assert len(_links(services)) == 1
    unlinked = browser.post("/compte/franceconnect/delier", {"actuel": DEFAULT_PASSWORD}, page="/compte")
    assert unlinked.status_code == 303
    assert _links(services) == []
    assert "non lié" in text_of(client.get("/compte"))
    assert _events(services)[-2:] == ["federation.linked", "federation.unlinked"]
    # Unlinked: the identity no longer reaches the account directly.
    again = FcBrowser(services_client(client), upstream).login("karim")
    assert again.headers["Location"] == "/franceconnect/code"


def test_account_page_refuses_another_persons_identity(
        client: FlaskClient, services: Services, upstream: Upstream, account_factory: object,
        login: LoginHelper) -> None:
    make_register(services)
    identifier = _karim_account(services, account_factory)
    login(identifier)
    browser = FcBrowser(client, upstream)
    started = browser.post("/compte/franceconnect/lier", {"actuel": DEFAULT_PASSWORD}, page="/compte")
    answer = client.get(local(browser.choose(started.headers["Location"], "helene")))
    assert answer.status_code == 409 and "ne correspondent pas" in text_of(answer)
    assert _links(services) == []


def test_logout_ends_the_upstream_session_with_id_token_hint(client: FlaskClient, services: Services,
                                                              upstream: Upstream, account_factory: object) -> None:
    make_register(services)
    identifier = _karim_account(services, account_factory)
    browser = FcBrowser(client, upstream)
    browser.login("karim")
    linked = browser.post("/franceconnect/compte-existant", {"identifiant": identifier,
                                                             "mot_de_passe": DEFAULT_PASSWORD})
    assert linked.status_code == 303
    out = browser.post("/logout", {}, page="/logout")
    assert out.status_code == 303
    target = out.headers["Location"]
    assert target.startswith(upstream.issuer + "/session/end?")
    params = callback_params(target)
    assert params["post_logout_redirect_uri"] == BASE + "/franceconnect/deconnexion" and len(params["state"]) >= 32
    assert params["id_token_hint"].count(".") == 2
    with services.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(SsoSessionRow)
                                  .where(SsoSessionRow.ended_at.is_(None))) == 0
        assert uow.session.scalar(select(func.count()).select_from(FederationSessionRow)) == 0
    back = browser.fc.get(local(target))
    assert back.status_code == 303 and back.headers["Location"].startswith(BASE + "/franceconnect/deconnexion")
    assert upstream.provider.ended and upstream.provider.ended[-1]["state"] == params["state"]
    final = client.get(local(back.headers["Location"]))
    assert final.status_code == 200 and "déconnecté" in text_of(final)
