"""Pronote-like school-life service: CAS 3.0 login against the identity provider (python-cas, Pronote
attribute preset), join with its own pupils and parents, a parent's children's timetable and marks, the
one-time notice, the "lien Pronote inactif" page, and the CAS back-channel logoutRequest."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from cas import CASClient, CASError
from flask import Flask, abort, redirect, render_template, request, url_for
from lxml import etree

from sp_adapters.common.app import (
    AdapterConfig,
    check_csrf,
    create_shell,
    current_session,
    sign_in,
    sign_out,
    store,
)
from sp_adapters.common.directory import demo_directory
from sp_adapters.pronote import data

log = logging.getLogger("sp_adapters.pronote")
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAFE_XML = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _attributes(raw: dict[str, Any] | None) -> dict[str, list[str]]:
    """python-cas gives one value as a string and several as a list: always a list here."""
    out: dict[str, list[str]] = {}
    for name, value in (raw or {}).items():
        values = value if isinstance(value, list) else [value]
        out[name] = [str(v) for v in values if v is not None]
    return out


def _session_index(logout_request: str) -> str:
    """The ticket named by a CAS back-channel ``logoutRequest`` (CAS 3.0 Appendix C)."""
    try:
        root = etree.fromstring(logout_request.encode("utf-8"), SAFE_XML)
    except etree.XMLSyntaxError:
        return ""
    if etree.QName(root).localname != "LogoutRequest":
        return ""
    found = root.find(f"{{{SAMLP}}}SessionIndex")
    return (found.text or "").strip() if found is not None else ""


def create_app(config: AdapterConfig) -> Flask:
    app = create_shell("pronote", "Pronote (démonstration)", Path(__file__).parent / "templates", config, data.DDL)
    data.load(app.extensions["adapter"]["store"], demo_directory())
    service_url = f"{config.public_url}/cas/retour"
    cas = CASClient(version=3, service_url=service_url, server_url=f"{config.idp_url}/cas/")

    @app.get("/")
    def home() -> Any:
        local = current_session()
        if local is None:
            return render_template("landing.html")
        if store().one("SELECT 1 FROM notice_read WHERE cas_id = ?", local["user_key"]) is None:
            return render_template("notice.html", error="")
        return render_template("home.html", person=local, pupils=local["pupils"])

    @app.get("/cas/login")
    def login() -> Any:
        return redirect(cas.get_login_url(), 303)

    @app.get("/cas/retour")
    def cas_return() -> Any:
        ticket = request.args.get("ticket", "")
        if not ticket:
            return redirect(url_for("home"))
        try:
            user, raw, _ = cas.verify_ticket(ticket)
        except (CASError, OSError, etree.XMLSyntaxError) as exc:
            log.warning("ticket validation failed: %s", type(exc).__name__)
            user, raw = None, None
        if not user:
            abort(403, "Votre connexion n'a pas pu être vérifiée. Reconnectez-vous depuis l'ENT.")
        attributes = _attributes(raw)
        person = data.join(store(), str(user), attributes)
        if person is None:
            log.info("cas identity not joined (categories %s)", attributes.get("categories"))
            return render_template("inactive.html", attributes=attributes), 403
        sign_in(str(user), ticket, {"display_name": f"{person.given_names} {person.family_name}", "kind": person.kind,
                                    "pupils": list(person.pupils)})
        return redirect(url_for("home"), 303)

    @app.post("/cas/retour")
    def cas_logout_request() -> Any:
        """Back-channel single logout: the identity provider names the ticket of the session to end."""
        ticket = _session_index(request.form.get("logoutRequest", ""))
        if not ticket:
            abort(400, "logoutRequest invalide")
        ended = store().end_by_ref(ticket)
        log.info("cas single logout: %s local session(s) ended", ended)
        return "", 200

    @app.post("/avis")
    def notice() -> Any:
        check_csrf()
        local = current_session()
        if local is None:
            return redirect(url_for("home"), 303)
        if request.form.get("lu") != "oui":
            return render_template("notice.html",
                                   error="Cochez « J'ai pris connaissance de ces informations » pour continuer."), 400
        store().run("INSERT OR IGNORE INTO notice_read VALUES (?, ?)", local["user_key"],
                    dt.datetime.now(dt.UTC).isoformat())
        return redirect(url_for("home"), 303)

    @app.get("/eleve/<ine>")
    def pupil(ine: str) -> Any:
        local = current_session()
        if local is None:
            return redirect(url_for("home"))
        found = next((p for p in local["pupils"] if p["ine"] == ine), None)
        if found is None:
            abort(404)
        return render_template("pupil.html", pupil=found, week=data.timetable(found["class_code"]),
                               marks=data.marks(found["ine"], found["class_code"]))

    @app.post("/deconnexion")
    def logout() -> Any:
        check_csrf()
        sign_out()
        return redirect(cas.get_logout_url(redirect_url=f"{config.public_url}/"), 303)

    return app
