"""``/healthz`` (liveness: the database answers), ``/readyz`` (this instance can serve: database, Redis when
configured, keys) and ``/metrics`` (Prometheus text format, behind a bearer token, never public)."""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from idp import metrics
from idp.web.readiness import readiness
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


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """200 when every part this instance needs answers, else 503 naming the parts that do not."""
    checks = readiness(current_app.extensions["idp"])
    ready = all(state in ("up", "absent") for state in checks.values())
    body = jsonify(status="ready" if ready else "unavailable", **checks)
    return (body, 200) if ready else (body, 503, {"Retry-After": "10"})


@bp.get("/metrics")
def prometheus() -> ResponseReturnValue:
    """The Prometheus exposition for a scraper holding the metrics token (404 when no token is configured)."""
    services: Services = current_app.extensions["idp"]
    expected = services.settings.metrics_token
    if not expected:
        abort(404)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        log.warning("metrics scrape refused")
        return Response("", 401, {"WWW-Authenticate": 'Bearer realm="metrics"'})
    body, content_type = metrics.render(extra=[_QueueDepth(services)])
    return Response(body, 200, {"Content-Type": content_type, "Cache-Control": "no-store"})


class _QueueDepth:
    """``idp_delivery_queue_depth{channel}``: messages queued or being sent, read from the database when
    scraped (the queue is shared by every instance, so any one of them tells its depth)."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def collect(self) -> list[object]:
        try:
            depth = self._services.delivery.queue.depth_by_channel()
        except Exception as exc:  # noqa: BLE001 - a scrape must answer even when the database does not
            log.warning("queue depth not read: %s", type(exc).__name__)
            return []
        return [metrics.gauge_family("idp_delivery_queue_depth", "Messages waiting or being sent, by channel.",
                                     "channel", {"sms": depth.get("sms", 0), "mail": depth.get("mail", 0)})]
