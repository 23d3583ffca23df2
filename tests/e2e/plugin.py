"""Session-level hooks of the browser tests, loaded by the root conftest (so that pytest-xdist's controller,
which collects nothing, runs them too): the ``e2e`` marker, the pass that runs them, the artifacts directory
cleaned at the start, and the accessibility report written and printed at the end.

``IDP_TEST_E2E=elsewhere`` deselects the browser tests, loudly (``./run test`` sets it on the SQLite pass when a
PostgreSQL pass follows: the browser tests run once, on PostgreSQL). Any other value runs them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

E2E_DIR = Path(__file__).resolve().parent


def artifacts_root(config: pytest.Config) -> Path:
    configured = os.environ.get("IDP_TEST_ARTIFACTS", "")
    base = Path(configured) if configured else Path(config.rootpath) / "test-artifacts"
    return base / "e2e"


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def _deselected_here() -> bool:
    return os.environ.get("IDP_TEST_E2E", "") == "elsewhere"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: browser end-to-end test (Playwright, Debian's Chromium, axe-core)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ours = [item for item in items if E2E_DIR in Path(str(item.path)).resolve().parents]
    for item in ours:
        item.add_marker(pytest.mark.e2e)
        # One worker runs them all (with --dist loadgroup, as ./run does): one demo stack and one browser.
        item.add_marker(pytest.mark.xdist_group("e2e"))
    if ours and _deselected_here():
        config.hook.pytest_deselected(items=ours)
        keep = set(map(id, ours))
        items[:] = [item for item in items if id(item) not in keep]
        config.stash[_DESELECTED] = len(ours)


_DESELECTED = pytest.StashKey[int]()


def pytest_sessionstart(session: pytest.Session) -> None:
    if _is_controller(session.config) and not _deselected_here():
        root = artifacts_root(session.config)
        if root.exists():
            shutil.rmtree(root)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _is_controller(session.config):
        return
    root = artifacts_root(session.config)
    if root.is_dir():
        from .accessibility import write_report

        write_report(root)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    deselected = config.stash.get(_DESELECTED, 0)
    if deselected:
        terminalreporter.write_line(f"e2e: {deselected} browser test(s) deselected in this pass "
                                    "(IDP_TEST_E2E=elsewhere: they run in the PostgreSQL pass)", yellow=True)
        return
    root = artifacts_root(config)
    report = root / "accessibility.md"
    if root.is_dir():
        terminalreporter.write_line(f"e2e: screenshots in {root}/<test>/")
    if report.exists():
        first = report.read_text(encoding="utf-8").split("| impact | violations |")[1].split("\n\n")[0]
        counts = ", ".join(line.strip("| ").replace(" | ", " ") for line in first.strip().splitlines()[1:])
        terminalreporter.write_line(f"e2e: accessibility report {report} ({counts})")
