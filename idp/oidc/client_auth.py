"""Client authentication failures at the token, introspection and revocation endpoints (RFC 6749 §2.3, §5.2;
SECURITY O08, O28): audited, counted per client id and per address like password failures, and throttled.

Every failure reaches ``OidcServer.authenticate_client`` (the token endpoint's shortcut for well-formed secret
requests only answers correct credentials and otherwise hands the request to authlib), which hands it to
``ClientAuthFailures.failed``: the one place that counts, audits and chooses the answer.

The answer stays ``invalid_client`` (RFC 6749 §5.2). Below the limits it is the usual 401 with
``WWW-Authenticate``; once the client id (the ``[throttle]`` numbers of identifiers: after 5 failures, 1 min
doubling to 15 min) or the address (30 failures in 10 min, 100 per /24) is throttled, the next failures are HTTP
429 with ``Retry-After`` (RFC 6585 §4), still ``error=invalid_client``. Credentials are always checked, so the registered client holding its secret or key
is never locked out by someone else's failures (O28): the throttle only ever changes how a failure is
answered and recorded. Failures while throttled are counted (they keep the lock alive) and logged, but only
the failure that starts a throttle is audited with ``throttled``, so a flood cannot fill the audit trail.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from authlib.oauth2.rfc6749.errors import InvalidClientError

from idp import metrics
from idp.core.authn import throttle
from idp.core.ports import AuditEvent
from idp.web.security import client_ip

if TYPE_CHECKING:
    from idp.oidc.server import OidcServer

log = logging.getLogger("idp.oidc")

CLIENT_AUTH_FAILED = "oidc.client_auth_failed"
MAX_CLIENT_ID = 64


class ClientAuthThrottled(InvalidClientError):  # type: ignore[misc]
    """``invalid_client`` answered with HTTP 429 and ``Retry-After`` once failures are throttled (RFC 6585 §4)."""

    def __init__(self, wait_seconds: int) -> None:
        super().__init__(status_code=429, description=f"Too many failed client authentications: retry in "
                                                      f"{wait_seconds} seconds.")
        self.wait_seconds = wait_seconds

    def get_headers(self) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = super().get_headers()
        return [*headers, ("Retry-After", str(self.wait_seconds))]


def claimed_client(request: Any) -> tuple[str, str]:
    """The client id the request claims (unverified) and the authentication method it tried."""
    form = request.form
    header = request.headers.get("Authorization", "")
    if header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            decoded = ""
        return unquote(decoded.partition(":")[0]), "client_secret_basic"
    if form.get("client_assertion"):
        return form.get("client_id") or _assertion_subject(form.get("client_assertion")), "private_key_jwt"
    if form.get("client_secret"):
        return form.get("client_id") or "", "client_secret_post"
    return form.get("client_id") or "", "none"


def _assertion_subject(assertion: str) -> str:
    """The ``sub`` of an unverified client assertion, only to name who was claimed in the audit trail."""
    parts = assertion.split(".")
    if len(parts) != 3 or len(parts[1]) > 8192:
        return ""
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return ""
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) else ""


def _printable(value: str) -> str:
    return "".join(c for c in value[:MAX_CLIENT_ID] if c.isprintable())


class ClientAuthFailures:
    """Counts, audits and answers client authentication failures (the one call site for each refusal)."""

    def __init__(self, server: OidcServer) -> None:
        self.server = server

    def failed(self, request: Any, error: InvalidClientError, endpoint: str) -> InvalidClientError:
        """Record a failure and return the error to answer: ``error`` itself, or 429 while a throttle runs."""
        client_id, method = claimed_client(request)
        client_id, ip = _printable(client_id), client_ip(request)
        server = self.server
        policy = server.services.flow.throttle_policy
        now = server.now()
        with server.atomically():  # the count and the audit line hold together
            before, after = throttle.record_client_failure(throttle.client_keys(client_id, ip), server.uow.throttle,
                                                           policy, now)
            details = {"client_id": client_id, "method": method, "endpoint": endpoint,
                       "reason": str(error.description or error.error)[:120], "throttled": after > 0}
            self.refused(details, ip, audited=before == 0)
        return ClientAuthThrottled(max(before, after)) if before else error

    def refused(self, details: dict[str, Any], ip: str, *, audited: bool) -> None:
        """One refused client authentication, audited (the audit trail also logs it) or, while a throttle already
        runs, only logged; counted in the metrics either way."""
        metrics.CLIENT_AUTH_FAILURES.labels(endpoint=str(details.get("endpoint", "")),
                                            throttled=str(bool(details.get("throttled")))).inc()
        if audited:
            self.server.uow.audit.record(AuditEvent(event=CLIENT_AUTH_FAILED, at=self.server.now(), ip=ip,
                                                    details=details))
        else:
            log.warning(CLIENT_AUTH_FAILED, extra={"client_auth": {**details, "ip": ip}})
