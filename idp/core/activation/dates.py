"""Birth dates typed in three fields (day, month, year), read forgivingly and refused with a helpful reason.

Day and month accept one or two digits (« 7 » « 3 » « 2015 »); a two-digit year is refused with the reason
(« 15 » could be 1915 or 2015); a day and month that only make sense swapped are pointed out. Every reason
names the child it is about, with the French elision (« de Léa », « d'Inès »).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from idp.core.i18n import _

_ELIDED = frozenset("AEIOUYHÀÂÄÉÈÊËÎÏÔÖÙÛÜŸÆŒ")


@dataclass(frozen=True)
class TypedDate:
    """A date as read from the three fields: the date, or why it cannot be used ("" when it can)."""

    value: dt.date | None
    problem: str = ""


def date_of(name: str) -> str:
    """« la date de naissance de Léa » / « … d'Inès »: the subject of every reason below."""
    if name[:1].upper() in _ELIDED:
        return _("la date de naissance d'%(name)s", name=name)
    return _("la date de naissance de %(name)s", name=name)


def read_date(day: str, month: str, year: str, *, name: str, today: dt.date) -> TypedDate:
    """Read the three fields typed for ``name``'s birth date (a past date after 1900)."""
    d, m, y = day.strip(), month.strip(), year.strip()
    subject = date_of(name)
    if not (d or m or y):
        return TypedDate(None, _("Indiquez %(subject)s : jour, mois et année.", subject=subject))
    if not (d.isdigit() and m.isdigit() and y.isdigit()) or not (d and m and y):
        return TypedDate(None, _("Indiquez %(subject)s en chiffres, dans les trois cases : jour, mois et année "
                                 "(par exemple 7, 3 et 2015).", subject=subject))
    if len(y) != 4:
        return TypedDate(None, _("Pour %(subject)s, écrivez l'année avec 4 chiffres (par exemple 2015, et non "
                                 "15).", subject=subject))
    day_n, month_n, year_n = int(d), int(m), int(y)
    if month_n > 12 and 1 <= day_n <= 12:
        return TypedDate(None, _("Pour %(subject)s, le mois est un nombre de 1 à 12 : le jour et le mois "
                                 "sont peut-être inversés.", subject=subject))
    try:
        value = dt.date(year_n, month_n, day_n)
    except ValueError:
        return TypedDate(None, _("Cette date n'existe pas : vérifiez le jour et le mois de %(subject)s.",
                                 subject=subject))
    if not (dt.date(1900, 1, 1) <= value <= today):
        return TypedDate(None, _("Vérifiez l'année de %(subject)s.", subject=subject))
    return TypedDate(value)
