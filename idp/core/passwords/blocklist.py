"""Local list of common passwords and the base words people decorate with digits and symbols.

A password is "common" when, once lower-cased, accent-stripped and de-leeted, it is a listed word
on its own or with only digits and symbols around it ("Azerty123!", "P@ssw0rd2024"), or when it
is a trivial run ("Abcdefg1!", "Aaaaaaa1!"). The list ships with the package (common_passwords.txt),
so the check works offline and is the fallback when a remote breach check is down (SECURITY A12).
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from itertools import pairwise

from idp.core.accounts.identifiers import SPECIAL_LETTERS, fold_text

_PACKAGE = "idp.core.passwords"
LIST_FILE = "common_passwords.txt"
# Shorter list entries would reject too many decorated passwords ("Léa!7392#84").
MIN_ENTRY_LENGTH = 4
MIN_RUN_LENGTH = 4

# Separators people put inside a base word ("mot-de-passe", "Mot de passe"); removing them
# makes those spellings match the listed "motdepasse".
_INNER_SEPARATORS = re.compile(r"[\s\-_.]+")
_LEADING_NON_LETTERS = re.compile(r"^[^a-z]+")
_TRAILING_NON_LETTERS = re.compile(r"[^a-z]+$")
_LEET = {"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
# "1" stands for both "i" (p1ngou1n) and "l" (so1ei1), so both readings are tried.
_LEET_ONE = ("i", "l")


def _compact(text: str) -> str:
    return _INNER_SEPARATORS.sub("", fold_text(text))


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The packaged list, folded like the passwords it is compared with (loaded once)."""
    text = resources.files(_PACKAGE).joinpath(LIST_FILE).read_text(encoding="utf-8")
    entries = (_compact(line) for line in text.splitlines() if not line.startswith("#"))
    return frozenset(entry for entry in entries if len(entry) >= MIN_ENTRY_LENGTH)


def script_data() -> dict[str, object]:
    """The list and the tables ``is_common`` uses, for the checklist script to apply the same test in the browser
    (about 10 kB: one cached file rather than a request per keystroke that would send the password)."""
    return {"letters": {chr(k): v for k, v in SPECIAL_LETTERS.items()}, "leet": _LEET, "leet_one": list(_LEET_ONE),
            "min_run": MIN_RUN_LENGTH, "list": sorted(common_passwords())}


def deleet(text: str) -> tuple[str, ...]:
    """Readings of text with leetspeak digits and symbols turned back into letters."""
    mapped = "".join(_LEET.get(ch, ch) for ch in text)
    if "1" not in mapped:
        return (mapped,)
    return tuple(mapped.replace("1", letter) for letter in _LEET_ONE)


def _cores(compact: str) -> set[str]:
    """The whole string and the string stripped of leading and/or trailing non-letters."""
    trailing = _TRAILING_NON_LETTERS.sub("", compact)
    leading = _LEADING_NON_LETTERS.sub("", compact)
    both = _LEADING_NON_LETTERS.sub("", trailing)
    return {compact, trailing, leading, both}


def _forms(compact: str) -> set[str]:
    """Every form of a compacted password that is compared with the list, raw and de-leeted."""
    forms: set[str] = set()
    for core in _cores(compact):
        forms.add(core)
        forms.update(deleet(core))
    forms.discard("")
    return forms


def _is_run(text: str) -> bool:
    """True for "aaaa", "abcd", "dcba", "1234" and the like."""
    if len(text) < MIN_RUN_LENGTH:
        return False
    steps = {ord(b) - ord(a) for a, b in pairwise(text)}
    return len(steps) == 1 and steps <= {-1, 0, 1}


def _is_repeated_unit(text: str, listed: frozenset[str]) -> bool:
    """True for "azertyazerty" or "abab": a listed word or a tiny unit said again and again."""
    if len(text) < MIN_RUN_LENGTH:
        return False
    for size in range(1, len(text) // 2 + 1):
        unit, times = text[:size], len(text) // size
        if len(text) % size == 0 and unit * times == text and (size <= 2 or unit in listed):
            return True
    return False


def _is_trivial(part: str, listed: frozenset[str]) -> bool:
    return len(part) <= 2 or part in listed or _is_run(part) or _is_repeated_unit(part, listed)


def _only_trivial_parts(compact: str, listed: frozenset[str]) -> bool:
    """True for "123456Aa!": its letters and its digits, each read apart, are both trivial."""
    letters = "".join(ch for ch in compact if ch.isalpha())
    digits = "".join(ch for ch in compact if ch.isdigit())
    return _is_trivial(letters, listed) and _is_trivial(digits, listed)


def is_common(password: str) -> bool:
    """True when password is a listed common password, a decorated base word or a trivial run."""
    compact = _compact(password)
    if not compact:
        # Nothing to compare: the composition rules already say what is missing.
        return False
    listed = common_passwords()
    if _only_trivial_parts(compact, listed):
        return True
    return any(form in listed or _is_run(form) or _is_repeated_unit(form, listed) for form in _forms(compact))
