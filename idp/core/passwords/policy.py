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
from idp.core.i18n import N_, _, ngettext
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

MSG_COMMON = N_("Ce mot de passe est trop courant : choisissez-en un autre, plus personnel.")
MSG_CONTEXT = N_("Le mot de passe ne doit pas contenir votre identifiant, votre nom ou celui de vos enfants.")
MSG_MISMATCH = N_("Les deux mots de passe saisis ne sont pas identiques.")
MSG_CONTROL = N_("Le mot de passe ne doit pas contenir de caractères de contrôle (tabulation, retour à la ligne…).")
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
    checks = [
        ("too_short", len(password) < policy.min_length,
         ngettext("Le mot de passe doit contenir au moins %(n)s caractère.",
                  "Le mot de passe doit contenir au moins %(n)s caractères.", policy.min_length)),
        ("too_long", len(password) > policy.max_length,
         ngettext("Le mot de passe ne doit pas dépasser %(n)s caractère.",
                  "Le mot de passe ne doit pas dépasser %(n)s caractères.", policy.max_length)),
        ("no_upper", policy.require_upper and not any(ch.isupper() for ch in password),
         _("Le mot de passe doit contenir au moins une lettre majuscule.")),
        ("no_lower", policy.require_lower and not any(ch.islower() for ch in password),
         _("Le mot de passe doit contenir au moins une lettre minuscule.")),
        ("no_digit", policy.require_digit and not any(ch.isdigit() for ch in password),
         _("Le mot de passe doit contenir au moins un chiffre.")),
        ("no_special", policy.require_special and not any(_is_special(ch) for ch in password),
         _("Le mot de passe doit contenir au moins un caractère spécial (%(examples)s).", examples=SPECIAL_EXAMPLES)),
        ("control_chars", any(_is_control(ch) for ch in password), _(MSG_CONTROL)),
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
        violations.append(Violation("common", _(MSG_COMMON)))
    if contains_context(normalised, context):
        violations.append(Violation("context", _(MSG_CONTEXT)))
    return violations


def checklist_data(policy: PasswordPolicy, context: PasswordContext = NO_CONTEXT) -> dict[str, object]:
    """What the checklist script needs to tick the rules live for this person: the minimum length and, only for
    the page of the person in the flow, the folded words and years ``contains_context`` looks for."""
    return {"min": policy.min_length, "identifier": context.identifier.strip().lower(),
            "words": sorted(_context_words(context)), "years": sorted({str(y) for y in context.birth_years})}


def describe_rules(policy: PasswordPolicy) -> list[tuple[str, str]]:
    """Every rule the server applies, as (code, text) for the password screens' checklist; the script ticks them
    live (with ``checklist_data`` and ``blocklist.script_data``), the server's check on sending is what counts."""
    rules = [("too_short", ngettext("Au moins %(n)s caractère", "Au moins %(n)s caractères", policy.min_length))]
    if policy.require_upper:
        rules.append(("no_upper", _("Une lettre majuscule")))
    if policy.require_lower:
        rules.append(("no_lower", _("Une lettre minuscule")))
    if policy.require_digit:
        rules.append(("no_digit", _("Un chiffre")))
    if policy.require_special:
        rules.append(("no_special", _("Un caractère spécial (%(examples)s)", examples=SPECIAL_EXAMPLES)))
    rules.append(("common", _("Pas un mot de passe courant (comme « Azerty123! »)")))
    rules.append(("context", _("Ni votre identifiant, ni votre nom, ni le prénom de vos enfants")))
    return rules
