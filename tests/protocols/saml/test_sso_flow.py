"""SP-initiated SSO driven by python3-saml (independent of pysaml2): Redirect and POST bindings, SSO session,
passive and forced login, IdP-initiated login, attribute release, concurrent requests."""

from __future__ import annotations

from typing import Any

from onelogin.saml2.utils import OneLogin_Saml2_Utils

from tests.conftest import DEFAULT_PASSWORD
from tests.protocols.saml.conftest import OneLoginSp, autopost, login_through, path_of


def test_redirect_login_is_accepted_by_python3_saml(client: Any, login: Any, account_factory: Any,
                                                    sp1: OneLoginSp) -> None:
    account = account_factory("Marie", "Dupont")
    url, request_id = sp1.login_url(return_to="https://sp1.test/après?x=1&y=<b>")
    page = login_through(client, login, url, account.identifier, DEFAULT_PASSWORD)
    auth = sp1.consume(page, request_id)
    assert auth.get_errors() == [], auth.get_last_error_reason()
    assert auth.is_authenticated()
    attributes = auth.get_attributes()
    assert attributes["sn"] == ["Dupont"] and attributes["givenName"] == ["Marie"]
    assert attributes["FrEduCtId"] == [account.public_id]
    assert "mail" not in attributes and "telephoneNumber" not in attributes
    assert auth.get_nameid_format() == "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
    assert account.identifier not in auth.get_nameid() and len(auth.get_nameid()) >= 32
    assert autopost(page)["RelayState"] == "https://sp1.test/après?x=1&y=<b>"


def test_sso_session_answers_without_password_and_nameid_is_stable(client: Any, login: Any,
                                                                   account_factory: Any, sp1: OneLoginSp,
                                                                   sp2: OneLoginSp) -> None:
    account = account_factory()
    url, request_id = sp1.login_url()
    first = sp1.consume(login_through(client, login, url, account.identifier, DEFAULT_PASSWORD), request_id)
    url, request_id = sp1.login_url()
    again = client.get(path_of(url))
    assert again.status_code == 200
    second = sp1.consume(again.get_data(as_text=True), request_id)
    assert second.is_authenticated() and second.get_nameid() == first.get_nameid()
    url, request_id = sp2.login_url()
    other = sp2.consume(client.get(path_of(url)).get_data(as_text=True), request_id)
    assert other.is_authenticated()
    assert other.get_nameid() != first.get_nameid()


def test_post_binding_request_goes_through_a_same_site_get(client: Any, login: Any, account_factory: Any,
                                                          sp1: OneLoginSp) -> None:
    from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
    from onelogin.saml2.settings import OneLogin_Saml2_Settings

    account = account_factory()
    data = dict(sp1.data)
    data["idp"] = dict(data["idp"], singleSignOnService={"url": "https://idp.test/saml/sso/post"})
    settings = OneLogin_Saml2_Settings(data, sp_validation_only=True)
    request = OneLogin_Saml2_Authn_Request(settings)
    signed = OneLogin_Saml2_Utils.add_sign(request.get_xml(), sp1.key.decode(), sp1.cert.decode(),
                                           sign_algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                                           digest_algorithm="http://www.w3.org/2001/04/xmlenc#sha256")
    encoded = OneLogin_Saml2_Utils.b64encode(signed)
    posted = client.post("/saml/sso/post", data={"SAMLRequest": encoded, "RelayState": "r1"})
    assert posted.status_code == 303 and "/saml/sso/continue/" in posted.headers["Location"]
    form_page = client.get(posted.headers["Location"])
    assert form_page.status_code == 303
    done = login.submit(form_page.headers["Location"] + "?profil=parent", account.identifier, DEFAULT_PASSWORD)
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    auth = sp1.consume(page, request.get_id())
    assert auth.is_authenticated(), auth.get_errors()
    # The handle is single use.
    assert client.get(posted.headers["Location"]).status_code == 400


def test_passive_without_session_answers_nopassive(client: Any, sp1: OneLoginSp) -> None:
    url, request_id = sp1.login_url(is_passive=True)
    page = client.get(path_of(url))
    assert page.status_code == 200
    auth = sp1.consume(page.get_data(as_text=True), request_id)
    assert not auth.is_authenticated()
    assert "urn:oasis:names:tc:SAML:2.0:status:NoPassive" in (auth.get_last_error_reason() or "")


def test_passive_with_session_answers_at_once(client: Any, login: Any, account_factory: Any,
                                              sp1: OneLoginSp) -> None:
    account = account_factory()
    login(account.identifier)
    url, request_id = sp1.login_url(is_passive=True)
    auth = sp1.consume(client.get(path_of(url)).get_data(as_text=True), request_id)
    assert auth.is_authenticated(), auth.get_errors()


def test_force_authn_asks_the_password_again(client: Any, login: Any, account_factory: Any, clock: Any,
                                             sp1: OneLoginSp) -> None:
    account = account_factory()
    url, request_id = sp1.login_url()
    first = sp1.consume(login_through(client, login, url, account.identifier, DEFAULT_PASSWORD), request_id)
    clock.advance(minutes=2)
    url, request_id = sp1.login_url(force_authn=True)
    page = login_through(client, login, url, account.identifier, DEFAULT_PASSWORD)
    second = sp1.consume(page, request_id)
    assert second.is_authenticated()
    instants = [OneLogin_Saml2_Utils.parse_SAML_to_time(_authn_instant(a)) for a in (first, second)]
    assert instants[1] - instants[0] >= 120


def _authn_instant(auth: Any) -> str:
    from lxml import etree

    root = etree.fromstring(auth.get_last_response_xml().encode())
    return root.find(".//{urn:oasis:names:tc:SAML:2.0:assertion}AuthnStatement").get("AuthnInstant")


def test_idp_initiated_login_is_off_by_default(client: Any, sp1: OneLoginSp) -> None:
    response = client.get("/saml/init", query_string={"sp": sp1.entity_id})
    assert response.status_code == 400
    assert "SAMLResponse" not in response.get_data(as_text=True)


def test_idp_initiated_login_when_allowed(client: Any, login: Any, account_factory: Any, services: Any,
                                          sp1: OneLoginSp) -> None:
    from idp.storage.saml_store import SqlSamlStore

    with services.uow() as uow:
        SqlSamlStore(uow.session).set_policy(sp1.entity_id, services.clock.now(), allow_idp_initiated=True)
        uow.commit()
    account = account_factory()
    page = login_through(client, login, f"https://idp.test/saml/init?sp={sp1.entity_id}&RelayState=%2Faccueil",
                         account.identifier, DEFAULT_PASSWORD)
    fields = autopost(page)
    assert fields["action"] == sp1.acs and fields["RelayState"] == "/accueil"
    auth = sp1.consume(page, None)
    assert auth.is_authenticated(), auth.get_errors()
    assert 'InResponseTo' not in auth.get_last_response_xml()


def test_encrypted_assertion_for_an_sp_with_an_encryption_key(client: Any, login: Any, account_factory: Any,
                                                              sp_keypairs: Any, idp_cert: bytes,
                                                              register_sp: Any) -> None:
    sp = OneLoginSp("sp3", sp_keypairs["sp2"], idp_cert, encrypted=True, want_response_signed=True)
    register_sp(sp, sign_response=True)
    account = account_factory()
    url, request_id = sp.login_url()
    page = login_through(client, login, url, account.identifier, DEFAULT_PASSWORD)
    raw = OneLogin_Saml2_Utils.b64decode(autopost(page)["SAMLResponse"]).decode()
    assert "EncryptedAssertion" in raw and "aes256-gcm" in raw and "rsa-oaep" in raw and "Dupont" not in raw
    auth = sp.consume(page, request_id)
    assert auth.is_authenticated(), (auth.get_errors(), auth.get_last_error_reason())
    assert auth.get_attributes()["sn"] == ["Dupont"]


def test_two_tabs_two_sps_do_not_cross(client: Any, login: Any, account_factory: Any, sp1: OneLoginSp,
                                       sp2: OneLoginSp) -> None:
    account = account_factory()
    url1, id1 = sp1.login_url()
    url2, id2 = sp2.login_url()
    form1 = client.get(path_of(url1)).headers["Location"]
    form2 = client.get(path_of(url2)).headers["Location"]
    done2 = login.submit(form2 + "?profil=parent", account.identifier, DEFAULT_PASSWORD)
    page2 = client.get(done2.headers["Location"]).get_data(as_text=True)
    assert sp2.consume(page2, id2).is_authenticated()
    done1 = login.submit(form1 + "?profil=parent", account.identifier, DEFAULT_PASSWORD)
    page1 = client.get(done1.headers["Location"]).get_data(as_text=True)
    auth1 = sp1.consume(page1, id1)
    assert auth1.is_authenticated(), auth1.get_errors()


def test_compat_profile_uses_educonnect_oid_names(client: Any, login: Any, account_factory: Any, services: Any,
                                                  sp1: OneLoginSp) -> None:
    from idp.storage.saml_store import SqlSamlStore

    with services.uow() as uow:
        SqlSamlStore(uow.session).set_policy(sp1.entity_id, services.clock.now(), compat_oid=True)
        uow.commit()
    account = account_factory()
    url, request_id = sp1.login_url()
    auth = sp1.consume(login_through(client, login, url, account.identifier, DEFAULT_PASSWORD), request_id)
    attributes = auth.get_attributes()
    assert attributes["urn:oid:1.3.6.1.4.1.20326.10.999.1.57"] == [account.public_id]
    assert attributes["urn:oid:2.5.4.4"] == ["Dupont"]
    assert auth.get_friendlyname_attributes()["FrEduCtId"] == [account.public_id]


def test_s28_cross_site_post_with_a_session_needs_no_new_login(client: Any, login: Any, account_factory: Any,
                                                               sp2: OneLoginSp) -> None:
    from lxml import etree

    from tests.protocols.saml import forge

    account = account_factory()
    done = login(account.identifier)
    cookie = next(v for k, v in done.headers.items() if k == "Set-Cookie" and v.startswith("__Host-sso="))
    assert "SameSite=Lax" in cookie and "Secure" in cookie and "HttpOnly" in cookie
    xml = etree.tostring(forge.authn_request(sp2.entity_id, _now(client)))
    posted = forge.post(client, xml, relay_state="cross-site")
    # The POST itself answers nothing: it hands a single-use handle to a same-site GET, where the Lax cookie
    # is sent again by browsers.
    assert posted.status_code == 303 and "SAMLResponse" not in posted.get_data(as_text=True)
    page = client.get(posted.headers["Location"])
    assert page.status_code == 200
    assert autopost(page.get_data(as_text=True))["RelayState"] == "cross-site"


def _now(client: Any) -> Any:
    return client.application.extensions["idp"].clock.now()
