"""The CSP ``form-action`` of the pages a SAML login or logout goes through (SECURITY S31): the ACS origin on
the login screens of a pending AuthnRequest, the SPs' logout endpoints on ``/logout``'s confirmation (its
answer visits each SP in turn), ``'self'`` elsewhere; and « Mes services » opening an SP that allows it
through IdP-initiated SSO (S22)."""

from __future__ import annotations

import html
from typing import Any

from tests.conftest import DEFAULT_PASSWORD, csrf_from
from tests.protocols.saml.conftest import OneLoginSp, login_through, path_of

SELF = ["'self'"]


def form_action(response: Any) -> list[str]:
    """The sources of the ``form-action`` directive of the answer's CSP."""
    directives = [d.split() for d in response.headers["Content-Security-Policy"].split(";")]
    return next(d[1:] for d in directives if d and d[0] == "form-action")


def test_login_screens_of_an_authn_request_allow_the_acs_origin(client: Any, login: Any, account_factory: Any,
                                                                sp1: OneLoginSp) -> None:
    account = account_factory()
    url, _ = sp1.login_url()
    first = client.get(path_of(url))
    assert first.status_code == 303
    form_url = first.headers["Location"]
    assert form_action(client.get(form_url)) == ["'self'", "https://sp1.test"]
    page = client.get(form_url + "?profil=parent")
    assert form_action(page) == ["'self'", "https://sp1.test"]
    wrong = client.post(form_url + "?profil=parent", data={"identifiant": account.identifier, "mot_de_passe": "pas-le-bon",
                                        "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert wrong.status_code == 200 and form_action(wrong) == ["'self'", "https://sp1.test"]


def test_logout_confirmation_allows_the_logout_endpoints_of_the_session_sps(client: Any, login: Any,
                                                                            account_factory: Any, sp1: OneLoginSp,
                                                                            sp2: OneLoginSp) -> None:
    account = account_factory()
    assert form_action(client.get("/logout")) == SELF  # nobody logged in: nothing to visit
    url, request_id = sp1.login_url()
    sp1.consume(login_through(client, login, url, account.identifier, DEFAULT_PASSWORD), request_id)
    confirm = client.get("/logout")
    assert "Me déconnecter" in confirm.get_data(as_text=True)
    assert form_action(confirm) == ["'self'", "https://sp1.test"]
    url, request_id = sp2.login_url()
    sp2.consume(client.get(path_of(url)).get_data(as_text=True), request_id)
    assert form_action(client.get("/logout")) == ["'self'", "https://sp1.test", "https://sp2.test"]
    step = client.post("/logout", data={"csrf_token": csrf_from(confirm.get_data(as_text=True))})
    assert step.status_code == 303 and "/saml/slo/next/" in step.headers["Location"]


def test_mes_services_opens_an_sp_that_allows_it_through_idp_initiated_sso(client: Any, login: Any,
                                                                           account_factory: Any, services: Any,
                                                                           sp1: OneLoginSp) -> None:
    from idp.storage.saml_store import SqlSamlStore

    account = account_factory()
    login(account.identifier)
    page = html.unescape(client.get("/services").get_data(as_text=True))
    assert 'href="https://sp1.test/">ENT de test' in page  # not allowed: its home page
    with services.uow() as uow:
        SqlSamlStore(uow.session).set_policy(sp1.entity_id, services.clock.now(), allow_idp_initiated=True)
        uow.commit()
    page = html.unescape(client.get("/services").get_data(as_text=True))
    assert f'href="/saml/init?sp={sp1.entity_id}">ENT de test' in page
