"""The translation catalogues: extract the French strings, merge them into each language, compile, check.

French is the source language: the templates and code are written in French and ``idp/translations/messages.pot``
is extracted from them (Jinja ``_()``/``{% trans %}`` and Python ``_``/``gettext``/``N_``). Each other language has
``idp/translations/<lang>/LC_MESSAGES/messages.po`` (kept in git, its header saying who drafted it) and the
compiled ``messages.mo`` next to it (kept in git too, so a checkout runs without a build step; ``check`` fails
when a ``.mo`` is older than its ``.po``). Used by ``idp i18n`` and by the test that fails on a missing string.
``CompiledCatalogues`` reads the compiled files for texts written in a language other than the page's.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from babel.support import NullTranslations, Translations

PROJECT = Path(__file__).resolve().parent.parent.parent
TRANSLATIONS = PROJECT / "idp" / "translations"
#: Where strings come from: the templates (Jinja) and the code that writes mails, SMS and page texts.
SOURCES = ((PROJECT / "templates", [("**.html", "jinja2.ext:babel_extract")], {"**.html": {"trimmed": "true"}}),
           (PROJECT / "idp", [("**.py", "python")], {}))
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "N_": None}
DRAFT_NOTE = ("Traduction rédigée par l'équipe du projet (brouillon, non relu par un traducteur professionnel).\n"
              "Drafted by the project team; not yet reviewed by a professional translator.")


class _Catalogue:
    """One language's compiled catalogue as the core's ``Translate``."""

    def __init__(self, code: str, translations: NullTranslations) -> None:
        self._code, self._translations = code, translations

    def language(self) -> str:
        """This catalogue's language."""
        return self._code

    def gettext(self, message: str) -> str:
        """``message`` in this language."""
        return self._translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """This language's form for ``n``."""
        return self._translations.ngettext(singular, plural, n)


class CompiledCatalogues:
    """The core's ``Catalogues``: each offered language's ``messages.mo``, read once (the process keeps them)."""

    def __init__(self, languages: Iterable[str], source: str = "fr") -> None:
        self._offered = frozenset(languages) - {source}
        self._loaded: dict[str, _Catalogue] = {}

    def catalogue(self, language: str) -> _Catalogue | None:
        """The catalogue of an offered language; None for French (the source) and any other code."""
        if language not in self._offered:
            return None
        if language not in self._loaded:  # a race loads it twice, harmlessly
            self._loaded[language] = _Catalogue(language, Translations.load(str(TRANSLATIONS), [language]))
        return self._loaded[language]


@dataclass
class Report:
    """What ``check`` found, per language: strings absent or empty, and a stale compiled file."""

    missing: dict[str, list[str]] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every language has every string and its compiled file is current."""
        return not any(self.missing.values()) and not self.stale


def extract() -> Catalog:
    """The French strings of the templates and code, as a catalogue template."""
    template = Catalog(project="compte-scolaire", msgid_bugs_address="", fuzzy=False)
    for root, method_map, options in SOURCES:
        for filename, lineno, message, comments, context in extract_from_dir(
                root, method_map, options, keywords=KEYWORDS, comment_tags=("TRANSLATORS:",)):
            where = str((root / filename).relative_to(PROJECT))
            template.add(message, None, [(where, lineno)], auto_comments=comments, context=context,
                         flags=("python-format",) if isinstance(message, str) and "%(" in message else ())
    return template


def languages() -> list[str]:
    """The languages that have a catalogue (``idp/translations/<lang>/LC_MESSAGES/messages.po``)."""
    return sorted(p.parent.parent.name for p in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"))


def _po_path(lang: str) -> Path:
    return TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po"


def read(lang: str) -> Catalog:
    """A language's catalogue."""
    with _po_path(lang).open("rb") as handle:
        return read_po(handle, locale=lang)


def write(lang: str, catalog: Catalog) -> None:
    """Write a language's catalogue, the draft note in its header."""
    catalog.header_comment = f"# {catalog.locale} – compte-scolaire\n# " + DRAFT_NOTE.replace("\n", "\n# ")
    catalog.fuzzy = False
    catalog.project, catalog.version = "compte-scolaire", "1"
    catalog.last_translator = "Équipe compte-scolaire (brouillon / draft)"
    catalog.language_team = "Équipe compte-scolaire"
    path = _po_path(lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        write_po(handle, catalog, width=120, sort_by_file=False, omit_header=False, include_previous=False)


def update(template: Catalog, langs: Iterable[str]) -> None:
    """Merge the extracted strings into each language (new ones empty, vanished ones dropped)."""
    TRANSLATIONS.mkdir(parents=True, exist_ok=True)
    with (TRANSLATIONS / "messages.pot").open("wb") as handle:
        write_po(handle, template, width=120, omit_header=False)
    for lang in langs:
        catalog = read(lang) if _po_path(lang).exists() else Catalog(locale=lang)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        write(lang, catalog)


def compiled(lang: str) -> bytes:
    """A language's catalogue compiled (``.mo`` bytes)."""
    buffer = io.BytesIO()
    write_mo(buffer, read(lang))
    return buffer.getvalue()


def compile_all() -> list[str]:
    """Write each language's ``messages.mo``; returns the languages compiled."""
    done = []
    for lang in languages():
        (_po_path(lang).with_suffix(".mo")).write_bytes(compiled(lang))
        done.append(lang)
    return done


def check(template: Catalog | None = None) -> Report:
    """Every extracted string translated in every language, and every ``.mo`` what its ``.po`` compiles to."""
    template = template or extract()
    report = Report()
    wanted = [m.id for m in template if m.id]
    for lang in languages():
        catalog = read(lang)
        report.missing[lang] = [_key(mid) for mid in wanted if not _translated(catalog, mid)]
        mo = _po_path(lang).with_suffix(".mo")
        if not mo.exists() or mo.read_bytes() != compiled(lang):
            report.stale.append(lang)
    return report


def _translated(catalog: Catalog, msgid: str | tuple[str, ...]) -> bool:
    """Present, not fuzzy, and every form filled: a text with a count needs all the language's plural forms
    (six in Arabic, two in Turkish: ``Plural-Forms`` in the header), else a form falls back to French."""
    message = catalog.get(msgid)
    if message is None or message.fuzzy:
        return False
    if not message.pluralizable:
        return bool(message.string)
    strings = message.string if isinstance(message.string, (tuple, list)) else (message.string,)
    return len(strings) == catalog.num_plurals and all(strings)


def _key(msgid: str | tuple[str, ...]) -> str:
    return msgid if isinstance(msgid, str) else msgid[0]
