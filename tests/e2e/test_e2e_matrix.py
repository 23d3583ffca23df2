"""The browser matrix (issue 16): every service × every route, each cell started at the service in a fresh
browser context, ending on the service's own page with the person's name shown by the service.

Services: the ENT started at the ENT (SAML, SP-initiated), the same ENT entered from our « Mes services »
(IdP-initiated: the person starts at our portal), Pronote (CAS), the téléservices (OpenID Connect). Routes:
password; already logged in elsewhere (no password asked); a parent activating by SMS; a pupil's first login
with provisional credentials; FranceConnect (the demo's FranceConnect-style provider); « Mot de passe oublié »
then login. Each cell has people of its own (``matrix_people``); a Content-Security-Policy violation in the
browser's console (Chromium applies ``form-action`` to the redirects after a form, SECURITY S31) or an
uncaught page error fails the cell. Screenshots: ``test-artifacts/e2e/matrix/<service>-<route>/``.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Error, Frame, expect

from .accessibility import write_test_checks
from .browser import Visit
from .matrix_people import NEW_PASSWORD, Person, Register
from .servers import DemoStack
from .test_e2e_activation import confirm_children, national
from .test_e2e_services import _ent_first_visit

SERVICES = ("ent", "ent-mes-services", "pronote", "teleservices")
ROUTES = ("mot-de-passe", "sso", "activation-sms", "premiere-connexion", "franceconnect", "mot-de-passe-oublie")
PROFILES = {"parent": "Représentant légal", "eleve": "Élève"}


class Cell(Visit):
    """A visit that also listens to the browser: CSP violations, page errors, every main-frame address."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.violations: list[str] = []
        self.addresses: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.violations.append(f"page error: {error}"))
        self.page.on("framenavigated", self._navigated)

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.violations.append(f"{message.type} at {self.page.url}: {message.text}")

    def _navigated(self, frame: Frame) -> None:
        if frame == self.page.main_frame:
            self.addresses.append(frame.url)


@pytest.fixture(scope="module")
def register(demo: DemoStack) -> Iterator[Register]:
    people = Register(demo)
    yield people
    people.close()


@pytest.fixture
def visit(request: pytest.FixtureRequest, chromium_browser: object, demo: DemoStack,
          e2e_root: Path) -> Iterator[Cell]:
    """A fresh browser context for one cell; its screenshots in ``matrix/<service>-<route>/``."""
    cell = "-".join(str(v) for v in request.node.callspec.params.values())
    directory = e2e_root / "matrix" / cell
    if directory.exists():
        shutil.rmtree(directory)
    context = chromium_browser.new_context(  # type: ignore[attr-defined]
        locale="fr-FR", viewport={"width": 1280, "height": 900}, base_url=demo.base_url)
    context.set_default_timeout(15_000)
    session = Cell(context.new_page(), directory, f"matrix {cell}", demo.base_url)
    yield session
    report = getattr(request.node, "e2e_call_report", None)
    if report is not None and report.failed and not session.page.is_closed():
        with contextlib.suppress(Exception):
            session.record("echec")
    write_test_checks(directory, session.checks)
    context.close()


# --- at the service ------------------------------------------------------------------------------------------


def start(visit: Cell, demo: DemoStack, service: str) -> None:
    """Open the service as a person does and ask it to log in (the portal itself for « Mes services »)."""
    if service == "ent-mes-services":
        visit.goto(demo.base_url + "/", "portail")
        return
    base = demo.url("ent" if service == "ent" else service)
    visit.goto(base + "/", f"{service} accueil")
    link = "Se connecter" if service == "ent" else "Se connecter avec ÉduConnect"
    visit.click(visit.page.get_by_role("link", name=link), f"{service} se connecter")
    if service == "ent":
        expect(visit.page.get_by_text("Vous souhaitez vous connecter à votre ENT en tant que :")).to_be_visible()
        visit.click("Valider", "ENT vers ÉduConnect")


def arrive(visit: Cell, demo: DemoStack, service: str, person: Person) -> None:
    """The service's own pages after the login; its page must show the person's name."""
    if service == "ent-mes-services":
        assert visit.page.url.startswith(demo.base_url + "/services"), visit.page.url
        entry = visit.page.get_by_role("link", name="ENT", exact=True)
        assert (entry.get_attribute("href") or "").startswith("/saml/init?sp="), "not an IdP-initiated entry"
        visit.click(entry, "ENT depuis Mes services")
    if service.startswith("ent"):
        _ent_first_visit(visit, demo)
        expect(visit.page.get_by_role("heading", level=1)).to_contain_text(f"Bonjour {person.name}")
        return
    assert visit.page.url.startswith(demo.url(service)), visit.page.url
    if service == "pronote" and visit.page.get_by_label("J'ai pris connaissance de ces informations").count():
        visit.page.get_by_label("J'ai pris connaissance de ces informations").check()
        visit.click("Accéder à Pronote.net", "Pronote accueil")
    expect(visit.page.locator("header .who")).to_have_text(person.name)


# --- at the identity provider --------------------------------------------------------------------------------


def choose_profile(visit: Cell, profile: str) -> None:
    """« Je sélectionne mon profil », when the screen asks."""
    if not visit.page.locator("#mot_de_passe").count():
        visit.click(visit.page.get_by_role("link", name=PROFILES[profile]), f"formulaire {profile}")


def log_in(visit: Cell, person: Person, profile: str = "parent", password: str = "") -> None:
    choose_profile(visit, profile)
    visit.fill("Identifiant", person.identifier)
    visit.fill("Mot de passe", password or person.password)
    visit.click("Se connecter", "après connexion")


def choose_password(visit: Cell, button: str) -> None:
    visit.fill("Mot de passe", NEW_PASSWORD)
    visit.fill("Confirmation du nouveau mot de passe", NEW_PASSWORD)
    visit.click(button, "mot de passe choisi")


def activated_then_back(visit: Cell) -> None:
    """« Votre compte a été activé avec succès », then « Accéder à mes services » (back to the service)."""
    expect(visit.page.get_by_text("Votre compte a été activé avec succès")).to_be_visible()
    visit.click(visit.page.get_by_role("link", name="Accéder à mes services"), "retour au service")


def children_then_password(visit: Cell, person: Person) -> None:
    """A parent's last steps once the code is typed: each child's birth date, then the password."""
    visit.click("Suivant", "mes enfants")
    confirm_children(visit, person.children)
    visit.click("Confirmer", "mot de passe")
    choose_password(visit, "Suivant")
    activated_then_back(visit)


def by_password(visit: Cell, demo: DemoStack, person: Person) -> None:
    log_in(visit, person)


def by_sms_activation(visit: Cell, demo: DemoStack, person: Person) -> None:
    choose_profile(visit, "parent")
    visit.click(visit.page.get_by_role("link", name="Je n'ai pas de compte"), "activation identité")
    visit.fill("Nom", person.family)
    visit.fill("Prénom", person.given)
    visit.fill("N° de téléphone portable", national(person.phone))
    visit.click("Suivant", "code envoyé")
    visit.fill("Code de sécurité", demo.last_code(person.phone))
    children_then_password(visit, person)


def by_provisional(visit: Cell, demo: DemoStack, person: Person) -> None:
    log_in(visit, person, "eleve")
    expect(visit.page.get_by_role("heading", level=1)).to_have_text("Je crée mon compte")
    assert person.birth_date is not None
    visit.fill("Mot de passe", NEW_PASSWORD)
    visit.fill("Confirmation du nouveau mot de passe", NEW_PASSWORD)
    visit.fill("Jour", f"{person.birth_date.day:02d}")
    visit.fill("Mois", f"{person.birth_date.month:02d}")
    visit.fill("Année", str(person.birth_date.year))
    visit.click("Activer mon compte", "compte activé")
    activated_then_back(visit)


def by_franceconnect(visit: Cell, demo: DemoStack, person: Person) -> None:
    choose_profile(visit, "parent")
    visit.click(visit.page.get_by_role("link", name=re.compile("S'identifier avec FranceConnect")), "FranceConnect")
    assert visit.page.url.startswith(demo.url("franceconnect")), visit.page.url
    visit.click(visit.page.get_by_role("button", name=re.compile(f"^{person.given}")), "retour de FranceConnect")
    assert visit.on_idp(), visit.page.url
    visit.page.get_by_label(re.compile("^Code")).fill(demo.last_code(person.phone))
    children_then_password(visit, person)


def by_recovery(visit: Cell, demo: DemoStack, person: Person) -> None:
    choose_profile(visit, "parent")
    visit.click(visit.page.get_by_role("link", name="Mot de passe oublié"), "mot de passe oublié")
    visit.fill("Identifiant", person.identifier)
    visit.click("Recevoir un code", "code envoyé")
    visit.fill("Code reçu", demo.last_code(person.phone))
    visit.click("Continuer", "nouveau mot de passe")
    choose_password(visit, "Enregistrer")
    visit.click(visit.page.get_by_role("link", name="Se connecter"), "connexion après changement")
    log_in(visit, person, password=NEW_PASSWORD)


ROUTE_STEPS: dict[str, Callable[[Cell, DemoStack, Person], None]] = {
    "mot-de-passe": by_password, "sso": by_password, "activation-sms": by_sms_activation,
    "premiere-connexion": by_provisional, "franceconnect": by_franceconnect, "mot-de-passe-oublie": by_recovery,
}


def person_for(register: Register, service: str, route: str) -> Person:
    """Fresh people for this cell (activation, recovery and first logins consume them)."""
    if route == "activation-sms":
        return register.new_parent()
    if route == "premiere-connexion":
        return register.provisional_pupil()
    if route == "franceconnect":
        return register.franceconnect_parent(SERVICES.index(service))
    return register.parent_with_account()


def logged_in_elsewhere(visit: Cell, demo: DemoStack, service: str, person: Person) -> None:
    """The SSO route's first half: a password login at another service, in the same browser."""
    other = "pronote" if service.startswith("ent") else "ent"
    start(visit, demo, other)
    log_in(visit, person)
    arrive(visit, demo, other, person)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("service", SERVICES)
def test_matrix(service: str, route: str, visit: Cell, demo: DemoStack, register: Register) -> None:
    person = person_for(register, service, route)
    try:
        if route == "sso":
            logged_in_elsewhere(visit, demo, service, person)
            before = len(visit.addresses)
            start(visit, demo, service)
            asked = [a for a in visit.addresses[before:] if a.startswith(demo.base_url + "/login")]
            assert not asked, f"the password was asked again: {asked}"
        else:
            start(visit, demo, service)
            assert visit.on_idp(), visit.page.url
            ROUTE_STEPS[route](visit, demo, person)
        arrive(visit, demo, service, person)
    except (AssertionError, Error) as exc:
        if visit.violations:
            raise AssertionError("CSP violations in the browser:\n" + "\n".join(visit.violations)) from exc
        raise
    assert not visit.violations, "CSP violations in the browser:\n" + "\n".join(visit.violations)
