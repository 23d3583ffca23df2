"""Logging in at the identity provider in a real browser: the plain route, a wrong password announced to
screen readers, the keyboard alone, and a 320 px wide phone."""

from __future__ import annotations

from playwright.sync_api import expect

from .browser import Visit
from .servers import DemoStack

PHONE_WIDTH = 320


def _parent(demo: DemoStack) -> tuple[str, str]:
    return demo.demo_account("Représentant légal activé")


def test_parent_logs_in_and_reaches_mes_services(visit: Visit, demo: DemoStack) -> None:
    identifier, password = _parent(demo)
    visit.goto("/login", "choix du profil")
    expect(visit.page.get_by_role("heading", level=1)).to_have_text("Je sélectionne mon profil")
    visit.click(visit.page.get_by_role("link", name="Représentant légal"), "formulaire parent")
    visit.fill("Identifiant", identifier)
    visit.fill("Mot de passe", password)
    visit.click("Se connecter", "mes services")
    expect(visit.page.get_by_role("heading", level=1)).to_have_text("Mes services")
    expect(visit.page.get_by_text(f"({identifier})")).to_be_visible()
    visit.click(visit.page.get_by_role("link", name="Mon compte"), "mon compte")
    visit.page.go_back()
    visit.record("retour mes services")
    visit.click(visit.page.get_by_role("link", name="Se déconnecter"), "confirmer la déconnexion")
    visit.click(visit.page.get_by_role("button", name="Me déconnecter"), "déconnecté")
    visit.goto("/services", "services après déconnexion")
    expect(visit.page.get_by_role("heading", level=1)).not_to_have_text("Mes services")


def test_wrong_password_is_announced(visit: Visit, demo: DemoStack) -> None:
    identifier, _ = _parent(demo)
    visit.goto("/login?profil=parent", "formulaire parent")
    visit.fill("Identifiant", identifier)
    visit.fill("Mot de passe", "pas-le-bon-mot-de-passe")
    visit.click("Se connecter", "erreur de mot de passe")
    alert = visit.page.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("incorrect")
    # The fields say they are wrong and point at the message, for a screen reader reaching them.
    for field in ("Identifiant", "Mot de passe"):
        expect(visit.page.get_by_label(field, exact=True)).to_have_attribute("aria-invalid", "true")
    described = visit.page.get_by_label("Mot de passe", exact=True).get_attribute("aria-describedby") or ""
    assert alert.get_attribute("id") in described.split()
    # The typed identifier is kept, the password is not.
    expect(visit.page.get_by_label("Identifiant", exact=True)).to_have_value(identifier)
    expect(visit.page.get_by_label("Mot de passe", exact=True)).to_have_value("")


def _tab_to(visit: Visit, selector: str, limit: int = 25) -> None:
    """Press Tab until the element matching ``selector`` has the focus (as a keyboard user would)."""
    for _ in range(limit):
        visit.page.keyboard.press("Tab")
        if visit.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} never got the focus after {limit} Tab presses")


def test_keyboard_only_login(visit: Visit, demo: DemoStack) -> None:
    identifier, password = _parent(demo)
    visit.goto("/login", "choix du profil")
    _tab_to(visit, ".fr-skiplinks a[href='#contenu']")
    assert visit.evaluate("() => getComputedStyle(document.activeElement).outlineStyle") != "none"
    _tab_to(visit, ".fr-tile a[href*='profil=parent']")
    visit.press("Enter", "formulaire parent")
    _tab_to(visit, "#identifiant")
    style = visit.evaluate("() => { const s = getComputedStyle(document.activeElement);"
                           " return [s.outlineStyle, s.outlineWidth, s.boxShadow]; }")
    assert style[0] != "none" or style[2] != "none", f"no visible focus on the identifier field: {style}"
    visit.page.keyboard.type(identifier)
    _tab_to(visit, "#mot_de_passe")
    visit.page.keyboard.type(password)
    visit.press("Enter", "mes services")
    expect(visit.page.get_by_role("heading", level=1)).to_have_text("Mes services")


def test_login_pages_at_320_px(visit: Visit, demo: DemoStack) -> None:
    """Every page recorded is checked for sideways scrolling; these are the login pages on a phone."""
    visit.phone(PHONE_WIDTH)
    visit.goto("/login", "choix du profil 320 px")
    visit.click(visit.page.get_by_role("link", name="Représentant légal"), "formulaire parent 320 px")
    visit.fill("Identifiant", "x.inconnu1")
    visit.fill("Mot de passe", "pas-le-bon-mot-de-passe")
    visit.click("Se connecter", "erreur 320 px")
    visit.click(visit.page.get_by_role("link", name="Je n'ai pas de compte"), "activation 320 px")
    visit.goto("/login?profil=eleve", "formulaire élève 320 px")
    visit.click(visit.page.get_by_role("link", name="Mot de passe oublié"), "mot de passe oublié 320 px")
    visit.goto("/login?profil=parent", "formulaire parent 320 px")
    visit.click(visit.page.get_by_role("link", name="Identifiant oublié"), "identifiant oublié 320 px")
    assert visit.evaluate("() => window.innerWidth") == PHONE_WIDTH
