"""``idp demo --no-serve``: the seeds' schools imported, ready accounts that really log in."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pyotp
from click.testing import CliRunner
from conftest import LoginHelper

from idp import create_app
from idp.cli.main import cli
from idp.demo_register import uai_with_key
from idp.settings import load_settings


def test_demo_prepares_schools_people_and_accounts(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    result = CliRunner().invoke(cli, ["--config", str(config), "demo", "--no-serve"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "établissements   ajoutés       5" in out
    assert "s.dupuis1" in out and "Cartable-Vert-74" in out and "n.moulin1" in out
    assert "Karim Lefort, portable +33" in out
    secret = re.search(r"clé ([A-Z2-7]{32})", out)
    assert "Console établissement (Collège Claude Chappe)" in out and "referent@clg-chappe.example" in out and secret
    again = CliRunner().invoke(cli, ["--config", str(config), "demo", "--no-serve"], catch_exceptions=False)
    assert again.exit_code == 0 and "s.dupuis1" in again.output and "s.dupuis2" not in again.output
    assert f"clé {secret.group(1)}" in again.output
    app = create_app(load_settings(config, environ={}))
    client = app.test_client()
    response = LoginHelper(client)("s.dupuis1", "Cartable-Vert-74")
    assert response.status_code == 303
    services = app.extensions["idp"]
    account = services.accounts.get("s.dupuis1")
    with services.uow() as uow:
        schools = {r["school"] for r in uow.accounts.linked_records(account.id)}
    assert schools == {"Collège Claude Chappe", "Cité scolaire Henri IV"}
    # The demo référent logs in to the console with the printed password and a code of the printed secret (the
    # next time step's: the enrolment used the current one, and a step is accepted once).
    staff = services.extras["staff"]
    cookie = staff.auth.login("referent@clg-chappe.example", "Tableau-Noir-2026!", "127.0.0.1")
    full = staff.factors.totp_login(cookie, pyotp.TOTP(secret.group(1)).at(time.time() + 30), "127.0.0.1")
    assert staff.auth.context(full).member.uais == {uai_with_key("0301442")}
