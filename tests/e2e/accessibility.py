"""axe-core on the pages of the identity provider, and the accessibility report.

axe.min.js comes from the ``axe-playwright-python`` package (a test dependency that bundles it), so nothing is
fetched at test time. It is evaluated through the DevTools protocol, which the page's Content-Security-Policy
does not govern: the pages are checked exactly as they are served.

Every page checked is written to ``<test dir>/accessibility.json``; at the end of the session the controller
gathers them into ``test-artifacts/e2e/accessibility.json`` and ``accessibility.md``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

BLOCKING = ("critical", "serious")  # a test fails on these; minor and moderate are reported
IMPACT_ORDER = {"critical": 0, "serious": 1, "moderate": 2, "minor": 3}
RUN_OPTIONS = {"resultTypes": ["violations", "incomplete"],
               "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa",
                                                     "best-practice"]}}


@cache
def axe_source() -> str:
    return (resources.files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")


@dataclass
class PageCheck:
    test: str
    step: str
    url: str
    title: str
    axe_version: str
    violations: list[dict[str, Any]] = field(default_factory=list)
    incomplete: int = 0

    def blocking(self) -> list[dict[str, Any]]:
        return [v for v in self.violations if v["impact"] in BLOCKING]


def _violation(raw: dict[str, Any]) -> dict[str, Any]:
    return {"id": raw["id"], "impact": raw.get("impact") or "minor", "help": raw["help"],
            "help_url": raw.get("helpUrl", ""),
            "nodes": [{"target": n.get("target"), "html": n.get("html", "")[:300],
                       "summary": (n.get("failureSummary") or "")[:500]} for n in raw.get("nodes", [])]}


def check_page(page: Any, test: str, step: str) -> PageCheck:
    """Run axe-core on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source() + "\n;void 0")
    result = page.evaluate("options => axe.run(document, options)", RUN_OPTIONS)
    violations = sorted((_violation(v) for v in result["violations"]), key=lambda v: IMPACT_ORDER.get(v["impact"], 9))
    return PageCheck(test=test, step=step, url=page.url, title=page.title(),
                     axe_version=result.get("testEngine", {}).get("version", ""), violations=violations,
                     incomplete=len(result.get("incomplete", [])))


def write_test_checks(directory: Path, checks: list[PageCheck]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "accessibility.json").write_text(
        json.dumps([asdict(c) for c in checks], ensure_ascii=False, indent=1), encoding="utf-8")


def describe(checks: list[PageCheck]) -> str:
    """The blocking violations, for a test failure message."""
    lines = []
    for check in checks:
        for v in check.blocking():
            targets = ", ".join(str(n["target"]) for n in v["nodes"][:3])
            lines.append(f"  {check.step} ({check.url}): [{v['impact']}] {v['id']} – {v['help']} – {targets}")
    return "\n".join(lines)


def write_report(root: Path) -> tuple[Path, Path] | None:
    """Gather every test's checks into accessibility.json and accessibility.md under ``root``."""
    pages: list[dict[str, Any]] = []
    for path in sorted(root.glob("*/accessibility.json")):
        pages.extend(json.loads(path.read_text(encoding="utf-8")))
    if not pages:
        return None
    counts: dict[str, int] = {}
    by_rule: dict[tuple[str, str], dict[str, Any]] = {}
    for page in pages:
        for v in page["violations"]:
            counts[v["impact"]] = counts.get(v["impact"], 0) + 1
            entry = by_rule.setdefault((v["impact"], v["id"]), {"help": v["help"], "url": v["help_url"], "pages": []})
            entry["pages"].append(f"{page['test']} › {page['step']}")
    summary = {"pages_checked": len(pages), "axe_version": pages[0]["axe_version"], "violations_by_impact": counts,
               "blocking_impacts": list(BLOCKING)}
    json_path = root / "accessibility.json"
    json_path.write_text(json.dumps({"summary": summary, "pages": pages}, ensure_ascii=False, indent=1),
                         encoding="utf-8")
    md = ["# Accessibilité : rapport axe-core des tests de bout en bout", "",
          f"axe-core {summary['axe_version']}, règles WCAG 2.0/2.1/2.2 A et AA et bonnes pratiques ; "
          f"{len(pages)} page(s) du fournisseur d'identité contrôlée(s).", "",
          "| impact | violations |", "|---|---|"]
    md += [f"| {impact} | {counts.get(impact, 0)} |" for impact in IMPACT_ORDER]
    md.append("")
    if by_rule:
        md.append("## Violations par règle")
        for (impact, rule), entry in sorted(by_rule.items(), key=lambda kv: (IMPACT_ORDER.get(kv[0][0], 9), kv[0][1])):
            md += ["", f"### [{impact}] {rule} – {entry['help']}", "", entry["url"], ""]
            md += [f"- {where}" for where in sorted(set(entry["pages"]))]
    else:
        md.append("Aucune violation.")
    md += ["", "## Pages contrôlées", "", "| test | étape | titre | violations |", "|---|---|---|---|"]
    md += [f"| {p['test']} | {p['step']} | {p['title']} | {len(p['violations'])} |" for p in pages]
    md_path = root / "accessibility.md"
    md_path.write_text("\n".join(md) + "\n", encoding="utf-8")
    return json_path, md_path
