"""The rule deciding when an account's language is written, and texts written in a stored language."""

from __future__ import annotations

import dataclasses

from idp.core import i18n
from idp.core.accounts.language import in_account_language, language_to_record
from idp.core.accounts.model import Account, AccountState, Profile
from idp.core.activation import messages

ACCOUNT = Account(id=1, public_id="p", identifier="s.martin1", profile=Profile.PARENT, state=AccountState.ACTIVE,
                  family_name="Martin", given_names="Sophie", password_hash=None)


class Page:
    """A page read in ``code`` (texts left French: only the language matters here)."""

    def __init__(self, code: str | None) -> None:
        self.code = code

    def language(self) -> str | None:
        return self.code

    def gettext(self, message: str) -> str:
        return message

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return singular if n < 2 else plural


class Marked(Page):
    """A catalogue for ``xx`` that marks every text it translates."""

    def gettext(self, message: str) -> str:
        return "[xx] " + message


class Catalogues:
    def catalogue(self, language: str) -> i18n.Translate | None:
        return Marked(language) if language == "xx" else None


def _on_page(code: str | None, account: Account, language: str | None = None) -> str | None:
    token = i18n.use(Page(code))
    try:
        return language_to_record(account, language)
    finally:
        i18n.reset(token)


def test_the_page_language_is_recorded_only_when_it_changed() -> None:
    assert _on_page("ar", ACCOUNT) == "ar"
    assert _on_page("ar", dataclasses.replace(ACCOUNT, language="ar")) is None
    assert _on_page("tr", dataclasses.replace(ACCOUNT, language="ar")) == "tr"
    assert _on_page("fr", dataclasses.replace(ACCOUNT, language="ar")) == "fr"  # French is a choice too


def test_no_family_page_no_language() -> None:
    assert _on_page(None, ACCOUNT) is None  # the staff console's pages say none
    assert language_to_record(ACCOUNT) is None  # outside a request (command line, workers)


def test_an_explicit_choice_wins_over_the_page() -> None:
    assert _on_page("fr", ACCOUNT, "es") == "es"  # the switch: the page is still in the old language


def test_texts_follow_the_account_language_then_the_page_again() -> None:
    token = i18n.use(Page("en"))
    try:
        with in_account_language(Catalogues(), dataclasses.replace(ACCOUNT, language="xx")):
            subject = messages.identifiers_subject("Compte")
            assert i18n.current_language() == "xx"
        assert subject == "[xx] Compte : votre identifiant"
        with in_account_language(Catalogues(), ACCOUNT):  # none stored: French, not the page's language
            assert messages.identifiers_subject("Compte") == "Compte : votre identifiant"
        assert i18n.current_language() == "en"
    finally:
        i18n.reset(token)
