"""Parent self-enrolment by SMS driven over HTTP against the topology (each step may go to another instance)."""

from __future__ import annotations

import datetime as dt
import re

from tests.adapters.browser import Page
from tests.cluster.conftest import ClusterBrowser, Topology

GOOD_PASSWORD = "Rentree-Septembre-2026!"


def start(browser: ClusterBrowser, topology: Topology, family: str, given: str, phone: str) -> Page:
    """« Je n'ai pas de compte »: name, given name and mobile → the code page."""
    page = browser.get(f"{topology.idp}/creer-mon-compte")
    page = browser.submit(page, "telephone", {"nom": family, "prenom": given, "telephone": phone})
    assert page.status == 200 and page.url.endswith("/creer-mon-compte/code"), (page.url, page.text[:1500])
    return page


def children_answers(page: Page, born: dict[str, dt.date]) -> dict[str, str]:
    """« Je suis le représentant légal » and the birth date of each child, in the page's order."""
    names = re.findall(r'id="lien_[0-9]+-legende">Mon lien avec ([^<]+)</legend>', page.text)
    data: dict[str, str] = {}
    for index, name in enumerate(names):
        date = next(d for given, d in born.items() if given.split()[0] in name)
        data |= {f"lien_{index}": "oui", f"naissance_{index}_jour": f"{date.day:02d}",
                 f"naissance_{index}_mois": f"{date.month:02d}", f"naissance_{index}_annee": str(date.year)}
    return data


def identifier_of(page: Page) -> str:
    """The new identifier shown on the success page."""
    found = re.search(r"<strong>([a-z]\.[a-z-]+[0-9]+)</strong>", page.text)
    assert found, page.text[:2000]
    return found.group(1)
