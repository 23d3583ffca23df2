"""Translating the core's family-facing texts (errors, SMS, mails) without the core knowing about the web.

The core writes French and calls ``_(text, **values)`` (``ngettext(one, many, n, **values)`` for a text with a
count); the web layer sets, for each request, the catalogue of the request's language (``idp.web.i18n``), held in
a context variable so that threads and requests never see each other's language. Outside a request (command line,
workers) the text stays French. ``N_`` only marks a text for extraction (class attributes, module constants),
translated when shown.

A message nobody in the family asked for on the page being served (school staff sending the identifier again, the
lockout notice) is written ``speaking`` the account's stored language instead, from ``Catalogues``;
``current_language`` tells the flows which language the person is reading, to store it on the account.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Protocol


class Translate(Protocol):
    """A language's catalogue: what the core needs of gettext's ``Translations``."""

    def language(self) -> str | None:
        """The code of the language a family is reading (``ar``), or None on a page that is not a family's own
        choice (the staff console, French only)."""

    def gettext(self, message: str) -> str:
        """``message`` in this language."""

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """The form of ``singular``/``plural`` for ``n`` in this language (Arabic has six, Turkish two)."""


_translate: ContextVar[Translate | None] = ContextVar("idp_translate", default=None)


def _(text: str, **values: object) -> str:
    """``text`` in the current language, with ``%(name)s`` placeholders filled from ``values``."""
    translate = _translate.get()
    translated = translate.gettext(text) if translate is not None else text
    return translated % values if values else translated


def ngettext(singular: str, plural: str, n: int, **values: object) -> str:
    """The form for ``n`` in the current language, ``%(n)s`` and ``values`` filled (French: 0 and 1 singular)."""
    translate = _translate.get()
    if translate is not None:
        chosen = translate.ngettext(singular, plural, n)
    else:
        chosen = singular if n < 2 else plural
    return chosen % {"n": n, **values}


def N_(text: str) -> str:  # noqa: N802 - the gettext convention the extractor looks for
    """Mark ``text`` for the catalogues; it is translated where it is shown."""
    return text


def use(translate: Translate | None) -> Token[Translate | None]:
    """Translate with ``translate`` from now on in this context (one request); returns the token to reset."""
    return _translate.set(translate)


def reset(token: Token[Translate | None]) -> None:
    """Back to the language before ``use``."""
    _translate.reset(token)


def current_language() -> str | None:
    """The language the person is reading the current page in; None outside a family's page (command line,
    workers, the staff console)."""
    translate = _translate.get()
    return translate.language() if translate is not None else None


class Catalogues(Protocol):
    """Every language's catalogue, for texts in another language than the page's."""

    def catalogue(self, language: str) -> Translate | None:
        """The catalogue of ``language``; None for French (the source) and for a language without one."""


class SourceOnly:
    """``Catalogues`` with none: every text stays French (the core's default until the wiring gives the real ones)."""

    def catalogue(self, language: str) -> Translate | None:
        """None: French."""
        return None


@contextmanager
def speaking(catalogues: Catalogues, language: str | None) -> Iterator[None]:
    """Texts written inside the block are in ``language`` (French when None or unknown), whatever the page's."""
    token = use(catalogues.catalogue(language) if language else None)
    try:
        yield
    finally:
        reset(token)


#: ``_`` under its long name, for modules where ``_`` is already the throwaway variable.
gettext = _
