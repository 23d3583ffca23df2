"""Content pages (aide, mentions légales, accessibilité) and honest placeholders for later flows."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from idp.core.passwords.blocklist import script_data

bp = Blueprint("pages", __name__)

CONTENT = {"aide": "page_aide.html", "mentions-legales": "page_mentions.html", "accessibilite": "page_accessibilite.html"}

#: The list changes with a release only; a day's cache keeps it off the password pages' critical path.
CACHE_SECONDS = 86_400

#: Links the login screen shows whose flow arrives with a later piece of work: each says so plainly.
PLACEHOLDERS: dict[str, tuple[str, str]] = {}


@bp.get("/pages/<name>")
def content(name: str) -> ResponseReturnValue:
    """Help, legal notice and accessibility statement."""
    template = CONTENT.get(name)
    if template is None:
        abort(404)
    return render_template(template)


@bp.get("/bientot/<name>")
def placeholder(name: str) -> ResponseReturnValue:
    """A page that is not built yet says so, with what to do meanwhile (never a 404)."""
    if name not in PLACEHOLDERS:
        abort(404)
    title, text = PLACEHOLDERS[name]
    return render_template("placeholder.html", title=title, text=text)


@bp.get("/activation", defaults={"request_id": ""})
@bp.get("/activation/<request_id>")
def activation_pending(request_id: str) -> ResponseReturnValue:
    """After a login with provisional credentials: the first-login steps (idp.web.activation)."""
    return redirect(url_for("activation.first_login", request_id=request_id[:64]), 303)


@bp.get("/mots-de-passe-courants.json")
def common_passwords() -> ResponseReturnValue:
    """The common-password list and tables for the password checklist script (the same for everybody: cached)."""
    response = jsonify(script_data())
    response.cache_control.public = True
    response.cache_control.max_age = CACHE_SECONDS
    response.add_etag()
    return response.make_conditional(request)
