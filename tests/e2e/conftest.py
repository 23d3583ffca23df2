"""Fixtures of the browser tests: ``idp demo`` as real servers (one stack per pytest worker), Debian's
Chromium driven by Playwright for Python (one browser per worker, a fresh context per test), and a ``visit``
that screenshots and checks every page.

Chromium is the Debian package (``./run test`` installs it with apt, as it does xmlsec1); Playwright's own
browser download is never used. A missing Chromium FAILS these tests with the way to install it: a browser
suite that skips itself in CI would hide that it never ran.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .accessibility import describe, write_test_checks
from .browser import Visit
from .plugin import artifacts_root
from .servers import DemoStack

CHROMIUM = os.environ.get("IDP_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--no-default-browser-check", "--disable-extensions", "--mute-audio"]


@pytest.fixture(scope="session")
def e2e_root(pytestconfig: pytest.Config) -> Path:
    root = artifacts_root(pytestconfig)
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture(scope="session")
def demo(e2e_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    """``idp demo``: the identity provider and the demo services, one stack per pytest worker."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    stack = DemoStack(instance=tmp_path_factory.mktemp("e2e-demo"), log_path=e2e_root / f"demo-{worker}.log")
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[object]:
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"Chromium not found at {CHROMIUM}: the browser tests need Debian's chromium package "
                    "(`apt-get install chromium`, which `./run test` does as root). They do not skip.", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright for Python is missing: `pip install -e '.[test]'` (never `playwright install`)",
                    pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _test_dir_name(item: pytest.Item) -> str:
    module = Path(str(item.path)).stem.removeprefix("test_e2e_")
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{module}-{item.name}")


@pytest.fixture
def visit(request: pytest.FixtureRequest, chromium_browser: object, demo: DemoStack,
          e2e_root: Path) -> Iterator[Visit]:
    """A fresh browser context (no cookies) at 1280×900, French, for one test."""
    directory = e2e_root / _test_dir_name(request.node)
    if directory.exists():
        shutil.rmtree(directory)
    context = chromium_browser.new_context(  # type: ignore[attr-defined]
        locale="fr-FR", viewport={"width": 1280, "height": 900}, base_url=demo.base_url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    session = Visit(page, directory, request.node.name, demo.base_url)
    yield session
    report = getattr(request.node, "e2e_call_report", None)
    if report is not None and report.failed and not page.is_closed():
        with contextlib.suppress(Exception):  # the failure itself is what matters
            session.record("echec")
    write_test_checks(directory, session.checks)
    context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After the test body: fail it on any serious or critical axe-core violation on a page it visited."""
    result = yield
    session = item.funcargs.get("visit") if hasattr(item, "funcargs") else None
    if isinstance(session, Visit):
        blocking = [c for c in session.checks if c.blocking()]
        if blocking:
            raise AssertionError("serious or critical accessibility violations (axe-core):\n" + describe(blocking))
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.e2e_call_report = report  # type: ignore[attr-defined]
    return report
