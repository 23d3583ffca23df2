"""Through the service providers of the demo, in a real browser: a parent logs in at the ENT (SAML), opens
Pronote (CAS) and the téléservices (OpenID Connect) without typing a password again, and logging out of the
ENT ends all three; a family new to the service gets its account from the ENT, by SMS or with FranceConnect."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .browser import Visit
from .servers import DemoStack
from .test_e2e_activation import NEW_PASSWORD, confirm_children, log_in, national


def _from_the_ent(visit: Visit, demo: DemoStack, profile: str = "Représentant légal") -> None:
    """ENT → "Vous souhaitez vous connecter à votre ENT en tant que :" → ÉduConnect → the IdP's profile page."""
    visit.goto(demo.url("ent") + "/connexion", "ENT choix du type de compte")
    expect(visit.page.get_by_text("Vous souhaitez vous connecter à votre ENT en tant que :")).to_be_visible()
    visit.click("Valider", "IdP choix du profil")
    assert visit.on_idp(), visit.page.url
    visit.click(visit.page.get_by_role("link", name=profile), "IdP formulaire")


def _ent_first_visit(visit: Visit, demo: DemoStack) -> None:
    """The ENT's first-login pages (charter, contact and preferences) when they come."""
    if visit.page.url.endswith("/charte"):
        visit.page.get_by_label("J'ai lu la charte d'utilisation et je l'accepte").check()
        visit.click("Continuer", "ENT contact et préférences")
    if visit.page.url.endswith("/preferences"):
        visit.click("Enregistrer", "ENT accueil")
    assert visit.page.url == demo.url("ent") + "/", visit.page.url


def test_parent_sso_to_pronote_and_teleservices_then_single_logout(visit: Visit, demo: DemoStack) -> None:
    identifier, password = demo.demo_account("Représentant légal activé")
    _from_the_ent(visit, demo)
    visit.fill("Identifiant", identifier)
    visit.fill("Mot de passe", password)
    visit.click("Se connecter", "ENT après connexion")
    _ent_first_visit(visit, demo)
    expect(visit.page.get_by_role("heading", level=1)).to_contain_text("Bonjour Sandrine Dupuis")
    expect(visit.page.locator("main")).to_contain_text("Collège Claude Chappe")
    expect(visit.page.locator("main")).to_contain_text("Cité scolaire Henri IV")

    visit.click(visit.page.get_by_role("link", name="Vie scolaire (Pronote)"), "Pronote")
    if visit.page.get_by_role("link", name="Se connecter avec ÉduConnect").count():
        visit.click(visit.page.get_by_role("link", name="Se connecter avec ÉduConnect"), "Pronote après CAS")
    assert not visit.on_idp(), "Pronote asked the identity provider for a password again"
    visit.page.get_by_label("J'ai pris connaissance de ces informations").check()
    visit.click("Accéder à Pronote.net", "Pronote accueil")
    expect(visit.page.locator("main")).to_contain_text("Théo")
    visit.click(visit.page.get_by_role("link", name=re.compile("Théo")), "Pronote Théo")
    expect(visit.page.locator("main")).to_contain_text("Emploi du temps")

    visit.goto(demo.url("teleservices") + "/connexion", "téléservices")
    assert not visit.on_idp(), "the téléservices asked the identity provider for a password again"
    expect(visit.page.get_by_role("heading", level=1)).to_have_text("Mes services")
    visit.page.get_by_label(re.compile("^Théo")).check()
    visit.click("Choisir", "téléservices Théo")
    expect(visit.page.locator("main")).to_contain_text("Théo Dupuis")

    visit.goto(demo.url("ent") + "/", "ENT accueil")
    visit.click(visit.page.get_by_role("button", name="Se déconnecter"), "ENT déconnecté")
    expect(visit.page.locator("main")).to_contain_text("Vous êtes déconnecté")
    visit.page.wait_for_timeout(1000)  # the back-channel notifications leave from a background pool
    visit.goto(demo.url("pronote") + "/", "Pronote après déconnexion")
    expect(visit.page.get_by_role("link", name="Se connecter avec ÉduConnect")).to_be_visible()
    visit.goto(demo.url("teleservices") + "/", "téléservices après déconnexion")
    expect(visit.page.get_by_role("link", name="Se connecter avec ÉduConnect")).to_be_visible()
    visit.goto(demo.url("pronote") + "/cas/login", "Pronote redemande la connexion")
    assert visit.on_idp(), "the identity provider's session outlived the single logout"


def test_parent_activation_by_sms_started_from_the_ent(visit: Visit, demo: DemoStack) -> None:
    given, family, phone = demo.not_activated_parent()
    _from_the_ent(visit, demo)
    visit.click(visit.page.get_by_role("link", name="Je n'ai pas de compte"), "activation identité")
    visit.fill("Nom", family)
    visit.fill("Prénom", given)
    visit.page.get_by_label("N° de téléphone portable").fill(national(phone))
    visit.click("Suivant", "code envoyé")
    visit.fill("Code de sécurité", demo.last_code(phone))
    visit.click("Suivant", "mes enfants")
    confirm_children(visit, demo.birth_dates(family))
    visit.click("Confirmer", "mot de passe")
    visit.fill("Mot de passe", NEW_PASSWORD)
    visit.fill("Confirmation du nouveau mot de passe", NEW_PASSWORD)
    visit.click("Suivant", "compte activé")
    expect(visit.page.get_by_text("Votre compte a été activé avec succès")).to_be_visible()
    identifier = visit.page.locator("#identifiant strong").inner_text()
    assert identifier.startswith(given[0].lower() + "." + family.lower())
    visit.click(visit.page.get_by_role("link", name="Accéder à mes services"), "retour à l'ENT")
    _ent_first_visit(visit, demo)
    expect(visit.page.get_by_role("heading", level=1)).to_contain_text(f"Bonjour {given}")
    # The new account logs in from a fresh browser with the password just chosen.
    visit.page.context.clear_cookies()
    log_in(visit, "parent", identifier, NEW_PASSWORD, "nouvelle connexion")
    expect(visit.page.get_by_role("heading", level=1)).to_have_text("Mes services")


def test_franceconnect_route_from_the_ent(visit: Visit, demo: DemoStack) -> None:
    """Hélène Moulin has no account: FranceConnect vouches for her identity, an SMS to the register's number
    confirms it, she confirms her child, chooses a password, and lands at the ENT."""
    _from_the_ent(visit, demo)
    visit.click(visit.page.get_by_role("link", name=re.compile("S'identifier avec FranceConnect")), "FranceConnect")
    assert visit.page.url.startswith(demo.url("franceconnect")), visit.page.url
    visit.click(visit.page.get_by_role("button", name=re.compile("^Hélène")), "retour de FranceConnect")
    assert visit.on_idp(), visit.page.url
    visit.page.get_by_label(re.compile("^Code")).fill(demo.last_code())
    visit.click("Suivant", "mes enfants")
    confirm_children(visit, demo.birth_dates("Moulin"))
    visit.click("Confirmer", "mot de passe")
    visit.fill("Mot de passe", NEW_PASSWORD)
    visit.fill("Confirmation du nouveau mot de passe", NEW_PASSWORD)
    visit.click("Suivant", "compte activé")
    expect(visit.page.get_by_text("Votre compte a été activé avec succès")).to_be_visible()
    visit.click(visit.page.get_by_role("link", name="Accéder à mes services"), "retour à l'ENT")
    _ent_first_visit(visit, demo)
    expect(visit.page.get_by_role("heading", level=1)).to_contain_text("Bonjour Hélène")

    # Logging out of the ENT (SAML single logout) also ends the FranceConnect session (SECURITY F08).
    hops: list[str] = []
    visit.page.on("request", lambda r: hops.append(r.url))
    visit.click(visit.page.get_by_role("button", name="Se déconnecter"), "ENT déconnecté")
    expect(visit.page.locator("main")).to_contain_text("Vous êtes déconnecté")
    ended = [u for u in hops if u.startswith(demo.url("franceconnect")) and "/session/end" in u]
    assert ended and "id_token_hint=" in ended[0], hops
