"""Login identifiers of the form ``p.nomNN`` (initial, dot, normalised family name, number).

The identifier is built from register names, so it must be stable and readable on a printed
letter: only ASCII a-z, no accents, no particles, short enough to type on a phone.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

MAX_NAME_PART = 20
MAX_NUMBER = 999_999
MAX_LOGIN_INPUT = 64
EMPTY_NAME = "x"

IDENTIFIER_RE = re.compile(r"^[a-z]\.[a-z]{1,20}[0-9]{1,6}$")

# Letters that NFKD does not decompose into a base letter plus accents; without this table
# "Œuvrard" would lose its first letter and "Strauß" would lose the "ss".
SPECIAL_LETTERS = str.maketrans(
    {"œ": "oe", "æ": "ae", "ß": "ss", "ø": "o", "đ": "d", "ð": "d", "ł": "l", "þ": "th", "ı": "i"}
)
# Typographic apostrophes are what word processors (and therefore register exports) produce.
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "´": "'", "`": "'", "′": "'"})
_NON_LETTERS = re.compile(r"[^a-z]+")
# A token is a run of anything but spaces, cut after an apostrophe so "d'artagnan" gives "d'".
_TOKEN = re.compile(r"[^\s']+'?|'")

_AFTER_DE = frozenset({"la", "le", "les"})
_AFTER_VAN = frozenset({"de", "der", "den", "dem"})


@dataclass(frozen=True)
class _Token:
    letters: str
    elided: bool  # ended with an apostrophe, as in "d'"


def fold_text(text: str) -> str:
    """Lower-case text with accents and ligatures reduced to ASCII letters; other characters kept."""
    lowered = text.casefold().translate(SPECIAL_LETTERS)
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _tokens(family_name: str) -> list[_Token]:
    folded = fold_text(family_name).translate(_APOSTROPHES)
    tokens = []
    for raw in _TOKEN.findall(folded):
        letters = _NON_LETTERS.sub("", raw)
        if letters:
            tokens.append(_Token(letters, raw.endswith("'")))
    return tokens


def _particle_length(tokens: list[_Token]) -> int:
    """Number of leading tokens that form a nobiliary or Dutch/German particle."""
    if not tokens:
        return 0
    first = tokens[0]
    second = tokens[1] if len(tokens) > 1 else None
    if first.elided:
        # Only "d'" is a particle: "N'Diaye" or "L'Hôpital" are names in their own right.
        return 1 if first.letters == "d" else 0
    if first.letters == "de":
        if second is not None and (
            (second.letters in _AFTER_DE and not second.elided) or second == _Token("l", True)
        ):
            return 2
        return 1
    if first.letters in ("du", "des"):
        return 1
    if first.letters in ("van", "von"):
        if second is not None and second.letters in _AFTER_VAN and not second.elided:
            return 2
        return 1
    return 0


def normalise_name_for_identifier(family_name: str) -> str:
    """Family name as lower-case a-z without particles, at most 20 letters ("x" if none)."""
    tokens = _tokens(family_name)
    rest = tokens[_particle_length(tokens) :]
    # A name that is only a particle ("Du", "De La") keeps it rather than vanishing.
    kept = rest if rest else tokens
    name = "".join(token.letters for token in kept)[:MAX_NAME_PART]
    return name or EMPTY_NAME


def initial_for_identifier(given_names: str) -> str:
    """First letter of the first given name, as lower-case a-z ("x" if none)."""
    letters = _NON_LETTERS.sub("", fold_text(given_names))
    return letters[0] if letters else EMPTY_NAME


def identifier_base(given_names: str, family_name: str) -> str:
    """Identifier without its number, e.g. ("Marie", "Dupont") -> "m.dupont"."""
    initial = initial_for_identifier(given_names)
    return f"{initial}.{normalise_name_for_identifier(family_name)}"


def format_identifier(base: str, number: int) -> str:
    """Identifier made unique by its number (from 1), e.g. ("m.dupont", 7) -> "m.dupont7"."""
    if not 1 <= number <= MAX_NUMBER:
        raise ValueError(f"identifier number must be between 1 and {MAX_NUMBER}, got {number}")
    return f"{base}{number}"


def next_free_number(base: str, taken: Iterable[str]) -> int:
    """One more than the highest number of the ``taken`` identifiers of this base, 1 when there is none.

    "m.dupont" does not count "m.dupontel3": the rest after the base must be the number alone."""
    pattern = re.compile(re.escape(base) + "([0-9]{1,6})")
    return max((int(m.group(1)) for ident in taken if (m := pattern.fullmatch(ident))), default=0) + 1


def normalise_login_input(text: str) -> str:
    """What a user typed as identifier: NFKC, trimmed, lower-case, at most 64 characters."""
    return unicodedata.normalize("NFKC", text).strip().lower()[:MAX_LOGIN_INPUT]
