"""The school staff console in a real browser: a parent asks for help (/aide/demande), then the demo's
référent numérique of Collège Claude Chappe logs in (password + TOTP code), finds the family, reads the family
page, the inbox and the funnel (screenshots of each); a new member enrols by scanning the TOTP QR code."""

from __future__ import annotations

import io
import re
import time
from urllib.parse import parse_qs, urlsplit

import pyotp
import zxingcpp
from PIL import Image
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
    visit.click(visit.page.get_by_role("button", name="Rechercher", exact=True), "résultats")
    visit.click(visit.page.get_by_role("link", name=re.compile("Dupuis Camille")), "page de la famille")
    expect(visit.page.get_by_role("heading", name="Représentants légaux (selon le registre)")).to_be_visible()
    expect(visit.page.locator("body")).to_contain_text("s.dupuis1")

    menu = visit.page.get_by_role("navigation", name="Console établissement")
    visit.click(menu.get_by_role("link", name="Boîte de réception"), "boîte de réception")
    expect(visit.page.locator("body")).to_contain_text(reference.group(0))
    visit.click(visit.page.get_by_role("button", name="Marquer comme traité").first, "signalement traité")

    visit.click(menu.get_by_role("link", name="Accueil"), "accueil")
    visit.click(visit.page.get_by_role("link", name="Activation des comptes").first, "entonnoir")
    expect(visit.page.locator("svg[role=img]").first).to_be_visible()
    visit.phone()
    visit.record("entonnoir sur téléphone")


def test_new_member_enrols_by_scanning_the_qr_code(visit: Visit, demo: DemoStack) -> None:
    email = "nouvelle.secretaire@example.fr"
    demo.idp("staff", "add", "--operator", "--email", email, "--name", "Nouvelle secrétaire")
    link = re.search(r"/etablissement/inscription/[A-Za-z0-9_-]+", demo.idp("outbox", "--to", email))
    assert link, demo.idp("outbox", "--to", email)
    visit.goto(link.group(0), "inscription console")
    password = "Girafe-Polaire-58"  # noqa: S105 - a throw-away demo instance
    visit.fill("Mot de passe", password)
    visit.fill("Confirmation du nouveau mot de passe", password)
    visit.click("Enregistrer et continuer", "second facteur : code QR")
    # What a phone's camera sees: the QR code as Chromium draws it, read back by a barcode decoder.
    shot = visit.page.locator("#qr-totp").screenshot()
    decoded = zxingcpp.read_barcode(Image.open(io.BytesIO(shot)))
    assert decoded is not None and decoded.text.startswith("otpauth://totp/"), decoded
    secret = parse_qs(urlsplit(decoded.text).query)["secret"][0]
    assert secret == visit.page.locator("#cle-totp").inner_text()
    visit.fill("Code à 6 chiffres affiché par l'application", pyotp.TOTP(secret).now())
    visit.click("Valider le code", "accueil console")
    expect(visit.page.get_by_role("heading", level=1)).to_have_text("Console établissement")
