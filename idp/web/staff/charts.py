"""The funnel's charts (bars computed here, drawn as SVG by ``templates/staff/funnel.html``: readable without
JavaScript, the figures also in a table) and its CSV export."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from idp.core.staff.model import FunnelRow

STAGES = (("in_register", "Dans le registre"), ("with_account", "Avec un compte"), ("activated", "Activés"),
          ("logged_in_this_month", "Connectés ce mois-ci"))
COLOURS = ("#6a6af4", "#000091", "#18753c", "#b34000")


@dataclass(frozen=True)
class Bar:
    """One bar of a funnel chart (geometry in SVG user units; the template draws it)."""

    label: str
    value: int
    y: int
    length: int
    colour: str


WIDTH, BAR_LEFT, BAR_HEIGHT = 520, 170, 28


def funnel_bars(row: FunnelRow) -> list[Bar]:
    """One horizontal bar per stage, proportional to the pupils (or representatives) in the register."""
    top = max(row.in_register, 1)
    room = WIDTH - BAR_LEFT - 60
    return [Bar(label=label, value=getattr(row, key), y=10 + i * (BAR_HEIGHT + 8),
                length=max(1, int(room * getattr(row, key) / top)), colour=colour)
            for i, ((key, label), colour) in enumerate(zip(STAGES, COLOURS, strict=True))]


@dataclass(frozen=True)
class ClassBars:
    """One class in the per-class chart: the share of pupils and of legal representatives activated."""

    label: str
    y: int
    pupils: int
    pupils_length: int
    parents: int
    parents_length: int


CLASS_LEFT, CLASS_ROW = 70, 34


def class_bars(rows: Sequence[FunnelRow]) -> list[ClassBars]:
    """Per class, two bars: activated pupils and activated representatives, in percent of the register."""
    by_class: dict[str, dict[str, FunnelRow]] = {}
    for r in rows[2:] if len(rows) > 2 else []:  # the first two rows are the school's
        by_class.setdefault(r.label, {})[r.profile] = r
    room = WIDTH - CLASS_LEFT - 60
    out = []
    for i, (label, profiles) in enumerate(by_class.items()):
        shares = [percent(profiles.get(p)) for p in ("student", "parent")]
        out.append(ClassBars(label=label, y=10 + i * CLASS_ROW, pupils=shares[0],
                             pupils_length=max(1, room * shares[0] // 100), parents=shares[1],
                             parents_length=max(1, room * shares[1] // 100)))
    return out


def percent(row: FunnelRow | None) -> int:
    """Activated over in the register, in whole percent (0 for an empty line)."""
    return 0 if row is None or not row.in_register else round(100 * row.activated / row.in_register)


def funnel_csv(rows: Sequence[FunnelRow]) -> str:
    """The funnel as CSV (semicolons, as French spreadsheets expect)."""
    header = ["niveau", "profil", "dans_le_registre", "avec_compte", "actives", "connectes_ce_mois",
              "par_sms", "par_courrier", "par_franceconnect"]
    lines = [";".join(header)]
    for r in rows:
        cells = [r.label, "eleves" if r.profile == "student" else "representants_legaux", r.in_register,
                 r.with_account, r.activated, r.logged_in_this_month, r.by_route.get("sms", 0),
                 r.by_route.get("letter", 0), r.by_route.get("franceconnect", 0)]
        lines.append(";".join(_cell(c) for c in cells))
    return "\r\n".join(lines) + "\r\n"


def _cell(value: object) -> str:
    text = str(value).replace(";", ",").replace("\r", " ").replace("\n", " ")
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text  # no formula injection in spreadsheets
