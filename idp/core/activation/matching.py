"""Matching what a person types against the school register (SECURITY A19), documented here.

Names: NFKC, then case folding, then accents and ligatures removed (``Élodie`` = ``ELODIE``, ``Œ`` = ``oe``),
then everything that is not a letter dropped, so hyphens, apostrophes and spaces do not matter
(``Jean-Pierre`` = ``jean pierre`` = ``JEANPIERRE``, ``N'Diaye`` = ``ndiaye``). The family name must equal
the register's; the given name must equal either all the register's given names or the first one.
Input is capped at 100 characters and control characters are refused.

Phone numbers: parsed with the ``phonenumbers`` library (default region FR, so ``06 12 34 56 78`` and
``+33 6 12 34 56 78`` are the same), compared in E.164. A number valid in no region but one of the allowed
overseas regions when dialled nationally (``0690 12 34 56``, Guadeloupe) is tried there too. An SMS is only
ever sent to the number the register holds, and only when that number is a mobile number of an allowed region
(SECURITY A02).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from idp.core.accounts.identifiers import fold_text
from idp.core.i18n import N_, _

MAX_NAME = 100
MAX_PHONE_INPUT = 40
_NON_LETTERS = re.compile(r"[^a-z]+")
_MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
#: Regions whose numbers French registers write with a national 0 prefix ("0690…", "0692…").
OVERSEAS = ("GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF")


#: Why a typed name cannot be used, per field: empty, too long, control characters, no letter.
_NAME_PROBLEMS = {
    "nom": (N_("Indiquez votre nom, tel que l'établissement le connaît."),
            N_("Le nom ne doit pas dépasser %(max)s caractères."),
            N_("Le nom contient des caractères non autorisés : écrivez-le avec des lettres."),
            N_("Le nom doit contenir au moins une lettre.")),
    "prénom": (N_("Indiquez votre prénom, tel que l'établissement le connaît."),
               N_("Le prénom ne doit pas dépasser %(max)s caractères."),
               N_("Le prénom contient des caractères non autorisés : écrivez-le avec des lettres."),
               N_("Le prénom doit contenir au moins une lettre.")),
}
PHONE_MISSING = N_("Indiquez votre numéro de téléphone portable, celui que l'établissement connaît.")
PHONE_PROBLEM = N_("Numéro de téléphone portable invalide : indiquez par exemple 06 12 34 56 78, "
                   "ou +590 690 12 34 56 hors de France métropolitaine.")
PHONE_LANDLINE = N_("Ce numéro est celui d'un téléphone fixe : le code est envoyé par SMS. Indiquez le numéro "
                    "de votre téléphone portable, celui que l'établissement connaît.")


def name_problem(value: str, label: str) -> str:
    """A reason (in the page's language) why a typed name cannot be used, or ``""``; ``label``: nom | prénom."""
    empty, too_long, control, no_letter = _NAME_PROBLEMS[label]
    stripped = value.strip()
    if not stripped:
        return _(empty)
    if len(stripped) > MAX_NAME:
        return _(too_long, max=MAX_NAME)
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in stripped):
        return _(control)
    if not _NON_LETTERS.sub("", fold_text(unicodedata.normalize("NFKC", stripped))):
        return _(no_letter)
    return ""


def mobile_problem(text: str, default_region: str = "FR") -> str:
    """Why a typed number cannot receive the code by SMS (none, invalid, a landline), or ``""``.

    Only the number's form is judged, never the register: the answer is the same for everybody (no
    enumeration). A landline is refused as such, so nobody waits for an SMS that cannot come."""
    if not text.strip():
        return _(PHONE_MISSING)
    e164 = parse_phone(text, default_region)
    number = _parse(e164, "FR") if e164 else None
    if number is None:
        return _(PHONE_PROBLEM)
    if phonenumbers.is_valid_number(number) and phonenumbers.number_type(number) == PhoneNumberType.FIXED_LINE:
        return _(PHONE_LANDLINE)
    return ""


def name_key(value: str) -> str:
    """The comparison form of a name: letters a-z only."""
    return _NON_LETTERS.sub("", fold_text(unicodedata.normalize("NFKC", value)))


def names_match(typed_family: str, typed_given: str, family: str, given_names: str) -> bool:
    """True when the typed names designate the register's person (rules in the module docstring)."""
    if not name_key(typed_family) or name_key(typed_family) != name_key(family):
        return False
    typed = name_key(typed_given)
    first = given_names.split()[0] if given_names.split() else ""
    return bool(typed) and typed in (name_key(given_names), name_key(first))


def _parse(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException:
        return None


def parse_phone(text: str, default_region: str = "FR", regions: Sequence[str] = OVERSEAS) -> str | None:
    """The E.164 form of a typed or stored number, or None when it is not a phone number."""
    raw = text.strip()[:MAX_PHONE_INPUT]
    if not raw:
        return None
    number = _parse(raw, default_region)
    if number is None or not phonenumbers.is_possible_number(number):
        return None
    if not phonenumbers.is_valid_number(number) and not raw.startswith("+"):
        for region in regions:
            other = _parse(raw, region)
            if other is not None and phonenumbers.is_valid_number(other):
                number = other
                break
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def register_forms(e164: str) -> list[str]:
    """How the register may hold this number: E.164, and ``+33`` + national number for overseas mobiles."""
    forms = [e164]
    number = _parse(e164, "FR")
    if number is not None and phonenumbers.region_code_for_number(number) in OVERSEAS:
        national = phonenumbers.national_significant_number(number)
        forms.append(f"+33{national}")
    return forms


def sms_destination(stored: str, allowed_regions: Sequence[str]) -> str | None:
    """The E.164 number to text, when the register's number is a mobile of an allowed region; else None."""
    e164 = parse_phone(stored)
    if e164 is None:
        return None
    number = _parse(e164, "FR")
    if number is None or not phonenumbers.is_valid_number(number):
        return None
    if phonenumbers.region_code_for_number(number) not in allowed_regions:
        return None
    return e164 if phonenumbers.number_type(number) in _MOBILE_TYPES else None


def mask_e164(e164: str) -> str:
    """A number as the pages show it: ``+33 6 •• •• •• 78``."""
    number = _parse(e164, "FR")
    if number is None:
        return "•••"
    national = phonenumbers.national_significant_number(number)
    return f"+{number.country_code} {national[:1]} •• •• •• {national[-2:]}"
