"""The Flask shell every adapter uses: secret key in the data directory, its own cookie name (all demo
services share the host 127.0.0.1, and cookies ignore ports), CSRF on every form, safe local redirects,
security headers, French error pages, and the local session of the signed-in person."""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, abort, g, render_template, request, session
from jinja2 import ChoiceLoader, FileSystemLoader
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from sp_adapters.common.store import Store

COMMON = Path(__file__).parent
log = logging.getLogger("sp_adapters")


@dataclass
class AdapterConfig:
    """What every adapter is started with (``python -m sp_adapters.<name> --help``)."""

    public_url: str
    idp_url: str
    data_dir: Path
    links: dict[str, str] = field(default_factory=dict)  # other services of the demo, by name
    extra: dict[str, Any] = field(default_factory=dict)  # adapter-specific settings

    def __post_init__(self) -> None:
        self.public_url = self.public_url.rstrip("/")
        self.idp_url = self.idp_url.rstrip("/")
        self.data_dir = Path(self.data_dir)


def _secret_key(data_dir: Path) -> str:
    path = data_dir / "secret.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip()


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf() -> None:
    sent, expected = request.form.get("csrf_token", ""), session.get("csrf")
    if not isinstance(expected, str) or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, "Le formulaire a expiré. Revenez en arrière, rechargez la page et recommencez.")


def safe_local(target: str | None, default: str = "/") -> str:
    """Only a local absolute path is followed (never another site)."""
    if not target or len(target) > 512 or any(c in target for c in "\\\r\n\t"):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def create_shell(name: str, title: str, templates: Path, config: AdapterConfig, ddl: str = "") -> Flask:
    """A Flask app with the shared layout, its own store, CSRF and local sessions."""
    app = Flask(f"sp_adapters.{name}", static_folder=str(COMMON / "static"), static_url_path="/static")
    app.jinja_loader = ChoiceLoader([FileSystemLoader(str(templates)), FileSystemLoader(str(COMMON / "templates"))])
    app.config.update(SECRET_KEY=_secret_key(config.data_dir), SESSION_COOKIE_NAME=f"{name}_session",
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=config.public_url.startswith("https://"),
                      MAX_CONTENT_LENGTH=256 * 1024)
    store = Store(config.data_dir / f"{name}.sqlite3", ddl)
    app.extensions["adapter"] = {"config": config, "store": store, "name": name}

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {"csrf_token": csrf_token, "service_title": title, "links": config.links,
                "current": current_session()}

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(HTTPException)
    def _error(exc: HTTPException) -> tuple[str, int]:
        description = exc.description if isinstance(exc.description, str) else ""
        if exc.code == 404:
            description = "Cette page n'existe pas."
        elif exc.code == 405:
            description = "Cette adresse ne s'utilise pas ainsi."
        return render_template("error.html", code=exc.code, description=description), exc.code or 500

    return app


def store() -> Store:
    from flask import current_app

    return current_app.extensions["adapter"]["store"]  # type: ignore[no-any-return]


def config() -> AdapterConfig:
    from flask import current_app

    return current_app.extensions["adapter"]["config"]  # type: ignore[no-any-return]


def current_session() -> dict[str, Any] | None:
    """The signed-in person's live local session (ended at logout, by any channel), or None."""
    if "local" not in g:
        g.local = store().live_session(session.get("sid"))
        if g.local is None:
            session.pop("sid", None)
    return g.local  # type: ignore[no-any-return]


def sign_in(user_key: str, idp_ref: str, data: dict[str, Any]) -> str:
    """Open a local session and bind it to this browser (a fresh cookie session: no fixation)."""
    session.clear()
    session["sid"] = store().open_session(user_key, idp_ref, data)
    g.pop("local", None)
    return str(session["sid"])


def sign_out() -> dict[str, Any] | None:
    """End this browser's local session; return what it held."""
    local = current_session()
    if local is not None:
        store().end_session(local["id"])
    session.clear()
    g.local = None
    return local
