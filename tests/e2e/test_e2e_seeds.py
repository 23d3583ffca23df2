"""The seeds side by side (issue 19, "Shows"): for each family screen the schools' tutorials describe, the seed's
words beside our page at 360 px and 1280 px (French), and what we changed and why.

Written to ``test-artifacts/e2e/seeds/index.html`` by the browser run itself, so the page always shows the
screens as they are; the longer list of differences, with their reasons, is ``docs/screens.md``.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import expect

from .browser import Visit
from .matrix_people import Register
from .servers import DemoStack
from .test_e2e_activation import NEW_PASSWORD, confirm_children, national

WIDTHS = (360, 1280)


@dataclass(frozen=True)
class Screen:
    """One screen of the seeds: where they describe it, their words, what ours does differently."""

    name: str
    seed: str
    quote: str
    changed: str


SCREENS = [
    Screen("Connexion", "000_22576438e4f1bbc8.txt",
           "Représentant légal — Je me connecte avec mon compte ÉduConnect — Identifiant (Identifiant oublié ? →) — "
           "Identifiant au format p.nomXX — Mot de passe (Mot de passe oublié ? →) — Se connecter — "
           "Je n'ai pas de compte →",
           "Same order and words; the DSFR form with each field's own error, the tries left before the wait, "
           "FranceConnect and the language switch (families who read French less well)."),
    Screen("Code SMS", "000_22576438e4f1bbc8.txt",
           "Un code de sécurité a été envoyé — Nous venons de vous envoyer un code de sécurité (valable 30 min) "
           "au +33 6 — Je saisis le code de sécurité reçu par SMS — Je n'ai pas reçu le code par SMS — "
           "Renvoyer le SMS",
           "Same texts; the message never says whether the person is known (« si ces informations "
           "correspondent… »), and the no-code help box offers FranceConnect and the school's help request."),
    Screen("Enfants", "000_22576438e4f1bbc8.txt",
           "Pour avoir accès aux services concernant les élèves ci-dessous, vous devez confirmer que vous êtes bien "
           "représentant(e) légal(e) de ces élèves et renseigner leur date de naissance. — Je suis le représentant "
           "légal de cet élève / Je ne suis pas le représentant légal de cet élève — Né le JJ MM AAAA",
           "Same choice per child; three date fields with labels, a child's school named, the tries left said "
           "(Arabic and the other languages with their plural forms)."),
    Screen("Mot de passe", "000_22576438e4f1bbc8.txt",
           "Je choisis mon nouveau mot de passe — Mot de passe — Fort — Doit contenir 1 majuscule …",
           "The rules listed are exactly the server's, ticked live without sending the form (and still checked "
           "when sent without JavaScript); the identifier is shown above for password managers."),
    Screen("Compte activé", "000_22576438e4f1bbc8.txt",
           "Votre compte a été activé avec succès — Notez votre identifiant EduConnect. Vous en aurez besoin pour "
           "votre prochaine connexion.",
           "Same message and identifier, then « Accéder à mes services » back to the service the parent came "
           "from."),
    Screen("Identifiant oublié", "004_4671950017561039.txt",
           "Identifiant oublié — Je récupère mon identifiant — Avec le n° de téléphone de mon compte — Avec "
           "l'adresse mail de mon compte — Je contacte l'école ou l'établissement des élèves rattachés à mon "
           "compte afin de récupérer mon identifiant ÉduConnect.",
           "Same three routes; the answer is the same whether or not an account uses that number (no account "
           "discovery), and the school route is a request the school's console receives."),
    Screen("Mon compte", "001_034e3e87fb53552d.txt",
           "SCOLARITÉ SERVICES — MON COMPTE — ACCUEIL — ORIENTATION — …",
           "« Mon compte » is ours, not the téléservices': phone, e-mail, password, FranceConnect link, each "
           "change confirmed by a code and announced on the old contact."),
]


def _shoot(visit: Visit, screen: str) -> dict[int, Path]:
    """The page as it is, at each width (no new navigation: the same page resized)."""
    shots = {}
    for width in WIDTHS:
        visit.page.set_viewport_size({"width": width, "height": 900})
        visit.record(f"{screen} {width} px")
        shots[width] = visit.shots[-1]
    return shots


def test_seeds_side_by_side(visit: Visit, demo: DemoStack) -> None:
    shots: dict[str, dict[int, Path]] = {}
    visit.goto("/login?profil=parent", "connexion")
    shots["Connexion"] = _shoot(visit, "connexion")
    register = Register(demo)
    try:
        parent = register.new_parent()  # the demo's own parent without an account is test_e2e_services'
    finally:
        register.close()
    visit.goto("/creer-mon-compte", "activation")
    visit.fill("Nom", parent.family)
    visit.fill("Prénom", parent.given)
    visit.page.get_by_label("N° de téléphone portable").fill(national(parent.phone))
    visit.click("Suivant", "code envoyé")
    shots["Code SMS"] = _shoot(visit, "code sms")
    visit.fill("Code de sécurité", demo.last_code(parent.phone))
    visit.click("Suivant", "mes enfants")
    shots["Enfants"] = _shoot(visit, "enfants")
    confirm_children(visit, parent.children)
    visit.click("Confirmer", "mot de passe")
    shots["Mot de passe"] = _shoot(visit, "mot de passe")
    visit.fill("Mot de passe", NEW_PASSWORD)
    visit.fill("Confirmation du nouveau mot de passe", NEW_PASSWORD)
    visit.click("Suivant", "compte activé")
    expect(visit.page.get_by_text("Votre compte a été activé avec succès")).to_be_visible()
    shots["Compte activé"] = _shoot(visit, "compte active")
    visit.goto("/identifiant-oublie", "identifiant oublié")
    shots["Identifiant oublié"] = _shoot(visit, "identifiant oublie")
    identifier, password = demo.demo_account("Représentant légal activé")
    visit.page.context.clear_cookies()
    visit.goto("/login?profil=parent", "connexion compte actif")
    visit.page.locator("#identifiant").fill(identifier)
    visit.page.locator("#mot_de_passe").fill(password)
    visit.click(visit.page.locator("form button[type=submit]"), "mes services")
    visit.goto("/compte", "mon compte")
    expect(visit.page.get_by_role("heading", level=1)).to_be_visible()
    shots["Mon compte"] = _shoot(visit, "mon compte")
    page = visit.directory.parent / "seeds" / "index.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(_index(shots, page.parent), encoding="utf-8")
    assert [screen.name for screen in SCREENS] == list(shots)


def _index(shots: dict[str, dict[int, Path]], here: Path) -> str:
    rows = []
    for screen in SCREENS:
        taken = shots[screen.name]
        images = "".join(
            f'<figure><img src="{html.escape(os.path.relpath(path, here))}" alt="{html.escape(screen.name)}, '
            f'{width} px" width="{min(width, 640) // 2}"><figcaption>{width} px</figcaption></figure>'
            for width, path in sorted(taken.items()))
        rows.append(f"<section><h2>{html.escape(screen.name)}</h2><div class=row>"
                    f"<blockquote><p>{html.escape(screen.quote)}</p><cite>{html.escape(screen.seed)}</cite>"
                    f"</blockquote><div class=shots>{images}</div></div>"
                    f"<p><strong>What we changed / why:</strong> {html.escape(screen.changed)}</p></section>")
    return ("<!doctype html><html lang=en><meta charset=utf-8><title>Seeds side by side</title><style>"
            "body{font-family:sans-serif;margin:2rem}.row{display:flex;gap:2rem;align-items:flex-start}"
            "blockquote{flex:0 0 30%;border-left:4px solid #000091;margin:0;padding-left:1rem}"
            ".shots{display:flex;gap:1rem;align-items:flex-start}img{border:1px solid #ccc}</style>"
            "<h1>The seeds' screens beside ours (French)</h1><p>Each seed's description (quoted, its file in "
            "/work/shared/seeds) beside our page at 360 px and 1280 px; the full list of differences is "
            "docs/screens.md.</p>" + "".join(rows) + "</html>\n")
