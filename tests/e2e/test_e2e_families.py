"""Every family page in French and in Arabic (right to left), on a phone (360 px) and a desktop (1280 px):
each one screenshotted and checked by axe-core (no serious or critical violation), no sideways scrolling, the
page's ``lang`` and ``dir``, a way back or a way to the help page; and the dead ends walked to their way out.

The screenshots land in ``test-artifacts/e2e/<test>/``, beside the seeds' screens for comparison."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .browser import Visit
from .servers import DemoStack

#: The pages anybody can open, with the step name of their screenshot.
OPEN_PAGES = [
    ("/login", "choix du profil"),
    ("/login?profil=parent", "connexion représentant légal"),
    ("/login?profil=eleve", "connexion élève"),
    ("/creer-mon-compte", "activation étape 1"),
    ("/identifiant-oublie", "identifiant oublié"),
    ("/mot-de-passe-oublie", "mot de passe oublié"),
    ("/pages/aide", "aide"),
    ("/aide/demande?contexte=aide", "demande d'aide"),
    ("/pages/mentions-legales", "mentions légales"),
    ("/pages/accessibilite", "accessibilité"),
]
DIRECTION = {"fr": "ltr", "ar": "rtl"}
HELP_PAGE = "/pages/aide"


def _check_page(visit: Visit, lang: str) -> None:
    """The page speaks the chosen language and always offers a way to help (or, on it, a way back)."""
    html = visit.page.locator("html")
    assert html.get_attribute("lang") == lang and html.get_attribute("dir") == DIRECTION[lang]
    expect(visit.page.get_by_role("heading", level=1)).to_have_count(1)
    assert visit.page.locator(f"main a[href='{HELP_PAGE}'], main a[href='/login']").count() >= 1
    assert visit.page.locator("a[hreflang='ar'][lang='ar']").count() == 1  # the language switch


def _choose(visit: Visit, lang: str, width: int) -> str:
    visit.page.set_viewport_size({"width": width, "height": 800})
    visit.goto(f"/langue/{lang}?retour=/login", f"{lang} {width} px langue choisie")
    return f"{lang} {width} px"


@pytest.mark.parametrize("width", [360, 1280])
@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_open_pages(visit: Visit, demo: DemoStack, lang: str, width: int) -> None:
    prefix = _choose(visit, lang, width)
    for path, step in OPEN_PAGES:
        visit.goto(path, f"{prefix} {step}")
        _check_page(visit, lang)


@pytest.mark.parametrize("width", [360, 1280])
@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_sms_route_dead_ends_lead_somewhere(visit: Visit, demo: DemoStack, lang: str, width: int) -> None:
    """A parent the school does not know (or whose number it does not hold) types a number, gets no code,
    types any code: the page says why that may be and offers FranceConnect and the school's help request."""
    prefix = _choose(visit, lang, width)
    visit.goto("/creer-mon-compte", f"{prefix} activation étape 1")
    visit.page.locator("#nom").fill("Inconnu")
    visit.page.locator("#prenom").fill("Parent")
    visit.page.locator("#telephone").fill("01 23 45 67 89")  # a landline first
    visit.click(visit.page.locator("form button[type=submit]"), f"{prefix} fixe refusé")
    expect(visit.page.locator("#telephone-erreur")).to_be_visible()
    expect(visit.page.locator("#nom")).to_have_value("Inconnu")  # what was typed is kept
    _check_page(visit, lang)
    visit.page.locator("#telephone").fill("06 99 88 77 66")
    visit.click(visit.page.locator("form button[type=submit]"), f"{prefix} code envoyé")
    visit.page.locator("#code").fill("ZZZZZZ")
    visit.click(visit.page.locator("form button[type=submit]").first, f"{prefix} code refusé")
    help_box = visit.page.locator("section[aria-labelledby='pas-de-code']")
    expect(help_box).to_be_visible()
    expect(visit.page.locator("a[href='/aide/demande?contexte=sms']")).to_be_visible()
    expect(help_box.locator(".fr-connect")).to_have_count(1)  # FranceConnect confirms the identity without SMS
    _check_page(visit, lang)
    visit.click(visit.page.locator("main a.fr-btn--secondary[href^='/creer-mon-compte']").first,
                f"{prefix} précédent")
    expect(visit.page.locator("#prenom")).to_have_value("Parent")  # « Précédent » keeps what was typed


@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_lockout_keeps_the_form_and_offers_the_password_reset(visit: Visit, demo: DemoStack, lang: str) -> None:
    prefix = _choose(visit, lang, 360)
    visit.goto("/login?profil=parent", f"{prefix} connexion")
    for attempt in range(5):
        visit.page.locator("#identifiant").fill(f"z.verrou{lang}1")
        visit.page.locator("#mot_de_passe").fill("pas-le-bon-mot-de-passe")
        visit.click(visit.page.locator("form button[type=submit]"), f"{prefix} essai {attempt + 1}")
    expect(visit.page.locator(".fr-alert--warning")).to_be_visible()
    expect(visit.page.locator(".fr-alert--warning a[href^='/mot-de-passe-oublie']")).to_be_visible()
    expect(visit.page.locator("#identifiant")).to_have_value(f"z.verrou{lang}1")
    _check_page(visit, lang)


@pytest.mark.parametrize("width", [360, 1280])
@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_account_pages(visit: Visit, demo: DemoStack, lang: str, width: int) -> None:
    identifier, password = demo.demo_account("Représentant légal activé")
    prefix = _choose(visit, lang, width)
    visit.goto("/login?profil=parent", f"{prefix} connexion")
    visit.page.locator("#identifiant").fill(identifier)
    visit.page.locator("#mot_de_passe").fill(password)
    visit.click(visit.page.locator("form button[type=submit]"), f"{prefix} mes services")
    _check_page(visit, lang)
    for path, step in (("/compte", "mon compte"), ("/compte/mot-de-passe", "changer le mot de passe"),
                       ("/compte/telephone", "changer le numéro"), ("/compte/courriel", "changer l'adresse mail")):
        visit.goto(path, f"{prefix} {step}")
        _check_page(visit, lang)
        if path != "/compte":
            expect(visit.page.locator("main a[href='/compte']").first).to_be_visible()  # the way back
    visit.goto("/compte/mot-de-passe", f"{prefix} mot de passe : liste des règles")
    expect(visit.page.locator("#identifiant-affiche")).to_have_value(identifier)
    expect(visit.page.locator("#regles li")).to_have_count(7)  # every rule the server applies
    visit.page.locator("#mot_de_passe").fill("Azerty")
    # Ticked live: an upper and a lower case letter, and no name; "Azerty" is a common password.
    expect(visit.page.locator("#regles li.ok")).to_have_count(3)
    expect(visit.page.locator("#regles li[data-rule=common]")).to_have_attribute("data-state", "ko")
    visit.goto("/logout", f"{prefix} déconnexion")


def test_checklist_unticks_common_passwords_and_children_s_names_live(visit: Visit, demo: DemoStack) -> None:
    """The server's rules, live: a common password or a child's name (accents aside) unticks its item."""
    identifier, password = demo.demo_account("Représentant légal activé")
    visit.goto("/login?profil=parent", "connexion")
    visit.page.locator("#identifiant").fill(identifier)
    visit.page.locator("#mot_de_passe").fill(password)
    visit.click(visit.page.locator("form button[type=submit]"), "mes services")
    visit.goto("/compte/mot-de-passe", "mot de passe")
    field = visit.page.locator("#mot_de_passe")
    common, context = (visit.page.locator(f"#regles li[data-rule={rule}]") for rule in ("common", "context"))
    field.fill("Velo-Rouge-Garonne-42")
    expect(visit.page.locator("#regles li.ok")).to_have_count(7)
    visit.record("règles toutes respectées")
    field.fill("Azerty123!")
    expect(common).to_have_attribute("data-state", "ko")
    expect(context).to_have_attribute("data-state", "ok")
    visit.record("mot de passe courant")
    field.fill("Velours-THEO-42!")
    expect(context).to_have_attribute("data-state", "ko")
    expect(common).to_have_attribute("data-state", "ok")
    visit.record("prénom d'un enfant")


#: The protocol pages a parent may meet when a service sends a request we refuse.
PROTOCOL_REFUSALS = [
    ("/cas/login?service=https%3A%2F%2Finconnu.example%2F", "CAS service inconnu"),
    ("/oidc/authorize?client_id=inconnu&response_type=code&scope=openid&redirect_uri=https%3A%2F%2Fx.example%2F",
     "OIDC client inconnu"),
    ("/saml/init?sp=https%3A%2F%2Finconnu.example%2Fsp", "SAML service inconnu"),
]


def _log_in(visit: Visit, demo: DemoStack, prefix: str) -> None:
    identifier, password = demo.demo_account("Représentant légal activé")
    visit.goto("/login?profil=parent", f"{prefix} connexion")
    visit.page.locator("#identifiant").fill(identifier)
    visit.page.locator("#mot_de_passe").fill(password)
    visit.click(visit.page.locator("form button[type=submit]"), f"{prefix} mes services")


@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_protocol_and_logout_pages(visit: Visit, demo: DemoStack, lang: str) -> None:
    """Refusals of each protocol, the logout confirmations and the logged-out page, in the chosen language."""
    prefix = _choose(visit, lang, 360)
    for path, step in PROTOCOL_REFUSALS:
        visit.goto(path, f"{prefix} {step}")
        _check_page(visit, lang)
        expect(visit.page.locator("main .fr-alert--error")).to_be_visible()
    _log_in(visit, demo, prefix)
    visit.goto("/cas/logout", f"{prefix} CAS confirmer la déconnexion")
    _check_page(visit, lang)
    visit.goto("/logout", f"{prefix} confirmer la déconnexion")
    _check_page(visit, lang)
    visit.click(visit.page.locator("main form button[type=submit]"), f"{prefix} déconnecté")
    _check_page(visit, lang)
    expect(visit.page.locator("main .fr-alert--success")).to_be_visible()


@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_reset_code_page_names_the_identifier_typed(visit: Visit, demo: DemoStack, lang: str) -> None:
    prefix = _choose(visit, lang, 360)
    visit.goto("/mot-de-passe-oublie", f"{prefix} mot de passe oublié")
    visit.page.locator("#identifiant").fill("p.quelquun42")
    visit.page.locator("label[for=canal_mail]").click()
    visit.click(visit.page.locator("main form button[type=submit]"), f"{prefix} code envoyé")
    expect(visit.page.locator("main .fr-alert--info strong")).to_have_text("p.quelquun42")
    _check_page(visit, lang)
    visit.click(visit.page.locator("main .fr-alert--info a"), f"{prefix} corriger ma demande")
    expect(visit.page.locator("#identifiant")).to_have_value("p.quelquun42")


@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_franceconnect_link_refusal_is_at_the_password(visit: Visit, demo: DemoStack, lang: str) -> None:
    prefix = _choose(visit, lang, 360)
    _log_in(visit, demo, prefix)
    visit.goto("/compte/franceconnect", f"{prefix} lier FranceConnect")
    _check_page(visit, lang)
    visit.page.locator("#actuel-franceconnect").fill("pas-le-bon")
    visit.click(visit.page.locator("main form button[type=submit]"), f"{prefix} mot de passe refusé")
    expect(visit.page.locator("#actuel-franceconnect-erreur")).to_be_visible()
    expect(visit.page.locator("#actuel-franceconnect")).to_have_attribute("aria-describedby",
                                                                          "actuel-franceconnect-erreur")
    expect(visit.page.locator("main .fr-alert--error a[href='#actuel-franceconnect']")).to_be_visible()
    _check_page(visit, lang)
