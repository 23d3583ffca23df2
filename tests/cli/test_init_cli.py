"""``idp init``: configuration, keys with 0600 permissions, migrations; idempotent; instances side by side."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner

from idp.cli.main import cli
from idp.settings import load_settings
from idp.storage import schema
from idp.storage.db import Database


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_init_creates_config_keys_and_schema(tmp_path: Path) -> None:
    config = tmp_path / "a" / "config.toml"
    first = run("--config", str(config), "init")
    assert first.exit_code == 0, first.output
    assert config.exists()
    keys = tmp_path / "a" / "keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    for name in ("secret.key", "pairwise.key", "signing-rsa.key", "signing-ec.key"):
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600, name
    assert "BEGIN CERTIFICATE" in (keys / "signing-rsa.crt").read_text()
    settings = load_settings(config, environ={})
    assert settings.secret_key and settings.pairwise_salt
    db = Database(settings)
    assert schema.current_revision(db) == schema.head_revision()
    db.dispose()


def test_init_twice_keeps_the_keys(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    run("--config", str(config), "init")
    before = (tmp_path / "keys" / "signing-rsa.key").read_bytes()
    again = run("--config", str(config), "init")
    assert again.exit_code == 0 and "déjà présentes" in again.output
    assert (tmp_path / "keys" / "signing-rsa.key").read_bytes() == before


def test_two_instances_side_by_side(tmp_path: Path) -> None:
    for name in ("one", "two"):
        assert run("--config", str(tmp_path / name / "config.toml"), "init").exit_code == 0
    one = load_settings(tmp_path / "one" / "config.toml", environ={})
    two = load_settings(tmp_path / "two" / "config.toml", environ={})
    assert one.secret_key != two.secret_key
    assert (tmp_path / "one" / "var" / "idp.sqlite3").exists() and (tmp_path / "two" / "var" / "idp.sqlite3").exists()


def test_bad_configuration_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[server]\nbase_url = 5\n")
    result = CliRunner().invoke(cli, ["--config", str(config), "account", "list"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("erreur : ") and "base_url" in lines[0]
