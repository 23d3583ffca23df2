"""``/healthz``: answers 200 when the database answers, 503 otherwise."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from idp.wiring import Services

bp = Blueprint("health", __name__)
log = logging.getLogger("idp.health")


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Check the database with ``SELECT 1``."""
    services: Services = current_app.extensions["idp"]
    try:
        services.db.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
        log.warning("health check failed: %s", type(exc).__name__)
        return jsonify(status="unavailable", database="down"), 503, {"Retry-After": "10"}
    return jsonify(status="ok", database="up")
