"""A tiny browser for the adapters' tests: a ``requests`` session that follows redirects, reads forms with
lxml, submits them (hidden fields, checked boxes, the first radio of each group unless told otherwise),
and auto-submits the protocol POST forms (SAMLResponse / SAMLRequest) as a browser's script would."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html
import requests

AUTOPOST_FIELDS = {"SAMLResponse", "SAMLRequest"}


@dataclass
class Page:
    url: str
    status: int
    text: str
    response: requests.Response

    @property
    def doc(self) -> Any:
        return lxml.html.fromstring(self.text)

    def forms(self) -> list[Any]:
        return list(self.doc.forms) if self.text.strip() else []

    def link(self, contains: str) -> str:
        for element in self.doc.iter("a"):
            if contains in (element.text_content() or "") or contains in (element.get("href") or ""):
                return urljoin(self.url, element.get("href"))
        raise AssertionError(f"no link {contains!r} on {self.url}:\n{self.text[:3000]}")

    def __contains__(self, text: str) -> bool:
        return text in self.text


class Browser:
    def __init__(self) -> None:
        self.http = requests.Session()

    def _page(self, response: requests.Response) -> Page:
        page = Page(response.url, response.status_code, response.text, response)
        return self._autopost(page)

    def _autopost(self, page: Page) -> Page:
        for _ in range(5):
            forms = page.forms() if "<form" in page.text else []
            auto = next((f for f in forms if AUTOPOST_FIELDS & set(f.fields.keys())), None)
            if auto is None:
                return page
            page = self.submit(page, auto, autopost=False)
        return page

    def get(self, url: str) -> Page:
        return self._page(self.http.get(url, timeout=30))

    def form(self, page: Page, contains: str = "") -> Any:
        for form in page.forms():
            if not contains or contains in form.fields.keys() or urlsplit(form.action or "").path == contains:
                return form
        raise AssertionError(f"no form {contains!r} on {page.url}:\n{page.text[:3000]}")

    def submit(self, page: Page, form: Any = None, data: dict[str, str] | None = None, *, autopost: bool = True) -> Page:
        if form is None or isinstance(form, str):
            form = self.form(page, form or "")
        values: dict[str, str] = {}
        for element in form.inputs:
            name, kind = element.get("name"), (element.get("type") or "text").lower()
            if not name or kind in {"submit", "button", "image"}:
                continue
            if kind in {"checkbox", "radio"}:
                if element.checked and name not in values:
                    values[name] = element.get("value", "on")
                continue
            if element.tag == "select":
                values[name] = element.value or ""
                continue
            values[name] = element.value or ""
        values.update(data or {})
        action = urljoin(page.url, form.action or page.url)
        if (form.method or "GET").upper() == "POST":
            response = self.http.post(action, data=values, timeout=30)
        else:
            response = self.http.get(action, params=values, timeout=30)
        result = Page(response.url, response.status_code, response.text, response)
        return self._autopost(result) if autopost else result

    def idp_login(self, page: Page, identifier: str, password: str, profile: str = "parent") -> Page:
        """On the identity provider's pages: pick the profile, type the identifier and password."""
        if 'name="mot_de_passe"' not in page.text:
            page = self.get(page.link(f"profil={profile}"))
        assert 'name="mot_de_passe"' in page.text, page.text[:3000]
        return self.submit(page, "mot_de_passe", {"identifiant": identifier, "mot_de_passe": password})
