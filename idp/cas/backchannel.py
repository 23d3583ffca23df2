"""Calls from the CAS server to services: the proxy callback GET (§2.5.4) and the single-logout POST (§2.3.3).

TLS is verified against the system trust store; a registration may name a CA bundle (``ca_file``, e.g. a
school's private CA, or the test suite's self-signed certificate), which then replaces the system store for
that service. Redirects are never followed; every call has a short timeout (3 s).
"""

from __future__ import annotations

import functools
import http.client
import logging
import ssl
from urllib.parse import urlencode, urlsplit

log = logging.getLogger("idp.cas")

TIMEOUT_SECONDS = 3.0
MAX_READ = 65536


@functools.lru_cache(maxsize=64)
def _tls_context(ca_file: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file or None)


def _connection(url: str, ca_file: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname or ""
    if parts.scheme == "https":
        return http.client.HTTPSConnection(host, parts.port or 443, timeout=timeout,
                                           context=_tls_context(ca_file)), target
    return http.client.HTTPConnection(host, parts.port or 80, timeout=timeout), target


def _call(method: str, url: str, ca_file: str, body: str | None = None,
          timeout: float = TIMEOUT_SECONDS) -> int:
    """One request; returns the HTTP status, or 0 when the service cannot be reached or trusted."""
    conn, target = _connection(url, ca_file, timeout)
    headers = {"User-Agent": "idp-cas/1.0"}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
    try:
        conn.request(method, target, body=body.encode("utf-8") if body is not None else None, headers=headers)
        response = conn.getresponse()
        response.read(MAX_READ)
        return response.status
    except (OSError, http.client.HTTPException) as exc:  # ssl.SSLError is an OSError
        log.warning("cas back-channel %s to %s failed: %s", method, urlsplit(url).netloc, type(exc).__name__)
        return 0
    finally:
        conn.close()


def proxy_callback(pgt_url: str, pgt: str, pgt_iou: str, ca_file: str) -> bool:
    """Hand the PGT and its IOU to the callback; only a 200 answer counts (CAS 3.0 §2.5.4 step 2–3)."""
    parts = urlsplit(pgt_url)
    extra = urlencode({"pgtId": pgt, "pgtIou": pgt_iou})
    query = f"{parts.query}&{extra}" if parts.query else extra
    url = parts._replace(query=query, fragment="").geturl()
    return _call("GET", url, ca_file) == 200


def post_logout(service_url: str, logout_request: str, ca_file: str) -> int:
    """POST ``logoutRequest=<xml>`` to a service (CAS 3.0 §2.3.3, Appendix C); returns the status or 0."""
    return _call("POST", service_url, ca_file, body=urlencode({"logoutRequest": logout_request}))
