"""End to end without a browser: the identity provider and the three demo service providers as real
processes (``idp demo``), driven by a requests session that submits forms like a person would.

The tests of this module share one running demo and run in order: the last one stops it."""

from __future__ import annotations

import socket
import sqlite3
import time
from urllib.parse import quote

import requests

from tests.adapters.browser import Browser, Page
from tests.adapters.conftest import Stack, processes_of, stop_demo

PARENT, PARENT_PASSWORD = "s.dupuis1", "Cartable-Vert-74"
PUPIL, PUPIL_PASSWORD = "c.dupuis1", "Trousse-Bleue-58"


def ent_login(browser: Browser, stack: Stack, identifier: str, password: str, profile: str = "parent") -> Page:
    """ENT → "Élève ou parent … avec ÉduConnect" → identity provider → back at the ENT (charter and
    preferences accepted if this is the first login)."""
    page = browser.get(f"{stack.ent}/connexion")
    assert "Vous souhaitez vous connecter à votre ENT en tant que :" in page
    page = browser.submit(page, "profil", {"profil": "educonnect"})
    assert page.url.startswith(stack.idp), page.url
    page = browser.idp_login(page, identifier, password, profile)
    if page.url.endswith("/charte"):
        page = browser.submit(page, "accepte", {"accepte": "oui"})
    if page.url.endswith("/preferences"):
        page = browser.submit(page, "email", {"email": ""})
    assert page.status == 200 and page.url == f"{stack.ent}/", (page.url, page.text[:2000])
    return page


def test_first_login_at_the_ent_asks_charter_then_preferences(stack: Stack) -> None:
    browser = Browser()
    page = browser.get(f"{stack.ent}/connexion")
    page = browser.submit(page, "profil", {"profil": "educonnect"})
    page = browser.idp_login(page, PUPIL, PUPIL_PASSWORD, "eleve")
    assert page.url == f"{stack.ent}/charte" and "Charte d'utilisation" in page
    refused = browser.submit(page, "accepte")  # box not ticked
    assert refused.status == 400 and 'role="alert"' in refused.text and "accepter la charte" in refused
    page = browser.submit(refused, "accepte", {"accepte": "oui"})
    assert page.url == f"{stack.ent}/preferences" and "Contact et préférences" in page
    wrong = browser.submit(page, "email", {"email": "pas-une-adresse"})
    assert wrong.status == 400 and "n'est pas valide" in wrong
    page = browser.submit(wrong, "email", {"email": "camille@example.org", "devoirs": "oui"})
    assert page.url == f"{stack.ent}/" and "Bonjour Camille Dupuis" in page
    assert "Élève" in page and "classe 5A, Collège Claude Chappe" in page and "Ma classe" in page
    with sqlite3.connect(stack.root / "var/demo/ent/ent.sqlite3") as db:
        row = db.execute("SELECT email, notify_homework, charter_accepted_at FROM users "
                         "WHERE given_names = 'Camille'").fetchone()
    assert row[0] == "camille@example.org" and row[1] == 1 and row[2] is not None
    # The second login goes straight to the portal.
    again = ent_login(Browser(), stack, PUPIL, PUPIL_PASSWORD, "eleve")
    assert "Bonjour Camille Dupuis" in again


def test_other_profiles_lead_to_an_honest_page(stack: Stack) -> None:
    browser = Browser()
    page = browser.submit(browser.get(f"{stack.ent}/connexion"), "profil", {"profil": "enseignant"})
    assert page.status == 200 and "n'est pas disponible dans cette démonstration" in page and "Enseignant" in page


def test_parent_sso_to_pronote_and_teleservices_then_single_logout(stack: Stack) -> None:
    browser = Browser()
    home = ent_login(browser, stack, PARENT, PARENT_PASSWORD)
    assert "Représentant légal" in home and "Camille Dupuis – classe 5A, Collège Claude Chappe" in home
    assert "Théo Dupuis – classe 2GT1, Cité scolaire Henri IV" in home

    # Pronote (CAS): no password typed again; the one-time notice, then both children.
    with sqlite3.connect(stack.root / "var/demo/pronote/pronote.sqlite3") as db:
        db.execute("DELETE FROM notice_read")  # whichever test of this module ran first on this stack
    page = browser.get(home.link("Vie scolaire"))
    page = browser.get(page.link("Se connecter"))
    assert 'name="mot_de_passe"' not in page.text
    assert "J'ai pris connaissance de ces informations" in page
    page = browser.submit(page, "lu", {"lu": "oui"})
    assert "Bonjour Sandrine Dupuis" in page and "Camille Dupuis" in page and "Théo Dupuis" in page
    pupil = browser.get(page.link("Théo"))
    assert "Emploi du temps" in pupil and "Dernières notes" in pupil and "Cité scolaire Henri IV" in pupil

    # Téléservices (OIDC): no password either; pick a child, use a service with the released claims.
    page = browser.get(f"{stack.teleservices}/connexion")
    assert page.url == f"{stack.teleservices}/" and "Mes services" in page and "Pour quel enfant ?" in page
    theo = next(v for v, label in zip(page.doc.xpath("//input[@name='enfant']/@value"),
                                      page.doc.xpath("//input[@name='enfant']/following-sibling::label/text()"),
                                      strict=True) if "Théo" in label)
    page = browser.submit(page, "enfant", {"enfant": theo})
    assert "Élève : <strong>Théo Dupuis</strong>" in page.text and "Fiche de renseignements" in page
    fiche = browser.get(f"{stack.teleservices}/fiche")
    assert 'value="Dupuis"' in fiche.text and 'value="Sandrine"' in fiche.text
    done = browser.submit(fiche, "nom", {"adresse": "3 rue des Écoles, 34500 Béziers"})
    assert "La fiche est transmise" in done
    bourse = browser.submit(browser.get(f"{stack.teleservices}/bourse"), "revenu", {"revenu": "8000", "enfants": "2"})
    assert "bourse de lycée serait à l'échelon" in bourse

    # Logging out of the ENT ends all three (SAML SLO → CAS and OIDC back-channel).
    page = browser.submit(browser.get(f"{stack.ent}/"), "/deconnexion")
    assert "Vous êtes déconnecté de l'ENT et des services" in page, page.text[:2000]
    time.sleep(0.5)  # the back-channel notifications leave from a background pool
    assert "Se connecter" in browser.get(f"{stack.ent}/") and "Bonjour" not in browser.get(f"{stack.ent}/")
    assert "Se connecter avec ÉduConnect" in browser.get(f"{stack.pronote}/")
    assert "Se connecter avec ÉduConnect" in browser.get(f"{stack.teleservices}/")
    # And the identity provider's session is over: Pronote asks for the password again.
    again = browser.get(f"{stack.pronote}/cas/login")
    assert again.url.startswith(stack.idp) and "Bonjour" not in again


def test_backchannel_logout_ends_sessions_even_without_the_browser(stack: Stack) -> None:
    """A session opened in another browser ends too: nothing relies on the browser visiting each service."""
    ent_browser, other = Browser(), Browser()
    ent_login(ent_browser, stack, PARENT, PARENT_PASSWORD)
    # Same identity provider session, reused by Pronote's and the téléservices' back-channel in one browser.
    page = ent_browser.get(f"{stack.pronote}/cas/login")
    if "J'ai pris connaissance de ces informations" in page:  # the one-time notice, unless another test read it
        page = ent_browser.submit(page, "lu", {"lu": "oui"})
    assert "Bonjour Sandrine Dupuis" in page
    # The other browser copies nothing: it cannot reach Pronote's session.
    assert "Se connecter avec ÉduConnect" in other.get(f"{stack.pronote}/")
    ent_browser.submit(ent_browser.get(f"{stack.ent}/"), "/deconnexion")
    time.sleep(0.5)
    with sqlite3.connect(stack.root / "var/demo/pronote/pronote.sqlite3") as db:
        live = db.execute("SELECT count(*) FROM local_sessions WHERE ended_at IS NULL").fetchone()[0]
    assert live == 0


def test_pronote_join_failure_says_what_to_check(stack: Stack) -> None:
    database = stack.root / "var/demo/pronote/pronote.sqlite3"
    with sqlite3.connect(database) as db:  # the school typed the name differently in Pronote
        db.execute("UPDATE pupils SET family_name = 'Dupuy', cas_id = NULL WHERE given_names = 'Camille' "
                   "AND family_name = 'Dupuis'")
    try:
        browser = Browser()
        page = browser.get(f"{stack.pronote}/cas/login")
        page = browser.idp_login(page, PUPIL, PUPIL_PASSWORD, "eleve")
        assert page.status == 403 and page.url.startswith(f"{stack.pronote}/cas/retour")
        assert "n'est pas rattaché à un compte Pronote" in page and "référent numérique" in page
        assert "date de naissance" in page and 'role="alert"' in page.text
    finally:
        with sqlite3.connect(database) as db:
            db.execute("UPDATE pupils SET family_name = 'Dupuis' WHERE family_name = 'Dupuy' AND given_names = 'Camille'")


def test_idp_initiated_entry_to_the_ent(stack: Stack) -> None:
    browser = Browser()
    entity = f"{stack.ent}/saml/metadata"
    page = browser.get(f"{stack.idp}/saml/init?sp={quote(entity, safe='')}")
    page = browser.idp_login(page, PARENT, PARENT_PASSWORD)
    assert page.url == f"{stack.ent}/" and "Bonjour Sandrine Dupuis" in page


def test_forged_messages_are_refused(stack: Stack) -> None:
    forged = requests.post(f"{stack.ent}/saml/acs", data={"SAMLResponse": "PHNhbWxwOlJlc3BvbnNlLz4="}, timeout=10)
    assert forged.status_code == 400 and "pas pu être vérifiée" in forged.text
    token = requests.post(f"{stack.teleservices}/backchannel-logout", data={"logout_token": "a.b.c"}, timeout=10)
    assert token.status_code == 400 and token.json() == {"error": "invalid_request"}
    cas = requests.post(f"{stack.pronote}/cas/retour", data={"logoutRequest": "<x/>"}, timeout=10)
    assert cas.status_code == 400
    unsigned = requests.get(f"{stack.ent}/saml/sls", params={"SAMLRequest": "fZA="}, timeout=10)
    assert unsigned.status_code == 400
    no_csrf = Browser()
    answer = no_csrf.http.post(f"{stack.ent}/connexion", data={"profil": "educonnect"}, timeout=10)
    assert answer.status_code == 400


def test_demo_stops_cleanly_on_ctrl_c(stack: Stack) -> None:
    for port in stack.ports:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
    assert processes_of(stack.root), "the demo's processes should be running"
    code = stop_demo(stack)
    assert code == 0, stack.output()[-3000:]
    assert "Arrêt de la démo" in stack.output()
    assert processes_of(stack.root) == []
    for port in stack.ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"
