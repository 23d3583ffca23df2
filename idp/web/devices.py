"""How « Mon compte » names a device and a moment: "Chrome sur Android", « 4 déc. 2026, 17:05 » (Europe/Paris).

A User-Agent string is read for its browser and system families only (the first match in order: Edge and
Opera announce Chrome too, Chrome announces Safari); anything unrecognised is « Navigateur inconnu ».
"""

from __future__ import annotations

import datetime as dt
import re

from babel.dates import format_date, format_time
from flask import Flask
from flask_babel import get_locale, get_timezone, gettext

#: (pattern, name) in the order a User-Agent must be tested.
BROWSERS = ((r"Edg(e|A|iOS)?/", "Edge"), (r"OPR/|Opera", "Opera"), (r"SamsungBrowser/", "Samsung Internet"),
            (r"Firefox/|FxiOS/", "Firefox"), (r"Chrome/|CriOS/|Chromium/", "Chrome"), (r"Safari/", "Safari"))
SYSTEMS = ((r"Android", "Android"), (r"iPhone|iPad|iPod", "iOS"), (r"Windows", "Windows"),
           (r"Mac OS X|Macintosh", "macOS"), (r"CrOS", "ChromeOS"), (r"Linux", "Linux"))


def _first(patterns: tuple[tuple[str, str], ...], user_agent: str) -> str:
    return next((name for pattern, name in patterns if re.search(pattern, user_agent)), "")


def device_name(user_agent: str | None) -> str:
    """"Chrome sur Android", "Firefox" or « Navigateur inconnu » for a User-Agent string."""
    ua = user_agent or ""
    browser, system = _first(BROWSERS, ua), _first(SYSTEMS, ua)
    if browser and system:
        return gettext("%(browser)s sur %(system)s", browser=browser, system=system)
    return browser or system or gettext("Navigateur inconnu")


def local_time(moment: dt.datetime | None) -> str:
    """A stored moment (UTC) in the families' time zone (Europe/Paris) and language, e.g. « 4 déc. 2026, 17:05 »."""
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    local = moment.astimezone(get_timezone())
    locale = get_locale() or "fr"
    return f"{format_date(local, 'medium', locale=locale)}, {format_time(local, 'HH:mm', locale=locale)}"


def install_filters(app: Flask) -> None:
    """The two filters, for the account pages."""
    app.jinja_env.filters.update(device_name=device_name, local_time=local_time)
