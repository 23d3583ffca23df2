"""No dead end, no enumeration on the SMS route (issue 19): a wrong number, a code that never comes, a wrong
code, a landline, a swapped date — each page says what happened and offers a way out, and says it the same
whether or not the person is in the register."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from flask.testing import FlaskClient
from test_activation_support import PHONE, Browser, flow_settings, last_code, make_family, outbox, text_of

from idp.settings import Settings
from idp.wiring import Services

HELP = "/aide/demande?contexte=sms"
#: What changes from one browser to the next and is not about the person: tokens, masked number, ids.
_NOISE = re.compile(r'name="csrf_token" value="[^"]+"|\+33 \d •• •• •• \d\d|[?&]retour=[^"]*')


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    return flow_settings(base_settings)


def _page_after_wrong_code(client: FlaskClient, family: str, given: str) -> str:
    browser = Browser(client)
    assert browser.start_activation(family, given, "06 12 34 56 78").status_code == 303
    wrong = browser.code("ZZZZZZ")
    assert wrong.status_code == 400
    return text_of(wrong)


def _page_after_resend(client: FlaskClient, family: str, given: str) -> str:
    browser = Browser(client)
    browser.start_activation(family, given, "06 12 34 56 78")
    return text_of(browser.post("/creer-mon-compte/renvoyer", {}, page="/creer-mon-compte/code"))


@pytest.mark.parametrize("step", [_page_after_wrong_code, _page_after_resend], ids=["wrong-code", "no-code"])
def test_the_way_out_is_the_same_page_whether_or_not_the_parent_matched(app, services: Services, step) -> None:
    make_family(services)
    matched = step(app.test_client(), "Martin", "Sophie")
    unknown = step(app.test_client(), "Personne", "Inconnue")
    assert _NOISE.sub("", matched) == _NOISE.sub("", unknown)  # no enumeration: byte for byte the same
    for words in ("Le code n'arrive pas ou il est refusé ?", "numéro de téléphone portable que l'établissement",
                  "quelques minutes", HELP, "Corriger mon nom ou mon numéro", "fr-connect"):
        assert words in matched, words
    assert outbox(services, PHONE)  # the matching parent did get a code (the page just does not say so)


def test_back_from_the_code_page_keeps_what_was_typed(client: FlaskClient, services: Services) -> None:
    make_family(services)
    browser = Browser(client)
    browser.start_activation("Martin", "Sophie", "06 12 34 56 78")
    code_page = text_of(client.get("/creer-mon-compte/code"))
    back = re.search(r'<a class="fr-btn fr-btn--secondary" href="([^"]+)">Précédent</a>', code_page).group(1)
    start = text_of(client.get(back))
    for name, value in (("nom", "Martin"), ("prenom", "Sophie"), ("telephone", "06 12 34 56 78")):
        assert f'name="{name}"\n         value="{value}"' in start, name


def test_a_landline_is_refused_as_a_mobile_at_its_field(client: FlaskClient, services: Services) -> None:
    make_family(services)
    answer = Browser(client).start_activation("Martin", "Sophie", "01 23 45 67 89")
    page = text_of(answer)
    assert answer.status_code == 400
    assert 'id="telephone-erreur">Ce numéro est celui d\'un téléphone fixe' in page
    assert 'aria-invalid="true"' in page and 'href="#telephone"' in page  # the summary points at the field
    assert 'value="Martin"' in page and 'value="01 23 45 67 89"' in page  # what was typed is kept
    assert not outbox(services)  # nothing sent


def test_each_empty_field_says_what_to_type(client: FlaskClient, services: Services) -> None:
    page = text_of(Browser(client).start_activation("", "", ""))
    assert 'id="nom-erreur">Indiquez votre nom, tel que l\'établissement le connaît.' in page
    assert 'id="prenom-erreur">Indiquez votre prénom' in page
    assert 'id="telephone-erreur">Indiquez votre numéro de téléphone portable' in page
    assert "invalide" not in page


def test_dates_are_forgiving_and_name_the_child(client: FlaskClient, services: Services) -> None:
    family = make_family(services)
    browser = Browser(client)
    browser.start_activation()
    browser.code(last_code(services))
    order = browser.child_order()
    data = {}
    for i, name in enumerate(order):
        born = next(d for n, d in family.children.items() if name.startswith(n))
        data.update({f"lien_{i}": "oui", f"naissance_{i}_jour": str(born.day), f"naissance_{i}_mois": str(born.month),
                     f"naissance_{i}_annee": str(born.year % 100)})  # a two-digit year
    page = text_of(browser.post("/creer-mon-compte/eleves", data))
    for i, name in enumerate(order):
        subject = f"d'{name}" if name[0] in "AEIOUYHÉÈ" else f"de {name}"
        assert (f'id="naissance_{i}-erreur">Pour la date de naissance {subject}, écrivez l\'année avec 4 chiffres'
                in page), name
    # One or two digits for day and month are fine: the right dates go through.
    right = dict(data)
    for i, name in enumerate(order):
        right[f"naissance_{i}_annee"] = str(next(d for n, d in family.children.items() if name.startswith(n)).year)
    assert browser.post("/creer-mon-compte/eleves", right).headers["Location"] == "/creer-mon-compte/mot-de-passe"


def test_the_children_and_password_steps_have_a_way_back(client: FlaskClient, services: Services) -> None:
    make_family(services)
    browser = Browser(client)
    browser.start_activation()
    browser.code(last_code(services))
    for path in ("/creer-mon-compte/eleves",):
        page = text_of(client.get(path))
        assert "Abandonner et revenir à la page de connexion" in page and 'href="/pages/aide"' in page


def test_the_help_page_says_whom_to_contact(client: FlaskClient) -> None:
    page = text_of(client.get("/pages/aide"))
    assert "Qui contacter ?" in page and "secrétariat ou le référent numérique" in page
    assert 'href="/aide/demande?contexte=aide"' in page and 'href="/login"' in page  # a request, a way back


def test_today_is_the_limit_for_a_birth_date() -> None:
    from idp.core.activation.dates import read_date

    today = dt.date(2026, 12, 4)
    assert read_date("7", "3", "2015", name="Léa", today=today).value == dt.date(2015, 3, 7)
    assert "inversés" in read_date("3", "14", "2015", name="Léa", today=today).problem
    assert "n'existe pas" in read_date("31", "2", "2015", name="Inès", today=today).problem
    assert "d'Inès" in read_date("", "", "", name="Inès", today=today).problem
    assert "de Léa" in read_date("", "", "", name="Léa", today=today).problem
    assert read_date("7", "3", "2027", name="Léa", today=today).problem
