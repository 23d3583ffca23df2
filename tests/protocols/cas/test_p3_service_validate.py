"""``/cas/p3/serviceValidate`` (CAS 3.0): attributes (generic and Pronote presets, release policy C14),
escaping (C11), JSON (Appendix / §2.5.2), opaque ``cas:user``."""

from __future__ import annotations

import json

from cas import CASClient
from lxml import etree

from idp.core.identity import pairwise_id

from .conftest import CAS_NS, SERVICE, CasBrowser, People, fetch, quote, ticket_from

PRONOTE = "https://0690026d.index-education.net/pronote/"


def _v3(live: str, service: str = SERVICE) -> CASClient:
    return CASClient(version=3, service_url=service, server_url=live)


def test_generic_preset_default_release(browser: CasBrowser, people: People, register, live: str,
                                        services) -> None:
    register()
    user, attrs, _ = _v3(live).verify_ticket(browser.first_login(people.parent.identifier))
    assert user == pairwise_id(services.settings.pairwise_salt, "cas:ent", people.parent.public_id)
    assert attrs["sn"] == "Martin" and attrs["givenName"] == "Marie"
    assert attrs["FrEduCtId"] == people.parent.public_id
    assert attrs["FrEduCtPersonAffiliation"] == "resp2d" and attrs["FrEduCtEleveUAI"] == "0690026D"
    assert attrs["FrEduUrlRetour"] == "https://idp.test/cas/logout"
    assert attrs["authenticationDate"] == "2026-09-01T08:00:00Z"
    assert attrs["longTermAuthenticationRequestTokenUsed"] == "false"
    assert attrs["isFromNewLogin"] == "true"
    # C14: nothing outside the default policy (no birth date, phone, mail, INE, postal code).
    for name in ("FrEduCtDateNaissance", "telephoneNumber", "mail", "FrEduCtEleveINE", "postalCode"):
        assert name not in attrs


def test_user_is_opaque_and_differs_per_service(browser: CasBrowser, people: People, register, live: str) -> None:
    register()
    register("https://other.example.fr/", "other")
    user1, _, _ = _v3(live).verify_ticket(browser.first_login(people.parent.identifier))
    user2, _, _ = _v3(live, "https://other.example.fr/").verify_ticket(
        ticket_from(browser.sso("https://other.example.fr/")))
    assert user1 != user2 and people.parent.identifier not in (user1, user2)


def test_release_policy_per_service(browser: CasBrowser, people: People, register, live: str) -> None:
    """C14: a registration that lists its attributes gets exactly those (plus the three CAS 3 ones)."""
    register(attributes=("sn", "FrEduCtDateNaissance"))
    _, attrs, _ = _v3(live).verify_ticket(browser.first_login(people.pupil.identifier))
    assert set(attrs) == {"sn", "FrEduCtDateNaissance", "authenticationDate",
                          "longTermAuthenticationRequestTokenUsed", "isFromNewLogin"}
    assert attrs["FrEduCtDateNaissance"] == "2012-03-04"


def test_pronote_preset_for_a_pupil(browser: CasBrowser, people: People, register, live: str) -> None:
    register(PRONOTE, "pronote", preset="pronote")
    _, attrs, _ = _v3(live, PRONOTE).verify_ticket(browser.first_login(people.pupil.identifier, PRONOTE))
    assert attrs["nom"] == "Martin" and attrs["prenom"] == "Léa"
    assert attrs["dateNaissance"] == "04/03/2012" and attrs["codePostal"] == "69003"
    assert attrs["categories"] == "National_1" and attrs["uai"] == "0690026D"
    assert "sn" not in attrs and "FrEduCtId" not in attrs


def test_pronote_preset_for_a_parent_has_no_birth_date(browser: CasBrowser, people: People, register,
                                                       live: str) -> None:
    register(PRONOTE, "pronote", preset="pronote")
    _, attrs, _ = _v3(live, PRONOTE).verify_ticket(browser.first_login(people.parent.identifier, PRONOTE))
    assert attrs["nom"] == "Martin" and attrs["prenom"] == "Marie" and attrs["codePostal"] == "69003"
    assert attrs["categories"] == "National_2" and attrs["uai"] == "0690026D"
    assert "dateNaissance" not in attrs


def test_names_with_xml_specials_are_escaped(browser: CasBrowser, register, account_factory, live: str) -> None:
    """C11: ``& < > " '`` in a name: well-formed XML, the exact value back through an independent parser."""
    register()
    nasty = "O'Brien & <Fils> \"aîné\""
    account = account_factory("Zoé", nasty)
    ticket = browser.first_login(account.identifier)
    body = fetch(live + "p3/serviceValidate", params={"ticket": ticket, "service": SERVICE}).content
    root = etree.fromstring(body)
    (sn,) = root.xpath("//cas:attributes/cas:sn", namespaces=CAS_NS)
    assert sn.text == nasty
    assert b"<Fils>" not in body


def test_json_format(browser: CasBrowser, people: People, register, live: str) -> None:
    register()
    ticket = browser.first_login(people.parent.identifier)
    response = fetch(live + "p3/serviceValidate",
                            params={"ticket": ticket, "service": SERVICE, "format": "JSON"})
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    success = response.json()["serviceResponse"]["authenticationSuccess"]
    assert success["user"] and success["attributes"]["sn"] == "Martin"
    assert success["attributes"]["isFromNewLogin"] is True
    assert success["attributes"]["longTermAuthenticationRequestTokenUsed"] is False
    failure = fetch(live + "p3/serviceValidate",
                           params={"ticket": ticket, "service": SERVICE, "format": "json"}).json()
    assert failure["serviceResponse"]["authenticationFailure"]["code"] == "INVALID_TICKET"


def test_json_multi_valued_attribute_is_a_list(browser: CasBrowser, people: People, register, live: str,
                                               services) -> None:
    """A parent with children at both levels: ``FrEduCtPersonAffiliation`` has two values."""
    import datetime as dt

    from sqlalchemy import select

    from idp.storage.models import RepresentativeRow, SchoolRow, StudentLinkRow, StudentRow

    now = services.clock.now()
    with services.uow() as uow:
        s = uow.session
        s.add(SchoolRow(uai="0690001A", name="École Jaurès", kind="ecole", academie="Lyon", updated_at=now))
        s.flush()
        kid = StudentRow(ine="987654321ZZ", uai="0690001A", family_name="Martin", given_names="Tom",
                         birth_date=dt.date(2018, 1, 2), fingerprint="x", updated_at=now)
        s.add(kid)
        s.flush()
        rep_id = s.scalars(select(RepresentativeRow.id)).one()
        s.add(StudentLinkRow(student_id=kid.id, representative_id=rep_id, fingerprint="x", updated_at=now))
        uow.commit()
    register()
    ticket = browser.first_login(people.parent.identifier)
    body = fetch(live + "p3/serviceValidate",
                        params={"ticket": ticket, "service": SERVICE, "format": "JSON"}).text
    attrs = json.loads(body)["serviceResponse"]["authenticationSuccess"]["attributes"]
    assert attrs["FrEduCtPersonAffiliation"] == ["resp1d", "resp2d"]
    assert sorted(attrs["FrEduCtEleveUAI"]) == ["0690001A", "0690026D"]


def test_cas2_endpoint_has_no_attributes_but_p3_has(browser: CasBrowser, people: People, register,
                                                    live: str) -> None:
    register()
    browser.first_login(people.parent.identifier)
    t1 = ticket_from(browser.client.get("/cas/login?service=" + quote(SERVICE)))
    t2 = ticket_from(browser.client.get("/cas/login?service=" + quote(SERVICE)))
    assert "cas:attributes" not in fetch(live + "serviceValidate",
                                                params={"ticket": t1, "service": SERVICE}).text
    assert "cas:attributes" in fetch(live + "p3/serviceValidate",
                                            params={"ticket": t2, "service": SERVICE}).text


def test_answer_documents_escape_values_and_drop_what_xml_cannot_carry() -> None:
    """C11: the validation answer is written directly (no ElementTree on the hot path): it must still parse,
    escape every value and drop the characters XML 1.0 cannot carry."""
    from idp.cas import responses
    from idp.cas.tickets import Validated

    nasty = 'a<b>&c"d\'e\x01f\ufffe</cas:user><cas:x>'
    result = Validated(user=nasty, attributes=[("nom", [nasty, "Éloïse"])], authentication_date="2026-11-23T08:00:00Z",
                       from_new_login=True, pgt_iou="PGTIOU-1", proxies=("https://p.example.fr/?a=1&b=2",))
    root = etree.fromstring(responses.success_xml(result, with_attributes=True))
    ns = CAS_NS
    clean = 'a<b>&c"d\'ef</cas:user><cas:x>'
    assert root.findtext("cas:authenticationSuccess/cas:user", namespaces=ns) == clean
    assert [e.text for e in root.findall("cas:authenticationSuccess/cas:attributes/cas:nom", ns)] == [clean, "Éloïse"]
    assert root.findtext("cas:authenticationSuccess/cas:proxies/cas:proxy", namespaces=ns) == \
        "https://p.example.fr/?a=1&b=2"
    failure = etree.fromstring(responses.failure('BAD"CODE', "<desc> & more", json_format=False))
    element = failure.find("cas:authenticationFailure", ns)
    assert element is not None and element.get("code") == 'BAD"CODE' and element.text == "<desc> & more"
