"""The language stored on an account: the one place that decides when to remember it, and the one that writes
a message in it.

The families' screens follow the page's language (switch, cookie, browser); a message staff send (the console's
identifier sent again) or one nobody in the family asked for (the lockout notice) has no page to follow, so the
account keeps the language its holder last read the screens in. It is recorded where the person shows it: every
successful login (password, FranceConnect), activation (SMS, letter, FranceConnect), the end of a password reset,
and the language switch of a logged-in person. Login paths fold it into the last-login UPDATE they already send;
an unchanged language writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from idp.core.accounts.model import Account
from idp.core.i18n import Catalogues, current_language, speaking
from idp.core.ports import UnitOfWork


def language_to_record(account: Account | None, language: str | None = None) -> str | None:
    """The language to store on ``account`` now: ``language`` (default: the page's), when there is one and it
    differs from the stored one; None when there is nothing to write (unchanged, or not a family's page)."""
    chosen = language or current_language()
    stored = account.language if account is not None else None
    return chosen if chosen and chosen != stored else None


def remember_language(uow: UnitOfWork, account: Account, language: str | None = None) -> bool:
    """Store the language on its own statement, for flows with no login write to fold it into (the end of a
    password reset, the language switch); returns whether it was written."""
    changed = language_to_record(account, language)
    if changed is not None:
        uow.accounts.set_language(account.id, changed)
    return changed is not None


@contextmanager
def in_account_language(catalogues: Catalogues, account: Account) -> Iterator[None]:
    """Texts written inside the block are in the account's stored language (French when none or unknown)."""
    with speaking(catalogues, account.language):
        yield
