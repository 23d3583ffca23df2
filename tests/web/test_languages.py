"""Six languages: the page's language and direction, the switch on every page, the catalogues complete.

The last two tests are the guard for whoever adds a screen: a French text written in a template outside
``_()``/``{% trans %}``, or a marked text missing from a catalogue (or a stale ``.mo``), fails here; the fix is
``idp i18n update``, then translating the new entries (README, "Languages").
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from conftest import csrf_from
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import ngettext

from idp.core import i18n as core_i18n
from idp.core.activation.errors import ContactChangeRefused
from idp.web import catalogues
from idp.web.i18n import PageCatalogue, choose_language

LANGUAGES = ("fr", "en", "ar", "tr", "pt", "es")
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
#: Pages the application never shows to families stay French: activation_outbox.html (development) and
#: lb_unavailable.html (HAProxy's static page when no instance answers: no language known). The staff console
#: (templates/staff/, not globbed here) is French by design: it serves French school staff.
FRENCH_ONLY = {"activation_outbox.html", "lb_unavailable.html"}


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_the_browser_language_is_the_first_guess_and_french_the_default() -> None:
    assert choose_language(None, "en-GB,en;q=0.9,fr;q=0.8", LANGUAGES) == "en"
    assert choose_language(None, "ar-MA,ar;q=0.9", LANGUAGES) == "ar"
    assert choose_language(None, "de-DE,de;q=0.9", LANGUAGES) == "fr"
    assert choose_language(None, None, LANGUAGES) == "fr"
    assert choose_language("tr", "en", LANGUAGES) == "tr"  # the switch wins over the browser
    assert choose_language("xx", "es", LANGUAGES) == "es"  # an unknown cookie is ignored


@pytest.mark.parametrize(("accept", "lang", "direction", "words"), [
    ("fr-FR", "fr", "ltr", "Je sélectionne mon profil"),
    ("en-GB", "en", "ltr", "I select my profile"),
    ("ar", "ar", "rtl", "أختار صفتي"),
    ("tr-TR", "tr", "ltr", "Profilimi seçiyorum"),
    ("pt-PT", "pt", "ltr", "Seleciono o meu perfil"),
    ("es-ES", "es", "ltr", "Selecciono mi perfil"),
])
def test_each_language_sets_lang_dir_and_text(client: FlaskClient, accept: str, lang: str, direction: str,
                                              words: str) -> None:
    page = text_of(client.get("/login", headers={"Accept-Language": accept}))
    assert f'<html lang="{lang}" dir="{direction}">' in page
    assert words in page
    for code in LANGUAGES:  # the switch, each language named in itself with its own lang attribute
        assert f'lang="{code}" hreflang="{code}"' in page


def test_the_switch_is_kept_in_a_cookie_and_goes_back_to_the_same_page(client: FlaskClient) -> None:
    page = text_of(client.get("/creer-mon-compte?depuis=/login"))
    link = re.search(r'href="(/langue/ar\?retour=[^"]+)"', page).group(1)
    switched = client.get(link)
    assert switched.status_code == 303 and switched.headers["Location"] == "/creer-mon-compte?depuis=/login"
    assert "idp_lang=ar" in switched.headers["Set-Cookie"] and "HttpOnly" in switched.headers["Set-Cookie"]
    again = text_of(client.get("/creer-mon-compte", headers={"Accept-Language": "en"}))
    assert 'lang="ar" dir="rtl"' in again and "تفعيل الحساب" in again
    # Never a redirect elsewhere than this site.
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        assert client.get("/langue/en", query_string={"retour": target}).headers["Location"] == "/"


def test_errors_and_messages_from_the_core_are_translated(client: FlaskClient) -> None:
    client.set_cookie("idp_lang", "en")
    page = text_of(client.get("/creer-mon-compte"))
    answer = client.post("/creer-mon-compte", data={"csrf_token": csrf_from(page), "nom": "", "prenom": "Léa",
                                                    "telephone": "01 23 45 67 89"})
    text = text_of(answer)
    assert answer.status_code == 400
    assert "Enter your surname, as the school knows it." in text
    assert "This is a landline number" in text  # a landline refused as a mobile, in the page's language


def test_every_marked_text_is_in_every_catalogue_and_compiled() -> None:
    report = catalogues.check()
    assert sorted(report.missing) == sorted(LANGUAGES[1:])
    assert report.ok, {"missing": {k: v[:5] for k, v in report.missing.items() if v}, "stale": report.stale}


def _bare_text(source: str) -> list[str]:
    """Words of a template that no gettext call or trans block covers."""
    source = re.sub(r"{%-?\s*trans\b.*?endtrans\s*-?%}", " ", source, flags=re.S)
    source = re.sub(r"{#.*?#}|{%.*?%}|{{.*?}}", " ", source, flags=re.S)
    source = re.sub(r"<(script|style)\b.*?</\1>", " ", source, flags=re.S)
    source = re.sub(r"<[^>]*>", " ", source, flags=re.S)
    source = re.sub(r"&[a-z]+;|&#\d+;", " ", source)
    return [w for w in re.findall(r"[^\W\d_]{2,}", source) if w not in {"JJ", "MM", "AAAA"}]


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.html") if p.name not in FRENCH_ONLY))
def test_no_template_text_escapes_translation(template: str) -> None:
    assert _bare_text((TEMPLATES / template).read_text(encoding="utf-8")) == []


#: Each language's plural rule as gettext writes it (CLDR's, through Babel): Arabic has six forms.
PLURAL_FORMS = {
    "ar": (6, "(n == 0 ? 0 : n == 1 ? 1 : n == 2 ? 2 : n % 100 >= 3 && n % 100 <= 10 ? 3 : n % 100 >= 11 && "
              "n % 100 <= 99 ? 4 : 5)"),
    "en": (2, "(n != 1)"),
    "tr": (2, "(n != 1)"),
    "pt": (3, "(n == 0 || n == 1) ? 0 : n != 0 && n % 1000000 == 0 ? 1 : 2"),
    "es": (3, "(n == 1 ? 0 : n != 0 && n % 1000000 == 0 ? 1 : 2)"),
}


@pytest.mark.parametrize("lang", sorted(PLURAL_FORMS))
def test_each_catalogue_has_its_plural_rule_and_every_form_of_every_count(lang: str) -> None:
    catalog = catalogues.read(lang)
    assert (catalog.num_plurals, catalog.plural_expr) == PLURAL_FORMS[lang]
    counted = [m for m in catalog if m.id and m.pluralizable]
    assert len(counted) >= 10  # tries left, seconds, minutes, hours, characters, devices
    for message in counted:
        assert len(message.string) == catalog.num_plurals and all(message.string), message.id


def test_a_missing_plural_form_is_reported() -> None:
    catalog = catalogues.read("ar")
    message = next(m for m in catalog if m.id and m.pluralizable)
    message.string = (*message.string[:-1], "")
    assert not catalogues._translated(catalog, message.id)


@pytest.mark.parametrize(("tries", "words"), [(2, "محاولتان"), (3, "محاولات"), (11, "محاولةً")])
def test_arabic_counts_take_their_own_form(app: Flask, tries: int, words: str) -> None:
    with app.test_request_context("/", headers={"Accept-Language": "ar"}):
        page = ngettext("Il vous reste %(count)s essai avant que la connexion soit suspendue quelques minutes.",
                        "Il vous reste %(count)s essais avant que la connexion soit suspendue quelques minutes.",
                        tries, count=tries)  # the login page's {% trans count %}…{% pluralize %}
        token = core_i18n.use(PageCatalogue())
        try:
            core = core_i18n.ngettext("Il vous reste %(n)s essai.", "Il vous reste %(n)s essais.", tries)
        finally:
            core_i18n.reset(token)
    assert words in page and str(tries) in page
    assert words in core and str(tries) in core


def test_the_help_request_is_a_families_page_in_their_language(client: FlaskClient) -> None:
    client.set_cookie("idp_lang", "tr")
    page = text_of(client.get("/aide/demande?contexte=sms"))
    assert '<html lang="tr" dir="ltr">' in page and "Talebimi gönder" in page
    sent = client.post("/aide/demande?contexte=sms", data={"csrf_token": csrf_from(page), "nom": "Durand",
                                                           "prenom": "", "uai": "", "enfants": "", "contact": ""})
    answer = text_of(sent)
    assert sent.status_code == 400 and 'value="Durand"' in answer  # what was typed is kept
    for field, words in (("uai", "Çocuklarınızın okulunu listeden seçin."), ("enfants", "sınıfını belirtin"),
                         ("contact", "yanıt verebileceği")):
        assert f'id="{field}-erreur"' in answer and words in answer
    assert 'id="prenom-erreur"' in answer and 'id="nom-erreur"' not in answer


@pytest.mark.parametrize(("reason", "sms", "words"), [
    ("account", True, "your current number stays valid"), ("account", False, "your current address stays valid"),
    ("recipient", True, "This number has already received"), ("budget", True, "confirmation text messages"),
    ("address", False, "Too many requests from this connection"),
])
def test_the_contact_change_refusals_are_translated(app: Flask, reason: str, sms: bool, words: str) -> None:
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        token = core_i18n.use(PageCatalogue())
        try:
            assert words in ContactChangeRefused(reason, sms=sms).description
        finally:
            core_i18n.reset(token)
