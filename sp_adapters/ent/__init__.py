"""ENT portal (SAML 2.0 SP, pysaml2): the seeds' "Vous souhaitez vous connecter à votre ENT en tant que :"
page, SP- and IdP-initiated login, charter and "Contact et préférences" at first login, the portal home
(name, profile, children or class, links to Pronote and the téléservices), single logout."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, redirect, render_template, request, session, url_for

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
from sp_adapters.common.directory import Directory, demo_directory
from sp_adapters.ent.saml import EntServiceProvider, SamlFailure

log = logging.getLogger("sp_adapters.ent")

DDL = """
CREATE TABLE IF NOT EXISTS users (
    name_id TEXT PRIMARY KEY,
    family_name TEXT NOT NULL,
    given_names TEXT NOT NULL,
    charter_accepted_at REAL,
    email TEXT NOT NULL DEFAULT '',
    notify_messages INTEGER NOT NULL DEFAULT 0,
    notify_homework INTEGER NOT NULL DEFAULT 0,
    notify_news INTEGER NOT NULL DEFAULT 0,
    preferences_at REAL
);
"""

#: The seeds' choices; only the first goes to our identity provider.
CHOICES = (
    ("educonnect", "Élève ou parent", "de l'académie de Montpellier avec ÉduConnect"),
    ("toulouse", "Élève ou parent", "de l'académie de Toulouse"),
    ("agricole", "Élève ou parent", "de l'enseignement agricole"),
    ("enseignant", "Enseignant", ""),
    ("personnel", "Personnel non enseignant", ""),
    ("autres", "Autres comptes et invités", ""),
)
PROFILES = {"resp": "Représentant légal", "eleve": "Élève"}


def _children(attributes: dict[str, list[str]], directory: Directory) -> list[dict[str, str]]:
    """Resolve FrEduVecteur (``type|NOM|PRENOM|id|UAI``) against the ENT's directory, as ENTs do."""
    out = []
    for vector in attributes.get("FrEduVecteur", []):
        parts = vector.split("|")
        if len(parts) != 5:
            continue
        pupil = directory.by_siecle_id.get(parts[3])
        school = directory.schools.get(parts[4], parts[4])
        if pupil is None:
            out.append({"name": "", "class_code": "", "school": school})
        else:
            out.append({"name": f"{pupil.given_names} {pupil.family_name}", "class_code": pupil.class_code,
                        "school": school})
    return out


def create_app(config: AdapterConfig) -> Flask:
    app = create_shell("ent", "ENT de démonstration", Path(__file__).parent / "templates", config, DDL)
    sp = EntServiceProvider(config)
    app.extensions["ent_sp"] = sp

    def user_row(name_id: str) -> Any:
        return store().one("SELECT * FROM users WHERE name_id = ?", name_id)

    @app.get("/")
    def home() -> Any:
        local = current_session()
        if local is None:
            return render_template("landing.html")
        row = user_row(local["user_key"])
        if row is None or row["charter_accepted_at"] is None:
            return redirect(url_for("charter"))
        if row["preferences_at"] is None:
            return redirect(url_for("preferences"))
        attributes = local["attributes"]
        kinds = {a[:-2] for a in attributes.get("FrEduCtPersonAffiliation", [])}
        profile = ", ".join(PROFILES[k] for k in sorted(kinds) if k in PROFILES) or "Non précisé"
        return render_template("home.html", row=row, profile=profile, is_parent="resp" in kinds,
                               children=_children(attributes, demo_directory()))

    @app.route("/connexion", methods=["GET", "POST"])
    def choose() -> Any:
        error = ""
        if request.method == "POST":
            check_csrf()
            choice = request.form.get("profil", "")
            if choice == "educonnect":
                return redirect(url_for("saml_login"), 303)
            if choice in {c[0] for c in CHOICES}:
                return redirect(url_for("other_account", profil=choice), 303)
            error = "Choisissez votre profil de connexion."
        return render_template("choose.html", choices=CHOICES, error=error), 400 if error else 200

    @app.get("/connexion/autre")
    def other_account() -> str:
        label = {c[0]: f"{c[1]} {c[2]}".strip() for c in CHOICES}.get(request.args.get("profil", ""), "ce profil")
        return render_template("other_account.html", label=label)

    @app.get("/saml/metadata")
    def metadata() -> Response:
        return Response(sp.metadata(), mimetype="application/samlmetadata+xml")

    @app.get("/saml/login")
    def saml_login() -> Any:
        target = safe_local(request.args.get("next"), "/")
        try:
            request_id, url = sp.login_redirect(target)
        except (OSError, ValueError) as exc:
            log.error("idp metadata unavailable: %s", exc)
            abort(503, "Le service d'authentification ne répond pas. Réessayez dans quelques minutes.")
        outstanding = dict(session.get("outstanding", {}))
        outstanding = dict(list(outstanding.items())[-4:])  # a few tabs at most
        outstanding[request_id] = target
        session["outstanding"] = outstanding
        return redirect(url, 303)

    @app.post("/saml/acs")
    def acs() -> Any:
        saml_response = request.form.get("SAMLResponse", "")
        if not saml_response:
            abort(400, "Réponse d'authentification absente.")
        outstanding = dict(session.get("outstanding", {}))
        try:
            answer = sp.read_response(saml_response, outstanding)
        except SamlFailure as exc:
            log.warning("saml response refused: %s", exc)
            abort(400, "La réponse du service d'authentification n'a pas pu être vérifiée. Reconnectez-vous.")
        outstanding.pop(answer.in_response_to or "", None)
        attributes = {k: [str(v) for v in vals] for k, vals in answer.ava.items()}
        name_id = str(answer.name_id)
        info = answer.session_info()
        family = (attributes.get("sn") or [""])[0]
        given = (attributes.get("givenName") or [""])[0]
        store().run("INSERT INTO users (name_id, family_name, given_names) VALUES (?, ?, ?) "
                    "ON CONFLICT (name_id) DO UPDATE SET family_name = excluded.family_name, "
                    "given_names = excluded.given_names", name_id, family, given)
        sign_in(name_id, str(info.get("session_index") or ""),
                {"display_name": f"{given} {family}".strip(), "name_id": name_id,
                 "session_index": str(info.get("session_index") or ""), "attributes": attributes})
        return redirect(safe_local(request.form.get("RelayState"), "/"), 303)

    def signed_in() -> dict[str, Any]:
        local = current_session()
        if local is None:
            abort(redirect(url_for("home")))
        return local

    @app.route("/charte", methods=["GET", "POST"])
    def charter() -> Any:
        local = signed_in()
        error = ""
        if request.method == "POST":
            check_csrf()
            if request.form.get("accepte") == "oui":
                store().run("UPDATE users SET charter_accepted_at = ? WHERE name_id = ?", time.time(),
                            local["user_key"])
                return redirect(url_for("home"), 303)
            error = "Pour utiliser l'ENT, vous devez accepter la charte d'utilisation."
        return render_template("charter.html", error=error), 400 if error else 200

    @app.route("/preferences", methods=["GET", "POST"])
    def preferences() -> Any:
        local = signed_in()
        row = user_row(local["user_key"])
        if row is None or row["charter_accepted_at"] is None:
            return redirect(url_for("charter"))
        error = ""
        if request.method == "POST":
            check_csrf()
            email = request.form.get("email", "").strip()
            if email and ("@" not in email or len(email) > 254 or " " in email):
                error = "L'adresse électronique n'est pas valide (exemple : prenom.nom@exemple.fr)."
            else:
                flags = [1 if request.form.get(k) == "oui" else 0 for k in ("messages", "devoirs", "actualites")]
                store().run("UPDATE users SET email = ?, notify_messages = ?, notify_homework = ?, notify_news = ?, "
                            "preferences_at = ? WHERE name_id = ?", email, *flags, time.time(), local["user_key"])
                return redirect(url_for("home"), 303)
        return render_template("preferences.html", row=row, error=error,
                               form=request.form if request.method == "POST" else None), 400 if error else 200

    @app.post("/deconnexion")
    def logout() -> Any:
        check_csrf()
        local = sign_out()
        if local is None:
            return redirect(url_for("home"), 303)
        try:
            _, url = sp.logout_redirect(local["name_id"], local["session_index"], "")
        except (SamlFailure, OSError) as exc:
            log.warning("single logout not started: %s", exc)
            return render_template("logged_out.html", partial=True)
        return redirect(url, 303)

    @app.get("/saml/sls")
    def sls() -> Any:
        if request.args.get("SAMLResponse"):
            try:
                ok = sp.read_logout_response(request.args["SAMLResponse"])
            except SamlFailure as exc:
                log.warning("logout response refused: %s", exc)
                ok = False
            sign_out()
            return render_template("logged_out.html", partial=not ok)
        if request.args.get("SAMLRequest"):
            try:
                parsed, name_id, indexes = sp.read_logout_request(dict(request.args.items()))
            except SamlFailure as exc:
                log.warning("logout request refused: %s", exc)
                abort(400, "Demande de déconnexion refusée.")
            ended = sum(store().end_by_ref(i) for i in indexes) if indexes else store().end_by_user(name_id)
            log.info("single logout from the identity provider: %s local session(s) ended", ended)
            sign_out()
            return redirect(sp.logout_answer(parsed, request.args.get("RelayState")), 303)
        abort(400, "Message de déconnexion absent.")

    return app
