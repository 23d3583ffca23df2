"""``idp oidc add|list|show|remove|rotate-secret`` (secrets shown once, stored hashed; "Mes services")."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from idp.storage.models import ServiceProviderRow
from idp.storage.oidc_store import OidcClientRow, digest


def _secret(output: str) -> str:
    match = re.search(r"client_secret : (\S+)", output)
    assert match, output
    return match.group(1)


def test_add_shows_the_secret_once_and_stores_a_hash(runner: Any, services: Any) -> None:
    result = runner("oidc", "add", "--name", "Pronote", "--client-id", "pronote",
                    "--redirect-uri", "https://pronote.test/cb", "--scope", "openid profile fr_edu",
                    "--refresh", "--home-url", "https://pronote.test/", "--post-logout-redirect-uri",
                    "https://pronote.test/bye")
    assert result.exit_code == 0, result.output
    secret = _secret(result.output)
    assert len(secret) >= 43
    with services.uow() as uow:
        row = uow.session.get(OidcClientRow, "pronote")
        assert row.secret_hash == digest(secret) and secret not in row.secret_hash
        assert row.refresh_tokens and row.scopes == "openid profile fr_edu"
        listed = uow.session.scalars(select(ServiceProviderRow).where(ServiceProviderRow.protocol == "oidc")).one()
        assert listed.client_id == "pronote" and listed.home_url == "https://pronote.test/" and listed.enabled
    shown = runner("oidc", "show", "pronote")
    assert shown.exit_code == 0 and secret not in shown.output and "https://pronote.test/cb" in shown.output
    assert "pronote" in runner("oidc", "list").output


def test_rotate_secret_replaces_it(runner: Any, services: Any) -> None:
    first = _secret(runner("oidc", "add", "--name", "ENT", "--client-id", "ent",
                           "--redirect-uri", "https://ent.test/cb").output)
    result = runner("oidc", "rotate-secret", "ent")
    assert result.exit_code == 0
    second = re.search(r"nouveau client_secret : (\S+)", result.output).group(1)
    with services.uow() as uow:
        stored = uow.session.get(OidcClientRow, "ent").secret_hash
    assert stored == digest(second) != digest(first)


def test_public_and_private_key_jwt_clients(runner: Any, tmp_path: Path) -> None:
    public = runner("oidc", "add", "--name", "Appli", "--public", "--redirect-uri", "http://127.0.0.1:8765/cb")
    assert public.exit_code == 0 and "client_secret" not in public.output
    missing = runner("oidc", "add", "--name", "JWT", "--auth-method", "private_key_jwt",
                     "--redirect-uri", "https://jwt.test/cb")
    assert missing.exit_code == 1 and "JWKS" in missing.output
    from joserfc.jwk import ECKey

    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [ECKey.generate_key("P-256").as_dict(private=False)]}))
    ok = runner("oidc", "add", "--name", "JWT", "--auth-method", "private_key_jwt", "--jwks", str(jwks),
                "--redirect-uri", "https://jwt.test/cb")
    assert ok.exit_code == 0 and "client_secret" not in ok.output
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [ECKey.generate_key("P-256").as_dict(private=True)]}))
    refused = runner("oidc", "add", "--name", "JWT2", "--auth-method", "private_key_jwt", "--jwks", str(private),
                     "--redirect-uri", "https://jwt.test/cb")
    assert refused.exit_code == 1


def test_bad_registrations_are_refused_in_french(runner: Any) -> None:
    for args in (["--redirect-uri", "https://rp.test/app/../cb"], ["--redirect-uri", "https://rp.test/cb#f"],
                 ["--redirect-uri", "https://rp.test/a/%2e%2e/cb"], ["--redirect-uri", "https://rp.test/a..%2Fcb"],
                 ["--redirect-uri", "https://rp.test/cb", "--post-logout-redirect-uri", "https://rp.test/x/../bye"],
                 ["--redirect-uri", "https://rp.test/*"], ["--redirect-uri", "https://rp.test/cb", "--scope", "admin"],
                 ["--redirect-uri", "https://a.test/cb", "--redirect-uri", "https://b.test/cb"]):
        result = runner("oidc", "add", "--name", "X", *args)
        assert result.exit_code == 1 and result.output.startswith("erreur :"), (args, result.output)
    runner("oidc", "add", "--name", "X", "--client-id", "x", "--redirect-uri", "https://x.test/cb")
    duplicate = runner("oidc", "add", "--name", "X", "--client-id", "x", "--redirect-uri", "https://x.test/cb")
    assert duplicate.exit_code == 1 and "existe déjà" in duplicate.output


def test_production_refuses_http_outside_loopback(runner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """S29's one transport rule (idp.core.urls), as for CAS services and SAML endpoints: in development http is
    accepted on any host; with ``development = false`` only on a loopback host."""
    assert runner("oidc", "add", "--name", "Dev", "--redirect-uri", "http://rp.test/cb").exit_code == 0
    monkeypatch.setenv("IDP_SERVER__DEVELOPMENT", "false")
    for option in ("--redirect-uri", "--post-logout-redirect-uri", "--backchannel-logout-uri"):
        args = ["--redirect-uri", "https://rp.test/cb"] if option != "--redirect-uri" else []
        refused = runner("oidc", "add", "--name", "X", *args, option, "http://rp.test/cb")
        assert refused.exit_code == 1 and "http://rp.test/cb" in refused.output, (option, refused.output)
    loopback = runner("oidc", "add", "--name", "Native", "--redirect-uri", "http://127.0.0.1:8080/cb")
    assert loopback.exit_code == 0, loopback.output


def test_remove(runner: Any, services: Any) -> None:
    runner("oidc", "add", "--name", "X", "--client-id", "x", "--redirect-uri", "https://x.test/cb")
    assert runner("oidc", "remove", "x").exit_code == 0
    assert runner("oidc", "remove", "x").exit_code == 1
    assert runner("oidc", "show", "x").exit_code == 1
    with services.uow() as uow:
        assert uow.session.scalars(select(ServiceProviderRow)).all() == []
