"""Faults: a database that does not answer gives a 503 in the page's language with Retry-After, never a stack trace."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from conftest import page_in
from flask import Flask

from idp import create_app
from idp.settings import ProtocolSettings, Settings
from idp.wiring import build_services

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def down_app(settings: Settings) -> Flask:
    url = "postgresql://idp@127.0.0.1:1/nowhere"  # nothing listens on port 1
    broken = dataclasses.replace(settings, database=dataclasses.replace(settings.database, url=url,
                                                                        pool_timeout_seconds=1))
    app = create_app(broken, build_services(broken))
    app.config["TESTING"] = True
    return app


def test_login_page_when_the_database_is_down(settings: Settings) -> None:
    client = down_app(settings).test_client()
    form = client.get("/login?profil=parent")  # the portal's screen needs no database (nothing stored)
    assert form.status_code == 200
    token = CSRF.search(form.get_data(as_text=True)).group(1)
    response = client.post("/login?profil=parent", data={"identifiant": "m.dupont1", "mot_de_passe": "x",
                                                          "csrf_token": token})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    body = response.get_data(as_text=True)
    assert "Service momentanément indisponible" in body
    assert "Traceback" not in body and "psycopg" not in body and "OperationalError" not in body


def test_healthz_reports_the_database(settings: Settings) -> None:
    client = down_app(settings).test_client()
    response = client.get("/healthz")
    assert response.status_code == 503 and response.get_json()["database"] == "down"


def test_unexpected_error_shows_a_correlation_id(app: Flask) -> None:
    @app.get("/boom-test")
    def boom() -> str:
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom-test")
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "secret internals" not in body and "Traceback" not in body
    assert response.headers["X-Correlation-Id"] in body


@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_an_outage_behind_a_protocol_says_so_in_the_page_language(settings: Settings, oidc_keys_dir: Path,
                                                                  lang: str) -> None:
    client = down_app(dataclasses.replace(settings, protocols=ProtocolSettings(enabled=("oidc",)))).test_client()
    client.set_cookie("idp_lang", lang)
    response = client.get("/oidc/authorize", query_string={"client_id": "ent", "response_type": "code",
                                                           "redirect_uri": "https://ent.example/cb"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
    page_in(response, lang, "Service momentanément indisponible", "Revenir à la page de connexion",
            "Service momentanément indisponible. Merci de réessayer dans quelques minutes.")
