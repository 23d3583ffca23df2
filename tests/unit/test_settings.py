"""Typed settings: file, environment overrides, and start-up errors that name the culprit."""

from __future__ import annotations

from pathlib import Path

import pytest

from idp.errors import ConfigurationError
from idp.settings import load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.passwords.argon2_memory_kib == 19456 and settings.passwords.argon2_time_cost == 2
    assert settings.session.idle_minutes == 30 and settings.session.absolute_hours == 10
    assert settings.protocols.enabled == ()


def test_file_values_and_relative_paths(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nbase_url = "https://idp.example"\n[database]\nurl = "sqlite:///var/x.db"\n')
    settings = load_settings(path, environ={})
    assert settings.server.base_url == "https://idp.example" and settings.https
    assert settings.root == str(tmp_path.resolve())
    assert settings.path("keys") == tmp_path.resolve() / "keys"


def test_environment_overrides_with_type_conversion(tmp_path: Path) -> None:
    path = write(tmp_path, "[session]\nidle_minutes = 30\n")
    settings = load_settings(path, environ={"IDP_SESSION__IDLE_MINUTES": "15", "IDP_SERVER__DEVELOPMENT": "true",
                                            "IDP_PROTOCOLS__ENABLED": "cas,saml"})
    assert settings.session.idle_minutes == 15
    assert settings.server.development is True
    assert settings.protocols.enabled == ("cas", "saml")


@pytest.mark.parametrize(("text", "env", "named"), [
    ("[server]\nbase_urll = \"x\"\n", {}, "base_urll"),
    ("[serveur]\n", {}, "serveur"),
    ("[session]\nidle_minutes = \"trente\"\n", {}, "idle_minutes"),
    ("[session]\nidle_minutes = true\n", {}, "idle_minutes"),
    ("", {"IDP_SESSION__IDLE_MINUTES": "beaucoup"}, "idle_minutes"),
    ("", {"IDP_SERVER__DEVELOPMENT": "peut-être"}, "development"),
    ("", {"IDP_NOPE__X": "1"}, "IDP_NOPE"),
    ("", {"IDP_DATABASEURL": "x"}, "IDP_DATABASEURL"),
    ("[protocols]\nenabled = [\"ldap\"]\n", {}, "ldap"),
    ("[server\n", {}, "TOML"),
])
def test_bad_configuration_names_the_problem(tmp_path: Path, text: str, env: dict[str, str], named: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigurationError) as info:
        load_settings(path, environ=env)
    assert named in str(info.value)


def test_tooling_variables_are_not_settings(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    settings = load_settings(path, environ={"IDP_TEST_REQUIRE_POSTGRESQL": "1", "IDP_BENCH_DATABASE_URL": "x",
                                            "IDP_DEV_VENV": ".venv", "IDP_SMTP_PASSWORD": "s"})
    assert settings.server.base_url


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="introuvable"):
        load_settings(tmp_path / "absent.toml", environ={})


def test_secrets_come_from_the_environment_or_the_keys_directory(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    assert load_settings(path, environ={}).secret_key == ""
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "secret.key").write_text("from-file\n")
    assert load_settings(path, environ={}).secret_key == "from-file"
    assert load_settings(path, environ={"IDP_SECRET_KEY": "from-env"}).secret_key == "from-env"
    assert "from-file" not in repr(load_settings(path, environ={}))


def test_config_toml_of_the_repository_loads() -> None:
    root = Path(__file__).resolve().parents[2]
    settings = load_settings(root / "config.toml", environ={})
    assert settings.server.development is True
