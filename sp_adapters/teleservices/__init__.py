"""Scolarité-services-like téléservices, an OpenID Connect client of the identity provider: "Mes services"
(bourse, orientation, affectation, fiche de renseignements, livret scolaire), a parent picks a child
(``children`` claim of the ``fr_edu_children`` scope), each service a small real page using the claims;
back-channel logout and RP-initiated logout."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from flask import Flask, abort, jsonify, redirect, render_template, request, session, url_for

from sp_adapters.common.app import (
    AdapterConfig,
    check_csrf,
    create_shell,
    current_session,
    safe_local,
    sign_in,
    sign_out,
    store,
)
from sp_adapters.teleservices.oidc import OidcClient, OidcFailure
from sp_adapters.teleservices.services import SERVICES, bourse_estimate, orientation_choices

log = logging.getLogger("sp_adapters.teleservices")

DDL = """
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, sub TEXT NOT NULL, child_id TEXT NOT NULL, service TEXT NOT NULL,
    data TEXT NOT NULL, submitted_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS logout_tokens (jti TEXT PRIMARY KEY, seen_at REAL NOT NULL);
"""
#: How long a logout token's ``jti`` is remembered: the tokens themselves are refused once older than this.
LOGOUT_TOKEN_MEMORY = 600
SCOPE = "openid profile email phone fr_edu fr_edu_children"


def create_app(config: AdapterConfig) -> Flask:
    app = create_shell("teleservices", "Scolarité services (démonstration)", Path(__file__).parent / "templates",
                       config, DDL)
    secret = str(config.extra.get("client_secret") or os.environ.get("TELESERVICES_CLIENT_SECRET", ""))
    client = OidcClient(config.idp_url, str(config.extra.get("client_id") or "teleservices"), secret,
                        f"{config.public_url}/callback", SCOPE)

    def signed_in() -> dict[str, Any]:
        local = current_session()
        if local is None:
            abort(redirect(url_for("login", next=request.path)))
        return local

    def child_of(local: dict[str, Any]) -> dict[str, Any] | None:
        """The pupil the person acts for: a parent's chosen child, or the pupil themself."""
        children = local["children"]
        if not children:
            return None
        return next((c for c in children if c["id"] == local.get("child")), children[0] if len(children) == 1 else None)

    @app.get("/")
    def home() -> Any:
        local = current_session()
        if local is None:
            return render_template("landing.html")
        return render_template("services.html", services=SERVICES, child=child_of(local), children=local["children"])

    @app.get("/connexion")
    def login() -> Any:
        try:
            url, pending = client.start()
        except (OSError, ValueError, OidcFailure) as exc:
            log.error("provider unavailable: %s", exc)
            abort(503, "Le service d'authentification ne répond pas. Réessayez dans quelques minutes.")
        session["oidc"] = {**pending, "next": safe_local(request.args.get("next"), "/")}
        return redirect(url, 303)

    @app.get("/callback")
    def callback() -> Any:
        pending = session.pop("oidc", None)
        try:
            claims, id_token = client.finish(dict(request.args.items()), pending)
        except (OidcFailure, OSError, ValueError) as exc:
            log.warning("login refused: %s", exc)
            abort(400, "La connexion n'a pas pu être vérifiée. Reconnectez-vous.")
        profile = "parent" if any(a.startswith("resp") for a in claims.get("FrEduCtPersonAffiliation", [])) else "eleve"
        children = claims.get("children", []) if profile == "parent" else [
            {"id": claims["sub"], "family_name": claims.get("family_name", ""), "given_name": claims.get("given_name", ""),
             "FrEduCtEleveUAI": (claims.get("FrEduCtEleveUAI") or [""])[0],
             "FrEduCtEleveNiveau": (claims.get("FrEduCtEleveNiveau") or [""])[0]}]
        name = f"{claims.get('given_name', '')} {claims.get('family_name', '')}".strip()
        sign_in(claims["sub"], str(claims.get("sid", "")),
                {"display_name": name, "profile": profile, "id_token": id_token, "children": children,
                 "claims": {k: claims.get(k) for k in ("family_name", "given_name", "email", "phone_number")}})
        return redirect(pending["next"] if pending else "/", 303)

    @app.post("/enfant")
    def choose_child() -> Any:
        check_csrf()
        local = signed_in()
        chosen = request.form.get("enfant", "")
        if chosen not in {c["id"] for c in local["children"]}:
            abort(400, "Choisissez un de vos enfants dans la liste.")
        data = {k: v for k, v in local.items() if k not in ("id", "user_key", "idp_ref")}
        store().update_session(local["id"], {**data, "child": chosen})
        return redirect(url_for("home"), 303)

    def save(local: dict[str, Any], child: dict[str, Any], service: str, values: dict[str, Any]) -> None:
        store().run("INSERT INTO submissions (sub, child_id, service, data, submitted_at) VALUES (?, ?, ?, ?, ?)",
                    local["user_key"], child["id"], service, json.dumps(values), time.time())

    def need_child(local: dict[str, Any]) -> dict[str, Any]:
        child = child_of(local)
        if child is None:
            abort(redirect(url_for("home")))
        return child

    @app.route("/bourse", methods=["GET", "POST"])
    def bourse() -> Any:
        local = signed_in()
        child = need_child(local)
        result, error = None, ""
        if request.method == "POST":
            check_csrf()
            try:
                income = int(request.form.get("revenu", "").replace(" ", ""))
                dependants = int(request.form.get("enfants", ""))
                if income < 0 or not 1 <= dependants <= 15:
                    raise ValueError
            except ValueError:
                error = "Indiquez un revenu fiscal de référence en euros et un nombre d'enfants à charge entre 1 et 15."
            else:
                result = bourse_estimate(income, dependants, child.get("FrEduCtEleveNiveau", ""))
                save(local, child, "bourse", {"revenu": income, "enfants": dependants, "resultat": result})
        return render_template("bourse.html", child=child, result=result, error=error, form=request.form), \
            400 if error else 200

    @app.route("/orientation", methods=["GET", "POST"])
    def orientation() -> Any:
        local = signed_in()
        child = need_child(local)
        choices = orientation_choices(child.get("FrEduCtEleveNiveau", ""))
        done, error = False, ""
        if request.method == "POST":
            check_csrf()
            wishes = [request.form.get(f"voeu{i}", "") for i in (1, 2, 3)]
            if not wishes[0] or any(w and w not in choices for w in wishes):
                error = "Choisissez au moins un premier vœu dans la liste."
            else:
                save(local, child, "orientation", {"voeux": [w for w in wishes if w]})
                done = True
        return render_template("orientation.html", child=child, choices=choices, done=done, error=error), \
            400 if error else 200

    @app.get("/affectation")
    def affectation() -> Any:
        local = signed_in()
        return render_template("affectation.html", child=need_child(local))

    @app.route("/fiche", methods=["GET", "POST"])
    def fiche() -> Any:
        local = signed_in()
        child = need_child(local)
        claims = local["claims"]
        done, error = False, ""
        form = request.form if request.method == "POST" else {
            "nom": claims.get("family_name") or "", "prenom": claims.get("given_name") or "",
            "courriel": claims.get("email") or "", "telephone": claims.get("phone_number") or ""}
        if request.method == "POST":
            check_csrf()
            if not form.get("nom") or not form.get("prenom"):
                error = "Le nom et le prénom du représentant légal sont obligatoires."
            else:
                save(local, child, "fiche", {k: form.get(k, "") for k in ("nom", "prenom", "courriel", "telephone",
                                                                          "adresse")})
                done = True
        return render_template("fiche.html", child=child, form=form, done=done, error=error), 400 if error else 200

    @app.get("/livret")
    def livret() -> Any:
        local = signed_in()
        return render_template("livret.html", child=need_child(local))

    def first_use(jti: str) -> bool:
        """Remember a logout token's ``jti`` (OIDC Back-Channel Logout 2.6): False when it was seen before."""
        now = time.time()
        with store().connect() as conn:
            conn.execute("DELETE FROM logout_tokens WHERE seen_at < ?", (now - LOGOUT_TOKEN_MEMORY,))
            try:
                conn.execute("INSERT INTO logout_tokens (jti, seen_at) VALUES (?, ?)", (jti, now))
            except sqlite3.IntegrityError:
                return False
        return True

    @app.post("/backchannel-logout")
    def backchannel_logout() -> Any:
        try:
            claims = client.verify_logout_token(request.form.get("logout_token", ""))
        except (OidcFailure, OSError, ValueError) as exc:
            log.warning("logout token refused: %s", exc)
            return jsonify(error="invalid_request"), 400
        if not first_use(claims["jti"]):
            log.warning("logout token refused: replayed jti")
            return jsonify(error="invalid_request", error_description="replayed logout token"), 400
        ended = store().end_by_ref(claims["sid"]) if claims.get("sid") else store().end_by_user(claims["sub"])
        log.info("back-channel logout: %s local session(s) ended", ended)
        response = app.make_response(("", 200))
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.post("/deconnexion")
    def logout() -> Any:
        check_csrf()
        local = sign_out()
        if local is None:
            return redirect(url_for("home"), 303)
        try:
            return redirect(client.logout_url(local["id_token"], f"{config.public_url}/deconnecte"), 303)
        except (OSError, ValueError, OidcFailure):
            return redirect(url_for("logged_out"), 303)

    @app.get("/deconnecte")
    def logged_out() -> str:
        return render_template("logged_out.html")

    return app
