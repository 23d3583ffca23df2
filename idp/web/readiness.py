"""What ``/readyz`` checks: can this instance serve a login now? The database, Redis when configured, the
secret key and the signing keys of the enabled protocols (a load balancer takes the instance out otherwise)."""

from __future__ import annotations

import logging

from idp.keystore import RSA_CERT_FILE, RSA_KEY_FILE
from idp.wiring import Services

log = logging.getLogger("idp.health")

#: ``idp.oidc.keyset.STATE_FILE`` (not imported: the web edge does not depend on one protocol's package).
OIDC_KEYS_FILE = "oidc-keys.json"
#: Key files each protocol signs with (``idp init`` writes them; ``idp keys rotate`` keeps these names).
PROTOCOL_KEYS = {"saml": (RSA_KEY_FILE, RSA_CERT_FILE), "oidc": (OIDC_KEYS_FILE,), "cas": ()}


def readiness(services: Services) -> dict[str, str]:
    """``{"database": "up", "redis": "up" | "down" | "absent", "keys": "up" | "down"}``."""
    return {"database": _database(services), "redis": _redis(services), "keys": _keys(services)}


def _database(services: Services) -> str:
    try:
        services.db.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot serve"
        log.warning("readiness: database %s", type(exc).__name__)
        return "down"
    return "up"


def _redis(services: Services) -> str:
    url = services.settings.redis.url
    if not url:
        return "absent"
    import redis

    from idp.storage.redis_store import connect

    client = services.extras.get("redis_probe")
    if client is None:
        client = services.extras["redis_probe"] = connect(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        log.warning("readiness: redis %s", type(exc).__name__)
        return "down"
    return "up"


def _keys(services: Services) -> str:
    settings = services.settings
    directory = settings.path(settings.keys.directory)
    needed = [name for protocol in settings.protocols.enabled for name in PROTOCOL_KEYS.get(protocol, ())]
    missing = [name for name in needed if not (directory / name).is_file()]
    if missing or not settings.secret_key:
        log.warning("readiness: keys missing %s%s", ", ".join(missing), "" if settings.secret_key else " secret")
        return "down"
    return "up"
