"""The school staff console in a real browser: a parent asks for help (/aide/demande), then the demo's
référent numérique of Collège Claude Chappe logs in (password + TOTP code), finds the family, reads the family
page, the inbox and the funnel (screenshots of each)."""

from __future__ import annotations

import re
import time

import pyotp
from playwright.sync_api import expect

from .browser import Visit
from .servers import DemoStack


def _referent(demo: DemoStack) -> tuple[str, str, str]:
    match = re.search(r"Console établissement .*\n    (\S+)   mot de passe (\S+)\n.*clé ([A-Z2-7]+)", demo.demo_output)
    assert match, demo.demo_output
    return match.group(1), match.group(2), match.group(3)


def test_referent_helps_a_family(visit: Visit, demo: DemoStack) -> None:
    visit.goto("/aide/demande?contexte=e2e", "demande d'aide")
    visit.fill("Votre nom", "Dupuis")
    visit.fill("Votre prénom", "Sandrine")
    visit.page.get_by_label("Établissement", exact=True).select_option(label="Collège Claude Chappe")
    visit.fill("Vos enfants dans cet établissement", "Camille Dupuis, 5A")
    visit.fill("Où vous répondre", "06 12 34 56 78")
    visit.click("Envoyer ma demande", "demande envoyée")
    reference = re.search(r"AIDE-[A-Z2-9]{8}", visit.text())
    assert reference, visit.text()

    email, password, secret = _referent(demo)
    visit.goto("/etablissement", "connexion console")
    visit.fill("Adresse électronique professionnelle", email)
    visit.fill("Mot de passe", password)
    visit.click("Continuer", "second facteur")
    # The enrolment used the current time step; the next one is within the accepted drift and not yet used.
    visit.fill("Code à 6 chiffres affiché par l'application", pyotp.TOTP(secret).at(time.time() + 30))
    visit.click("Valider le code", "accueil console")
    expect(visit.page.get_by_role("heading", level=1)).to_have_text("Console établissement")

    visit.fill("Rechercher une famille", "Dupuis")
    visit.click("Rechercher", "résultats")
    visit.click(visit.page.get_by_role("link", name=re.compile("Dupuis Camille")), "page de la famille")
    expect(visit.page.get_by_role("heading", name="Représentants légaux (selon le registre)")).to_be_visible()
    expect(visit.page.locator("body")).to_contain_text("s.dupuis1")

    visit.click(visit.page.get_by_role("link", name="Boîte de réception"), "boîte de réception")
    expect(visit.page.locator("body")).to_contain_text(reference.group(0))
    visit.click(visit.page.get_by_role("button", name="Marquer comme traité").first, "signalement traité")

    visit.click(visit.page.get_by_role("link", name="Accueil"), "accueil")
    visit.click(visit.page.get_by_role("link", name="Activation des comptes").first, "entonnoir")
    expect(visit.page.locator("svg[role=img]").first).to_be_visible()
    visit.phone()
    visit.record("entonnoir sur téléphone")
