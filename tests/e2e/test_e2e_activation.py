"""Getting an account in a real browser: a pupil's first login with the provisional credentials of a letter
(a parent's activation by SMS starts from the ENT: test_e2e_services.py)."""

from __future__ import annotations

import datetime as dt

from playwright.sync_api import Locator, Page, expect

from .browser import Visit
from .servers import DemoStack

NEW_PASSWORD = "Trottinette-Orange-93"


def national(phone: str) -> str:
    """+33612345678 → 06 12 34 56 78, as a parent types it."""
    digits = "0" + phone.removeprefix("+33")
    return " ".join(digits[i:i + 2] for i in range(0, len(digits), 2))


def confirm_children(visit: Visit, born: dict[str, dt.date]) -> None:
    """Tick "Je suis le représentant légal" and type each child's birth date."""
    children = visit.page.locator(".idp-child")
    assert children.count() >= 1
    for i in range(children.count()):
        child = children.nth(i)
        name = child.locator(".idp-child__name strong").first.inner_text()
        date = next(d for g, d in born.items() if name.startswith(g))
        child.get_by_label("Je suis le représentant légal de cet élève").check()
        fill_date(child, date)


def fill_date(scope: Locator | Page, date: dt.date) -> None:
    """The three date fields (« Jour », « Mois », « Année »), one or two digits as a parent types them."""
    scope.get_by_label("Jour").fill(str(date.day))
    scope.get_by_label("Mois").fill(str(date.month))
    scope.get_by_label("Année").fill(str(date.year))


def log_in(visit: Visit, profile: str, identifier: str, password: str, step: str) -> None:
    visit.goto(f"/login?profil={profile}", f"connexion {profile}")
    visit.fill("Identifiant", identifier)
    visit.fill("Mot de passe", password)
    visit.click("Se connecter", step)


def test_pupil_first_login_with_provisional_credentials(visit: Visit, demo: DemoStack) -> None:
    """On a phone, as most pupils would (every page is checked for sideways scrolling)."""
    identifier, provisional = demo.demo_account("Élève avec identifiants provisoires")
    visit.phone()
    log_in(visit, "eleve", identifier, provisional, "je crée mon compte")
    expect(visit.page.get_by_role("heading", level=1)).to_have_text("Je crée mon compte")
    expect(visit.page.get_by_text(identifier).first).to_be_visible()
    lead = visit.page.locator("p.fr-text--lead").inner_text()
    given, family = lead.removeprefix("Bonjour ").split(".")[0].split(" ", 1)
    date = demo.birth_dates(family)[given]
    # The provisional password cannot be kept: the page says so and the form can be corrected.
    visit.fill("Mot de passe", provisional)
    visit.fill("Confirmation du nouveau mot de passe", provisional)
    fill_date(visit.page, date)
    visit.click("Activer mon compte", "mot de passe provisoire refusé")
    expect(visit.page.get_by_role("alert")).to_contain_text("provisoire")
    visit.fill("Mot de passe", NEW_PASSWORD)
    visit.fill("Confirmation du nouveau mot de passe", NEW_PASSWORD)
    for label, value in (("Jour", str(date.day)), ("Mois", str(date.month)), ("Année", str(date.year))):
        assert visit.page.get_by_label(label).input_value() == value  # what was typed is kept
    visit.click("Activer mon compte", "compte activé")
    expect(visit.page.get_by_text("Votre compte a été activé avec succès")).to_be_visible()
    visit.page.context.clear_cookies()
    log_in(visit, "eleve", identifier, provisional, "ancien mot de passe refusé")
    expect(visit.page.get_by_role("alert")).to_be_visible()
    log_in(visit, "eleve", identifier, NEW_PASSWORD, "mes services")
    expect(visit.page.get_by_role("heading", level=1)).to_have_text("Mes services")
