"""The identity provider's other pages a person can land on without a service provider: information pages,
the placeholders, the error pages of each protocol and of a stale login. Each one is screenshotted and
checked by axe-core like every page; here the test also says each one is a proper French page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .browser import Visit

PAGES = [
    ("/pages/aide", "aide"),
    ("/pages/mentions-legales", "mentions légales"),
    ("/pages/accessibilite", "déclaration d'accessibilité"),
    ("/login/demande-inconnue", "demande de connexion inconnue"),
    ("/une-page-qui-n-existe-pas", "page introuvable"),
    ("/cas/login?service=https%3A%2F%2Finconnu.example%2F", "CAS service inconnu"),
    ("/oidc/authorize?client_id=inconnu&response_type=code&scope=openid&redirect_uri=https%3A%2F%2Fx.example%2F",
     "OIDC client inconnu"),
    ("/saml/sso/redirect", "SAML demande absente"),
    ("/creer-mon-compte/code", "activation sans demande"),
    ("/compte", "mon compte sans session"),
    ("/dev/outbox", "boîte d'envoi de développement"),
]


@pytest.mark.parametrize(("path", "step"), PAGES, ids=[step for _, step in PAGES])
def test_page_is_an_accessible_french_page(visit: Visit, path: str, step: str) -> None:
    visit.goto(path, step)
    assert visit.page.locator("html").get_attribute("lang") == "fr"
    expect(visit.page.get_by_role("heading", level=1)).to_have_count(1)
    expect(visit.page.get_by_role("main")).to_be_visible()
    assert " – " in visit.page.title()
