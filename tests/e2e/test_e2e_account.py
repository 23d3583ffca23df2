"""The account page and password recovery in a real browser: a pupil adds a mobile number (confirmed by an SMS
code from the outbox), later forgets the password and chooses a new one by SMS."""

from __future__ import annotations

from playwright.sync_api import expect

from .browser import Visit
from .servers import DemoStack

PHONE = "+33698765432"
NEW_PASSWORD = "Cerf-Volant-Jaune-27"


def test_pupil_adds_a_phone_then_recovers_the_password_by_sms(visit: Visit, demo: DemoStack) -> None:
    identifier, password = demo.demo_account("Élève activé")
    visit.goto("/login?profil=eleve", "connexion élève")
    visit.fill("Identifiant", identifier)
    visit.fill("Mot de passe", password)
    visit.click("Se connecter", "mes services")
    visit.click(visit.page.get_by_role("link", name="Mon compte"), "mon compte")
    visit.click(visit.page.get_by_role("link", name="Changer mon numéro de téléphone portable"), "changer mon numéro")
    visit.page.get_by_label("Nouveau numéro de téléphone portable").fill("06 98 76 54 32")
    visit.page.get_by_label("Mot de passe actuel", exact=True).fill(password)
    visit.click(visit.page.get_by_role("button", name="Recevoir un code"), "confirmer mon numéro")
    expect(visit.page.get_by_role("heading", level=1)).to_have_text("Confirmer mon nouveau numéro")
    visit.fill("Code reçu", demo.last_code(PHONE))
    visit.click("Confirmer", "numéro confirmé")
    expect(visit.page.locator("dl.idp-facts")).to_contain_text(f"{PHONE} (vérifié)")
    visit.click(visit.page.get_by_role("link", name="Se déconnecter"), "confirmer la déconnexion")
    visit.click(visit.page.get_by_role("button", name="Me déconnecter"), "déconnecté")

    visit.goto("/login?profil=eleve", "connexion élève")
    visit.click(visit.page.get_by_role("link", name="Mot de passe oublié"), "mot de passe oublié")
    visit.fill("Identifiant", identifier)
    visit.page.get_by_label("Par SMS, au n° de téléphone de mon compte").check()
    visit.click("Recevoir un code", "code envoyé")
    visit.fill("Code reçu", demo.last_code(PHONE))
    visit.click("Continuer", "nouveau mot de passe")
    visit.fill("Mot de passe", NEW_PASSWORD)
    visit.fill("Confirmation du nouveau mot de passe", NEW_PASSWORD)
    visit.click("Enregistrer", "mot de passe modifié")
    expect(visit.page.get_by_role("heading", level=1)).to_have_text("Mot de passe modifié")
    visit.click(visit.page.get_by_role("link", name="Se connecter"), "se connecter")
    if visit.page.get_by_role("link", name="Élève").count():
        visit.click(visit.page.get_by_role("link", name="Élève"), "formulaire élève")
    visit.fill("Identifiant", identifier)
    visit.fill("Mot de passe", NEW_PASSWORD)
    visit.click("Se connecter", "mes services avec le nouveau mot de passe")
    expect(visit.page.get_by_role("heading", level=1)).to_have_text("Mes services")
