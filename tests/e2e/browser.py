"""A person at a browser: each navigation or form submission is followed by a screenshot of the page reached
(``<test dir>/<nn>-<slug>.png``) and, on the identity provider's pages, an axe-core check."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Error, Locator, Page

from .accessibility import PageCheck, check_page


def slugify(text: str, limit: int = 60) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:limit] or "page"


#: The identity provider's self-submitting protocol forms (SAML and CAS POST bindings): passed through, as a
#: browser does, rather than recorded (the page is gone before it can be looked at).
AUTO_POST = "form#saml-post, form#cas-post"


class Visit:
    """Wraps one Playwright page for one test."""

    def __init__(self, page: Page, directory: Path, test: str, idp_origin: str) -> None:
        self.page = page
        self.directory = directory
        self.test = test
        self.idp_origin = idp_origin.rstrip("/")
        self.shots: list[Path] = []
        self.checks: list[PageCheck] = []

    # --- navigation -------------------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return path if "://" in path else self.idp_origin + path

    def goto(self, path: str, step: str = "") -> Page:
        self.page.goto(self.url(path))
        return self.record(step)

    def click(self, target: Locator | str, step: str = "") -> Page:
        """Click a link or button that leads to another page (or submits a form), then record that page."""
        locator = self.page.get_by_role("button", name=target).or_(self.page.get_by_role("link", name=target)) \
            if isinstance(target, str) else target
        with self.page.expect_navigation():
            locator.first.click()
        return self.record(step)

    def press(self, key: str, step: str = "") -> Page:
        """Press a key on the focused element, expecting it to lead to another page."""
        with self.page.expect_navigation():
            self.page.keyboard.press(key)
        return self.record(step)

    def fill(self, label: str, value: str) -> None:
        """Type into the field labelled ``label``; a DSFR label also holds its hint, so the label's start counts."""
        field = self.page.get_by_label(label, exact=True)
        if not field.count():
            field = self.page.get_by_label(re.compile("^" + re.escape(label) + r"(\s|$)"))
        field.fill(value)

    # --- what every page gets ---------------------------------------------------------------------------------
    def on_idp(self) -> bool:
        return self.page.url.startswith(self.idp_origin + "/")

    def settle(self) -> None:
        """Wait until the page is loaded and is not a self-submitting protocol form."""
        for _ in range(10):
            self.page.wait_for_load_state("load")
            url = self.page.url
            try:
                if not self.page.locator(AUTO_POST).count():
                    return
            except Error:  # the page navigated away while being looked at
                continue
            self.page.wait_for_url(lambda now, before=url: now != before)  # type: ignore[misc]
        raise AssertionError(f"still passing protocol forms along at {self.page.url}")

    def record(self, step: str = "") -> Page:
        self.settle()
        title = self.page.title()
        label = step or f"{urlsplit(self.page.url).path} {title}"
        number = len(self.shots) + 1
        path = self.directory / f"{number:02d}-{slugify(label)}.png"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        if self.on_idp():
            self.checks.append(check_page(self.page, self.test, f"{number:02d} {label}"))
            self.assert_no_sideways_scroll()
        return self.page

    def phone(self, width: int = 320, height: int = 640) -> None:
        """From now on, a phone's screen (WCAG 1.4.10: 320 CSS pixels wide, no sideways scrolling)."""
        self.page.set_viewport_size({"width": width, "height": height})

    def assert_no_sideways_scroll(self) -> None:
        scroll, body, inner = self.page.evaluate(
            "() => [document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]")
        assert max(scroll, body) <= inner, f"{self.page.url} scrolls sideways at {inner} px: {max(scroll, body)} px wide"

    def text(self) -> str:
        return str(self.page.locator("body").inner_text())

    def evaluate(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)
