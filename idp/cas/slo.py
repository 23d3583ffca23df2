"""CAS single logout (CAS 3.0 §2.3.3): when an SSO session ends, its CAS services hear about it.

The hook runs after any logout of the common login (``/logout``, ``/cas/logout``, and SAML or OIDC logouts
that use the same hooks). It drops the session's remaining tickets (PGTs die with the session) and, for each
ticket issued to a service registered with single logout, POSTs ``logoutRequest`` with the ticket as
``SessionIndex`` from a small thread pool: fire and forget (§2.3.3.1), 3 s timeouts, failures only logged,
never blocking or failing the logout.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor

from idp.cas import backchannel
from idp.cas.responses import logout_request
from idp.core.authn.model import SsoSession
from idp.errors import ServiceUnavailable
from idp.storage.cas_store import SqlCasStore
from idp.wiring import Services

log = logging.getLogger("idp.cas")


class SingleLogout:
    """The ``logout_hooks`` entry of the CAS front-end."""

    def __init__(self, services: Services, max_workers: int = 4) -> None:
        self._services = services
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="cas-slo")
        self.pending: list[Future[int]] = []

    def __call__(self, session: SsoSession) -> None:
        """Forget the session's tickets and notify its single-logout services in the background."""
        try:
            targets = self._targets(session)
        except ServiceUnavailable:
            log.error("cas single logout skipped: database unavailable")
            return
        now = self._services.clock.now()
        self.pending = [f for f in self.pending if not f.done()]
        for url, ticket, ca_file in targets:
            self.pending.append(self._pool.submit(self._send, url, logout_request(ticket, now), ca_file))

    def _targets(self, session: SsoSession) -> list[tuple[str, str, str]]:
        try:
            self._services.extras["cas"].end_session(session.id)
        except ServiceUnavailable:  # the services still hear about the logout; the tickets expire soon
            log.error("cas: tickets of an ended session not dropped: ticket store unavailable")
        with self._services.uow() as uow:
            store = SqlCasStore(uow.session)
            participants = [(cid, data) for protocol, cid, data in uow.sessions.participants(session.id)
                            if protocol == "cas" and data.get("slo") and data.get("ticket")]
            registry = {cid: store.service(cid) for cid in {cid for cid, _ in participants}}
        targets = []
        for cid, data in participants:
            service = registry.get(cid)
            if service is not None and service.enabled and service.slo:
                targets.append((str(data["service"]), str(data["ticket"]), service.ca_file))
        return targets

    @staticmethod
    def _send(url: str, document: str, ca_file: str) -> int:
        status = backchannel.post_logout(url, document, ca_file)
        if not 200 <= status < 300:
            log.warning("cas single logout to a service answered %s", status or "nothing")
        return status

    def shutdown(self) -> None:
        """Stop the pool once queued notifications are sent (tests, process exit)."""
        self._pool.shutdown(wait=True)
