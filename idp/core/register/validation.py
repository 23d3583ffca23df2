"""Field checks shared by every register format: each returns the normalised value or raises ``Invalid``.

Readers first ``clean`` each field (no control characters, trimmed, single spaces, NFC); the checks below
then expect clean values. Reasons are French sentences meant for the school staff who produced the file;
they quote the bad value so the line can be found and fixed. Checks of values that repeat a lot (school
codes, dates, postal codes) are memoised with a bounded cache: one million rows cost the same per row.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata

from idp.core.register.records import RELATIONSHIPS, SCHOOL_KINDS

NAME_MAX = 100
CODE_MAX = 40

_INE = re.compile(r"[0-9]{9}[0-9A-Z][A-Z]")
_UAI = re.compile(r"[0-9]{7}[A-Z]")
# C0 and C1 controls, zero-width and bidirectional overrides, the BOM: nothing a name ever needs.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
#: The separator of composite attributes (``FrEduVecteur`` is ``type|NOM|PRENOM|id|UAI``): never inside a name
#: or a pupil id, or a register row could forge another field or another entry (SECURITY C16).
SEPARATOR = "|"
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
_POSTAL = re.compile(r"[0-9A-Z][0-9A-Z \-]{0,9}")
_PHONE_NOISE = re.compile(r"[\s.\-/()]")
_DATE_FR = re.compile(r"(?P<d>[0-9]{1,2})/(?P<m>[0-9]{1,2})/(?P<y>[0-9]{4})")
_DATE_ISO = re.compile(r"(?P<y>[0-9]{4})-(?P<m>[0-9]{2})-(?P<d>[0-9]{2})")
_FR_NATIONAL = re.compile(r"0[1-79][0-9]{8}")
_FR_E164 = re.compile(r"\+33[1-79][0-9]{8}")
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")
_YES_NO = {"1": True, "oui": True, "o": True, "true": True, "vrai": True, "yes": True, "y": True,
           "0": False, "non": False, "n": False, "false": False, "faux": False, "no": False}
_KIND_ALIASES = {"lycee_professionnel": "lp", "lyc_pro": "lp", "cite": "cite_scolaire", "ecole_primaire": "ecole"}
_RELATIONSHIP_ALIASES = {"mere": "mere", "pere": "pere", "tuteur": "tuteur", "tutrice": "tuteur",
                         "aide_sociale_a_l_enfance": "ase", "ase": "ase", "famille": "famille", "autre": "autre"}
_memo = functools.lru_cache(maxsize=65536)


class Invalid(ValueError):
    """A field value that cannot be imported; ``str(exc)`` is the French reason."""


def shown(value: str, limit: int = 40) -> str:
    """Quote a bad value for an error message, control characters made visible, long values cut."""
    visible = "".join(f"\\x{ord(c):02x}" if CONTROL.match(c) else c for c in value[:limit])
    return f"« {visible}{'…' if len(value) > limit else ''} »"


def clean(value: str, label: str) -> str:
    """Trimmed, NFC-normalised text with single spaces; control characters refused."""
    if CONTROL.search(value):
        raise Invalid(f"{label} contient un caractère de contrôle {shown(value)}")
    cleaned = " ".join(value.split())
    return cleaned if cleaned.isascii() else unicodedata.normalize("NFC", cleaned)


def text(value: str, label: str, *, required: bool = False, limit: int = NAME_MAX) -> str:
    """A clean text of at most ``limit`` characters (and not empty when ``required``)."""
    if not value and required:
        raise Invalid(f"{label} manquant")
    if len(value) > limit:
        raise Invalid(f"{label} trop long ({len(value)} caractères, {limit} au plus)")
    return value


def code(value: str, label: str, *, required: bool = False) -> str:
    """A short code: class, level, an external identifier (at most 40 characters)."""
    return text(value, label, required=required, limit=CODE_MAX)


def composite_safe(value: str, label: str) -> str:
    """A value that may end up in a composite attribute: no control character (a line break splits a value)
    and no separator."""
    if CONTROL.search(value):
        raise Invalid(f"{label} contient un caractère de contrôle {shown(value)}")
    if SEPARATOR in value:
        raise Invalid(f"{label} contient le caractère « {SEPARATOR} », interdit : il sépare les champs des "
                      f"attributs transmis aux ENT {shown(value)}")
    return value


def name(value: str, label: str) -> str:
    """A family name or given names: required, at most 100 characters, at least one letter, nothing that could
    break a composite attribute."""
    text(value, label, required=True)
    composite_safe(value, label)
    if not value[0].isalpha() and not any(c.isalpha() for c in value):
        raise Invalid(f"{label} invalide {shown(value)} (aucune lettre)")
    return value


def pupil_id(value: str, label: str, *, required: bool = False) -> str:
    """The register's own pupil id (SIECLE ``ELEVE_ID``, CSV ``id_siecle``): a code that ``FrEduVecteur`` carries."""
    return composite_safe(code(value, label, required=required), label)


def ine(value: str) -> str:
    """A national pupil number: 10 digits and a letter (or 9 digits and 2 letters), upper-cased."""
    upper = value.upper()
    if _INE.fullmatch(upper):
        return upper
    if not value:
        raise Invalid("INE manquant")
    raise Invalid(f"INE invalide {shown(value)} (attendu 10 chiffres et une lettre)")


@_memo
def uai(value: str) -> str:
    """A school code: 7 digits and a letter, upper-cased."""
    upper = value.strip().upper()
    if _UAI.fullmatch(upper):
        return upper
    if not upper:
        raise Invalid("UAI manquant")
    raise Invalid(f"UAI invalide {shown(value.strip())} (attendu 7 chiffres et une lettre, ex. 0690026D)")


@_memo
def date(value: str, label: str) -> dt.date:
    """A date written JJ/MM/AAAA or AAAA-MM-JJ."""
    raw = value.strip()
    if not raw:
        raise Invalid(f"{label} manquante")
    match = _DATE_FR.fullmatch(raw) or _DATE_ISO.fullmatch(raw)
    try:
        if match is None:
            raise ValueError(raw)
        return dt.date(int(match["y"]), int(match["m"]), int(match["d"]))
    except ValueError:
        raise Invalid(f"{label} invalide {shown(raw)} (attendu JJ/MM/AAAA ou AAAA-MM-JJ)") from None


def birth_date(value: str, today: dt.date) -> dt.date:
    """A birth date, not in the future and not before 1900."""
    born = date(value, "date de naissance")
    if born > today or born.year < 1900:
        raise Invalid(f"date de naissance invraisemblable {shown(value)}")
    return born


def phone(value: str) -> str:
    """A mobile number in E.164: French 01-07 and 09 numbers become +33…, other +XX numbers are kept."""
    if not value:
        return ""
    compact = value.replace(" ", "")
    if len(compact) == 10 and compact[0] == "0" and compact[1] in "12345679" and compact.isdigit() \
            and compact.isascii():
        return "+33" + compact[1:]  # the usual "06 12 34 56 78"
    compact = _PHONE_NOISE.sub("", value)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if _FR_NATIONAL.fullmatch(compact):
        return "+33" + compact[1:]
    if compact.startswith("+330") and len(compact) == 13:
        compact = "+33" + compact[4:]  # "+33 (0)6 …"
    if _FR_E164.fullmatch(compact) or (not compact.startswith("+33") and _E164.fullmatch(compact)):
        return compact
    raise Invalid(f"numéro de téléphone invalide {shown(value)} (attendu 06 12 34 56 78 ou +33 6 12 34 56 78)")


def email(value: str) -> str:
    """An e-mail address (basic shape check), or empty."""
    if value and (len(value) > 254 or not _EMAIL.fullmatch(value)):
        raise Invalid(f"adresse électronique invalide {shown(value)}")
    return value


@_memo
def postal_code(value: str) -> str:
    """A postal code (French or foreign, at most 10 characters), or empty."""
    upper = value.strip().upper()
    if upper and not _POSTAL.fullmatch(upper):
        raise Invalid(f"code postal invalide {shown(value.strip())}")
    return upper


def _slug(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value.strip().lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "_", plain).strip("_")


@_memo
def school_kind(value: str) -> str:
    """One of ecole, college, lycee, lp, cite_scolaire (accents and case ignored)."""
    slug = _slug(value)
    slug = _KIND_ALIASES.get(slug, slug)
    if slug not in SCHOOL_KINDS:
        raise Invalid(f"type d'établissement inconnu {shown(value.strip())} (attendu : {', '.join(SCHOOL_KINDS)})")
    return slug


@_memo
def relationship(value: str) -> str:
    """One of mere, pere, tuteur, ase, famille, autre (accents and case ignored)."""
    slug = _slug(value)
    if slug not in _RELATIONSHIP_ALIASES:
        raise Invalid(f"lien inconnu {shown(value.strip())} (attendu : {', '.join(RELATIONSHIPS)})")
    return _RELATIONSHIP_ALIASES[slug]


def yes_no(value: str, label: str) -> bool:
    """1/0, oui/non, true/false (and vrai/faux, o/n)."""
    answer = _YES_NO.get(value) if value in _YES_NO else _YES_NO.get(value.strip().lower())
    if answer is None:
        raise Invalid(f"{label} invalide {shown(value.strip())} (attendu 1 ou 0, oui ou non)")
    return answer
