"""The OIDC consents a person gave, for the account page: listed in plain French and withdrawn one by one.

Registered as ``services.extras["consents"]`` so that the account page stays protocol-agnostic. Withdrawing
a consent revokes it and every grant of that client for this person (their refresh and access tokens stop
working at once; ASVS 10.7.3); the next authorization asks again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from idp.core.ports import AuditEvent
from idp.oidc.claims import SCOPE_LABELS
from idp.oidc.server import OidcServer, audit_event


@dataclass(frozen=True)
class ConsentView:
    """One line of "Services autorisés"."""

    client_id: str
    service_name: str
    scopes: tuple[str, ...]  # plain French, as on the consent page
    granted_at: dt.datetime


class OidcConsents:
    """List and withdraw a person's consents to third-party OIDC clients."""

    def __init__(self, server: OidcServer) -> None:
        self.server = server

    def list(self, account_id: int) -> list[ConsentView]:
        with self.server.transaction() as uow:
            records = uow.oidc.consents(account_id)  # type: ignore[attr-defined]
        return [ConsentView(client_id=r.client_id, service_name=r.client_name,
                            scopes=tuple(SCOPE_LABELS[s] for s in r.scope if s in SCOPE_LABELS),
                            granted_at=r.granted_at) for r in records]

    def withdraw(self, account_id: int, client_id: str, ip: str = "") -> bool:
        """Withdraw one consent and revoke that client's grants for this person; False if there was none."""
        if not client_id or len(client_id) > 64 or not client_id.isprintable():
            return False
        server = self.server
        with server.transaction() as uow:
            now = server.now()
            if not uow.oidc.revoke_consent(account_id, client_id, now):  # type: ignore[attr-defined]
                return False
            uow.audit.record(AuditEvent(event=audit_event("oidc_consent_withdrawn"), at=now, account_id=account_id,
                                        ip=ip, details={"client_id": client_id}))
            uow.commit()
        return True
