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
from flask.testing import FlaskClient

from idp.web import catalogues
from idp.web.i18n import choose_language

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
