"""Password policy: the seeds' composition rule plus blocklist and context words (SECURITY A11).

Every broken rule is reported, each with its French reason, so the screen can tick them off one
by one. Passwords are NFKC-normalised, measured in characters and never truncated: spaces, accents
and any Unicode symbol are allowed; only control characters are refused.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from idp.core.accounts.identifiers import fold_text
from idp.core.passwords.blocklist import deleet, is_common

# NIST 800-63B-4 asks verifiers to accept at least 64 characters.
MIN_MAX_LENGTH = 64
MIN_CONTEXT_WORD = 3
SERVICE_WORDS = ("educonnect",)
# Particles are names' parts but also ordinary syllables ("desert", "vandale"): matching them
# would reject innocent passwords without protecting anything.
_PARTICLES = frozenset({"des", "les", "van", "von", "der", "den", "dem", "del", "das", "dos"})
# Cs (lone surrogates) cannot be encoded for hashing; Cc are tabs, newlines and the like, which
# users cannot see and cannot type the same way twice on another device.
_CONTROL_CATEGORIES = frozenset({"Cc", "Cs"})
_NON_LETTERS = re.compile(r"[^a-z]+")

MSG_COMMON = "Ce mot de passe est trop courant : choisissez-en un autre, plus personnel."
MSG_CONTEXT = "Le mot de passe ne doit pas contenir votre identifiant, votre nom ou celui de vos enfants."
MSG_CONTROL = (
    "Le mot de passe ne doit pas contenir de caractères de contrôle (tabulation, retour à la ligne…)."
)
SPECIAL_EXAMPLES = "! ? @ # $ …"
# The seeds list "µ" as a special character, but Unicode calls it a letter (and NFKC turns the
# micro sign into the Greek mu), so the seeds' list is honoured explicitly.
SEED_SPECIALS = frozenset("!?@#$(){}[]_&=+-%*<>£/;:,.µ" + unicodedata.normalize("NFKC", "µ"))


@dataclass(frozen=True)
class PasswordPolicy:
    """Composition rule; the defaults are the seeds' (CNIL 2022-100 case 2)."""

    min_length: int = 8
    max_length: int = 256
    require_upper: bool = True
    require_lower: bool = True
    require_digit: bool = True
    require_special: bool = True

    def __post_init__(self) -> None:
        if self.min_length < 1:
            raise ValueError("min_length must be at least 1")
        if self.max_length < max(self.min_length, MIN_MAX_LENGTH):
            raise ValueError(f"max_length must be at least {MIN_MAX_LENGTH} and min_length")


@dataclass(frozen=True)
class PasswordContext:
    """What a password must not contain: the account's identifier, names, school, birth years."""

    identifier: str = ""
    names: tuple[str, ...] = ()
    extra_words: tuple[str, ...] = ()
    birth_years: tuple[int, ...] = ()


NO_CONTEXT = PasswordContext()


@dataclass(frozen=True)
class Violation:
    """One broken rule: a stable code for programs and a French message for people."""

    code: str
    message: str


def _is_special(ch: str) -> bool:
    if ch in SEED_SPECIALS:
        return True
    return not (ch.isalpha() or ch.isdigit() or ch.isspace() or _is_control(ch))


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in _CONTROL_CATEGORIES


def _composition_violations(password: str, policy: PasswordPolicy) -> list[Violation]:
    must = "Le mot de passe doit contenir au moins"
    checks = [
        ("too_short", len(password) < policy.min_length, f"{must} {policy.min_length} caractères."),
        (
            "too_long",
            len(password) > policy.max_length,
            f"Le mot de passe ne doit pas dépasser {policy.max_length} caractères.",
        ),
        (
            "no_upper",
            policy.require_upper and not any(ch.isupper() for ch in password),
            f"{must} une lettre majuscule.",
        ),
        (
            "no_lower",
            policy.require_lower and not any(ch.islower() for ch in password),
            f"{must} une lettre minuscule.",
        ),
        (
            "no_digit",
            policy.require_digit and not any(ch.isdigit() for ch in password),
            f"{must} un chiffre.",
        ),
        (
            "no_special",
            policy.require_special and not any(_is_special(ch) for ch in password),
            f"{must} un caractère spécial ({SPECIAL_EXAMPLES}).",
        ),
        ("control_chars", any(_is_control(ch) for ch in password), MSG_CONTROL),
    ]
    return [Violation(code, message) for code, broken, message in checks if broken]


def _context_words(context: PasswordContext) -> set[str]:
    """Folded words of 3+ letters taken from the identifier, the names and the extra words."""
    words = set(SERVICE_WORDS)
    for text in (context.identifier, *context.names, *context.extra_words):
        for word in _NON_LETTERS.split(fold_text(text)):
            if len(word) >= MIN_CONTEXT_WORD and word not in _PARTICLES:
                words.add(word)
    return words


def contains_context(password: str, context: PasswordContext) -> bool:
    """True when password contains the identifier, a name, a context word or a birth year."""
    folded = fold_text(password)
    identifier = context.identifier.strip().lower()
    if identifier and identifier in folded:
        return True
    if any(str(year) in folded for year in context.birth_years):
        return True
    # Letters only, so "Du-pont" and "D.U.P.O.N.T" still read "dupont"; leet readings too.
    readings = {_NON_LETTERS.sub("", form) for form in (folded, *deleet(folded))}
    return any(word in reading for word in _context_words(context) for reading in readings)


def check_password(
    password: str, policy: PasswordPolicy, context: PasswordContext = NO_CONTEXT
) -> list[Violation]:
    """Every rule password breaks, in a stable order; an empty list means it is accepted."""
    normalised = unicodedata.normalize("NFKC", password)
    violations = _composition_violations(normalised, policy)
    if is_common(normalised):
        violations.append(Violation("common", MSG_COMMON))
    if contains_context(normalised, context):
        violations.append(Violation("context", MSG_CONTEXT))
    return violations


def describe_rules(policy: PasswordPolicy) -> list[tuple[str, str]]:
    """The rules a password screen shows and ticks live, as (code, French text)."""
    rules = [("too_short", f"Au moins {policy.min_length} caractères")]
    if policy.require_upper:
        rules.append(("no_upper", "Une lettre majuscule"))
    if policy.require_lower:
        rules.append(("no_lower", "Une lettre minuscule"))
    if policy.require_digit:
        rules.append(("no_digit", "Un chiffre"))
    if policy.require_special:
        rules.append(("no_special", f"Un caractère spécial ({SPECIAL_EXAMPLES})"))
    return rules
