"""``idp cas add|list|remove|purge``: the registry as an operator keeps it, and what it does at login."""

from __future__ import annotations

import html

from cas import CASClient

from .conftest import CasBrowser, People

PRONOTE = "https://0690026d.index-education.net/pronote/"


def test_add_list_remove(runner, browser: CasBrowser, people: People, live: str) -> None:
    added = runner("cas", "add", "Pronote Jean Moulin", PRONOTE, "--match", "prefix", "--preset", "pronote",
                   "--slo", "--home-url", PRONOTE + "parent.html")
    assert added.exit_code == 0, added.output
    assert "pronote-jean-moulin" in added.output
    listed = runner("cas", "list")
    assert "pronote-jean-moulin" in listed.output and "pronote" in listed.output and "slo" in listed.output
    # The registration works: the CAS client logs in and gets the Pronote attributes.
    ticket = browser.first_login(people.pupil.identifier, PRONOTE + "eleve.html")
    user, attrs, _ = CASClient(version=3, service_url=PRONOTE + "eleve.html", server_url=live).verify_ticket(ticket)
    assert user and attrs["categories"] == "National_1" and attrs["dateNaissance"] == "04/03/2012"
    # "Mes services" lists it.
    services_page = html.unescape(browser.client.get("/services").get_data(as_text=True))
    assert "Pronote Jean Moulin" in services_page and PRONOTE + "parent.html" in services_page
    removed = runner("cas", "remove", "pronote-jean-moulin")
    assert removed.exit_code == 0
    assert browser.client.get("/cas/login?service=" + PRONOTE).status_code == 400
    assert "Pronote Jean Moulin" not in html.unescape(browser.client.get("/services").get_data(as_text=True))


def test_add_refuses_bad_patterns_and_duplicates(runner) -> None:
    for pattern, extra in (("javascript:alert(1)", ()), ("https://user@ent.fr/", ()),
                           ("https://ent.fr/.*", ("--match", "regex")), ("https://ent.fr/#x", ())):
        result = runner("cas", "add", "X", pattern, *extra)
        assert result.exit_code == 1 and "motif refusé" in result.output, pattern
    assert runner("cas", "add", "ENT", "https://ent.fr/").exit_code == 0
    again = runner("cas", "add", "ENT", "https://ent.fr/other/")
    assert again.exit_code == 1 and "existe déjà" in again.output
    unknown = runner("cas", "add", "Y", "https://y.fr/", "--attributes", "sn,password")
    assert unknown.exit_code == 1 and "attribut inconnu" in unknown.output
    assert runner("cas", "remove", "nothing").exit_code == 1


def test_attributes_option_sets_the_release_policy(runner, browser: CasBrowser, people: People, live: str) -> None:
    assert runner("cas", "add", "ENT", "https://ent.fr/", "--match", "prefix", "--attributes",
                  "sn,givenName").exit_code == 0
    ticket = browser.first_login(people.parent.identifier, "https://ent.fr/")
    _, attrs, _ = CASClient(version=3, service_url="https://ent.fr/", server_url=live).verify_ticket(ticket)
    assert {"sn", "givenName"} <= set(attrs) and "FrEduCtId" not in attrs


def test_purge(runner) -> None:
    result = runner("cas", "purge")
    assert result.exit_code == 0 and "effacé" in result.output
