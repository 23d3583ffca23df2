"""The families' language: six catalogues (flask-babel), a switch on every page, ``lang`` and ``dir`` set right.

The language is the one chosen with the switch (kept in a cookie), else the browser's ``Accept-Language`` best
match among ``[i18n] languages``, else the first of them (French). Catalogues live in ``idp/translations/``;
``idp i18n update`` extracts the templates' and code's strings and merges them in, ``idp i18n check`` fails on
a string missing from a catalogue (README, "Languages").
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Flask, current_app, g, redirect, request
from flask.typing import ResponseReturnValue
from flask_babel import Babel, get_locale, get_translations
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from idp.core import i18n as core_i18n
from idp.settings import Settings
from idp.web.security import sso_token

TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
LANG_COOKIE = "idp_lang"

#: Each language named in itself (the switch shows these, with ``lang`` on each link: WCAG 3.1.2).
NATIVE_NAMES = {"fr": "Français", "en": "English", "ar": "العربية", "tr": "Türkçe", "pt": "Português",
                "es": "Español"}
#: The same languages named in French, for the staff console (French only) to say which one a family reads.
FRENCH_NAMES = {"fr": "français", "en": "anglais", "ar": "arabe", "tr": "turc", "pt": "portugais", "es": "espagnol"}
RIGHT_TO_LEFT = frozenset({"ar", "he", "fa", "ur"})
#: Settings' default texts shown to families (translated where shown).
DEFAULT_TEXTS = (core_i18n.N_("Le compte des parents et des élèves"),)

bp = Blueprint("i18n", __name__)


def french_language_name(code: str | None) -> str:
    """A family's language as the console and the command line name it (« arabe »); « non connue » before it is
    recorded."""
    return FRENCH_NAMES.get(code, code) if code else "non connue"


def choose_language(chosen: str | None, accept_language: str | None, languages: tuple[str, ...]) -> str:
    """The page's language: the cookie's if offered, else the browser's best match, else the first offered."""
    if chosen in languages:
        return chosen  # type: ignore[return-value]
    if accept_language:
        best = parse_accept_header(accept_language, LanguageAccept).best_match(languages)
        if best:
            return best
    return languages[0]


#: Blueprints whose pages are written in French only (the school staff console): ``lang``, ``dir`` and the shared
#: macros' texts follow the page, whatever language the browser chose for the families' pages.
FRENCH_ONLY = frozenset({"staff"})


def _select_locale() -> str:
    if request.blueprint in FRENCH_ONLY:
        return "fr"
    settings: Settings = current_app.extensions["idp"].settings
    return choose_language(request.cookies.get(LANG_COOKIE), request.headers.get("Accept-Language"),
                           settings.i18n.languages)


def page_language() -> dict[str, str]:
    """``lang`` and ``dir`` of the page being rendered (for ``<html>``)."""
    lang = str(get_locale() or "fr")
    return {"lang": lang, "dir": "rtl" if lang in RIGHT_TO_LEFT else "ltr"}


#: The query parameters a page keeps when the language is switched (the rest, e.g. a CAS ``url`` or a
#: service address, is never echoed into the switch's links).
_KEPT_PARAMETERS = ("profil", "demande", "contexte")


def switch_back() -> str:
    """The address to come back to after switching language: this page (GET), with its harmless parameters."""
    if request.method != "GET":
        return request.path
    kept = [(k, v) for k, v in request.args.items(multi=True) if k in _KEPT_PARAMETERS and v.isascii()]
    depuis = request.args.get("depuis", "")
    if depuis.startswith("/login"):
        kept.append(("depuis", _local_path(depuis)))
    return request.path + ("?" + urlencode(kept, safe="/") if kept else "")


def _local_path(target: str) -> str:
    """A path on this site to go back to after switching language; anything else becomes the home page."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@bp.get("/langue/<code>")
def switch(code: str) -> ResponseReturnValue:
    """Remember the language chosen with the switch and go back to the page it was chosen on."""
    services = current_app.extensions["idp"]
    settings: Settings = services.settings
    response = redirect(_local_path(request.args.get("retour", "/")), 303)
    if code in settings.i18n.languages:
        response.set_cookie(LANG_COOKIE, code, max_age=settings.i18n.cookie_days * 86400, secure=settings.https,
                            httponly=True, samesite="Lax")
        services.flow.remember_language(sso_token(settings), code)  # a logged-in person: kept on the account
    return response


def install_i18n(app: Flask, settings: Settings) -> None:
    """Plug flask-babel (catalogues in ``idp/translations``) and the language switch into the application."""
    Babel(app, locale_selector=_select_locale, default_translation_directories=str(TRANSLATIONS),
          default_locale=settings.i18n.languages[0], default_timezone="Europe/Paris")
    app.jinja_env.globals.update(page_language=page_language, switch_back_default=switch_back, languages=[
        (code, NATIVE_NAMES.get(code, code)) for code in settings.i18n.languages])
    app.register_blueprint(bp)
    app.jinja_env.filters["tr"] = translate

    @app.before_request
    def _core_language() -> None:
        g.core_language = core_i18n.use(PageCatalogue())

    @app.teardown_request
    def _core_language_done(_: BaseException | None) -> None:
        token = g.pop("core_language", None)
        if token is not None:
            core_i18n.reset(token)


class PageCatalogue:
    """The core's view of the page's catalogue (``idp.core.i18n.Translate``), looked up when a text is asked for:
    the language is chosen lazily, and ``force_locale`` (a mail in another language) is followed."""

    def language(self) -> str | None:
        """The page's language when it is a families' page (chosen by the switch, the cookie or the browser);
        None on the staff console, whose pages are French whatever the person reads."""
        return None if request.blueprint in FRENCH_ONLY else str(get_locale())

    def gettext(self, message: str) -> str:
        """``message`` in the page's language."""
        return str(get_translations().gettext(message))

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """The page language's form of ``singular``/``plural`` for ``n``."""
        return str(get_translations().ngettext(singular, plural, n))


def translate(text: str) -> str:
    """``text`` (a French catalogue key) in the page's language, no placeholder filled (the ``tr`` filter)."""
    return get_translations().gettext(text) if text else text
