"""The CAS server: issue service tickets, validate them, grant proxy tickets (CAS 3.0 §2.2–§2.9, §3).

Views call one method each; whether the SSO session may answer ``/cas/login`` without a password is the
common login's decision (``AuthnFlow.begin``), never re-stated here. What validations answer (user id,
attributes) is computed from the SSO session's identity at its first ticket for a service (again after a
register change of the account) and copied into each ticket, so a validation is one atomic take-out of the
ticket store (``DELETE … RETURNING`` on the database, ``GETDEL`` on Redis): the ticket is burnt first,
whatever follows (§3.1.1); a repeated SSO login to a service without single logout is one ``INSERT … SELECT``
(or one Lua script on Redis). Tickets live in Redis when ``[redis] url`` is set, else in the database
(``idp.storage.cas_tickets.ticket_store``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from idp.cas import attributes, backchannel
from idp.cas.registry import InvalidServiceUrl, ServiceUrl, UnknownService, parse_service, resolve
from idp.cas.tickets import (
    TICKET_TTL,
    TicketProblem,
    TicketRejected,
    Validated,
    new_ticket,
    ticket_id,
    well_formed,
)
from idp.core.accounts.model import Account, AccountState
from idp.core.authn.model import SsoSession
from idp.core.authn.sessions import is_alive
from idp.storage.cas_store import KIND_PGT, KIND_PT, KIND_ST, CasServiceRecord, SqlCasStore, TicketRecord
from idp.storage.cas_tickets import CasTicketStore, ticket_store
from idp.wiring import Services

log = logging.getLogger("idp.cas")


def register_version(account: Account) -> str:
    """The account's register version an attributes copy is computed from and reused for: when a register
    import last changed what it releases ("" if never), read with the account, so no extra statement."""
    changed = account.register_changed_at
    return changed.isoformat() if changed is not None else ""


def _participant(ticket: str, record: TicketRecord, service: CasServiceRecord) -> dict[str, object]:
    """What a CAS service's session participant row keeps: single logout needs each ticket string later (its
    SessionIndex, Appendix C); other services join once, without it."""
    return {"ticket": ticket if service.slo else "", "service": record.service, "slo": service.slo}


class CasServer:
    """Tickets for registered services, in a store every worker sees (the database, or Redis)."""

    def __init__(self, services: Services, tickets: CasTicketStore | None = None) -> None:
        self._services = services
        self._uow = services.uow
        self._clock = services.clock
        self._secret = services.settings.pairwise_salt
        self._allow_http = services.settings.server.development
        self.logout_url = services.settings.server.base_url.rstrip("/") + "/cas/logout"
        self._database, configured = ticket_store(services.settings, services.db)
        self.tickets = tickets or configured

    # --- registry --------------------------------------------------------------------------------

    def resolve(self, raw_service: str) -> tuple[ServiceUrl, CasServiceRecord]:
        """The registration of a ``service`` parameter, or ``UnknownService`` (C01/C02)."""
        return resolve(self._database, raw_service, allow_http=self._allow_http)

    # --- /login ----------------------------------------------------------------------------------

    def issue(self, service: CasServiceRecord, url: ServiceUrl, account: Account, session: SsoSession, *,
              fresh: bool) -> str:
        """A service ticket for this service and session (CAS 3.0 §2.2.4); the service joins the session."""
        now = self._clock.now()
        ticket = new_ticket("ST")
        record = self._record(ticket, KIND_ST, service, url, account.id, session, fresh, (), now)
        # Once the service's attributes exist for this session and the account's register version (it already
        # joined it since the last register change), the ticket is one statement (with a single-logout
        # service's participant row, on PostgreSQL).
        if self._from_session(record, register_version(account), service, ticket, now):
            return ticket
        self._store_ticket(ticket, record, service, account, session, now)
        return ticket

    def _from_session(self, record: TicketRecord, register: str, service: CasServiceRecord, ticket: str,
                      now: dt.datetime) -> bool:
        """Store a ticket from the session's attributes copy; a single-logout service's ticket is also recorded
        as a session participant (with the database store: in the same statement). False: no copy yet, or
        one computed before the account's last register change (``register``)."""
        if not service.slo:
            return self.tickets.from_session(record, register)
        data = _participant(ticket, record, service)
        if self.tickets is self._database:
            return self._database.from_session_joining(record, register, data)
        # Tickets in Redis: the ticket, then its participant row; it is handed out only once both are stored.
        if not self.tickets.from_session(record, register):
            return False
        self._database.add_participant(record.session_id, service.service_id, data, now)
        return True

    @staticmethod
    def _record(ticket: str, kind: str, service: CasServiceRecord, url: ServiceUrl, account_id: int,
                session: SsoSession, fresh: bool, proxies: tuple[str, ...], now: dt.datetime) -> TicketRecord:
        return TicketRecord(id=ticket_id(ticket), kind=kind, service_id=service.service_id, service=url.normalised,
                            session_id=session.id, account_id=account_id, fresh=fresh, created_at=now,
                            expires_at=now + TICKET_TTL, proxies=proxies)

    def _store_ticket(self, ticket: str, record: TicketRecord, service: CasServiceRecord, account: Account,
                      session: SsoSession, now: dt.datetime) -> None:
        """A first ticket of a session for a service (or the first since a register change of the account), or
        one for a single-logout service, or a proxy ticket.

        The session participant (which single logout and the other protocols' logouts read) is committed first,
        then the attributes and the ticket are stored: a failure in between leaves no ticket anyone received.
        """
        register = register_version(account)
        payload = self.tickets.session_attributes(session.id, service.service_id, register)
        joined = payload is not None
        if payload is None or service.slo:
            with self._uow() as uow:
                if payload is None:
                    payload = attributes.snapshot(uow, service, account, session, secret=self._secret,
                                                  logout_url=self.logout_url, now=now)
                uow.sessions.add_participant(session.id, "cas", service.service_id,
                                             _participant(ticket, record, service), now)
                uow.commit()
        if not joined:
            self.tickets.keep_session_attributes(session.id, service.service_id, payload, now, register)
        self.tickets.add(dataclasses.replace(record, payload=payload))

    # --- validation ------------------------------------------------------------------------------

    def validate(self, ticket: str, service: str, *, renew: bool = False, pgt_url: str = "",
                 accept_proxy_tickets: bool = False) -> Validated:
        """Validate a ticket once for ``service`` (CAS 3.0 §2.4–§2.6, §2.8–§2.9) or raise ``TicketRejected``."""
        if not ticket or not service:
            raise TicketRejected(TicketProblem.MISSING_PARAMETER)
        if not well_formed(ticket) or not ticket.startswith(("ST-", "PT-")):
            raise TicketRejected(TicketProblem.UNKNOWN_TICKET)
        record = self.tickets.consume(ticket_id(ticket))
        if record is None:
            raise TicketRejected(TicketProblem.UNKNOWN_TICKET)
        self._check(record, service, renew=renew, accept_proxy_tickets=accept_proxy_tickets)
        payload = record.payload
        iou = self._grant_pgt(record, pgt_url) if pgt_url else ""
        return Validated(user=str(payload["user"]), attributes=[(n, list(v)) for n, v in payload["attributes"]],
                         authentication_date=str(payload["authenticationDate"]),
                         from_new_login=record.fresh, pgt_iou=iou, proxies=record.proxies)

    def _check(self, record: TicketRecord, service: str, *, renew: bool, accept_proxy_tickets: bool) -> None:
        if self._clock.now() >= record.expires_at:
            raise TicketRejected(TicketProblem.EXPIRED)
        if record.kind == KIND_PT and not accept_proxy_tickets:
            raise TicketRejected(TicketProblem.PROXY_TICKET_REFUSED)
        try:
            normalised = parse_service(service, allow_http=self._allow_http).normalised
        except InvalidServiceUrl:
            normalised = ""
        if normalised != record.service:
            raise TicketRejected(TicketProblem.WRONG_SERVICE)
        if renew and not record.fresh:
            raise TicketRejected(TicketProblem.NOT_FROM_NEW_LOGIN)

    # --- proxy -----------------------------------------------------------------------------------

    def _grant_pgt(self, record: TicketRecord, pgt_url: str) -> str:
        """Issue a PGT through an https callback that answers 200 (CAS 3.0 §2.5.4); return its IOU."""
        with self._uow() as uow:
            service = SqlCasStore(uow.session).service(record.service_id)
            session = uow.sessions.get(record.session_id)
        if service is None or not service.proxy:
            raise TicketRejected(TicketProblem.PROXY_NOT_ALLOWED)
        try:
            callback = parse_service(pgt_url, allow_http=False)
        except InvalidServiceUrl:
            raise TicketRejected(TicketProblem.BAD_PROXY_CALLBACK) from None
        if callback.host != service.host or callback.scheme != "https":
            raise TicketRejected(TicketProblem.BAD_PROXY_CALLBACK)
        if session is None or not is_alive(session, self._services.flow.session_policy, self._clock.now()):
            raise TicketRejected(TicketProblem.UNKNOWN_TICKET)
        pgt, iou = new_ticket("PGT"), new_ticket("PGTIOU")
        if not backchannel.proxy_callback(callback.normalised, pgt, iou, service.ca_file):
            raise TicketRejected(TicketProblem.BAD_PROXY_CALLBACK)
        self.tickets.add(TicketRecord(
            id=ticket_id(pgt), kind=KIND_PGT, service_id=service.service_id, service=callback.normalised,
            session_id=session.id, account_id=record.account_id, fresh=False, created_at=self._clock.now(),
            expires_at=session.expires_at, proxies=(pgt_url, *record.proxies),
        ))
        return iou

    def proxy(self, pgt: str, target_service: str) -> str:
        """A proxy ticket for ``target_service`` from a live PGT (CAS 3.0 §2.7) or ``TicketRejected``."""
        if not pgt or not target_service:
            raise TicketRejected(TicketProblem.MISSING_PARAMETER)
        if not well_formed(pgt) or not pgt.startswith("PGT-"):
            raise TicketRejected(TicketProblem.UNKNOWN_PGT)
        now = self._clock.now()
        record = self.tickets.proxy_granting(ticket_id(pgt))
        if record is None or now >= record.expires_at:
            raise TicketRejected(TicketProblem.UNKNOWN_PGT)
        with self._uow() as uow:
            session = uow.sessions.get(record.session_id)
            account = uow.accounts.get(record.account_id)
        if session is None or not is_alive(session, self._services.flow.session_policy, now) \
                or account is None or account.state is not AccountState.ACTIVE:
            raise TicketRejected(TicketProblem.UNKNOWN_PGT)
        try:
            url, target = self.resolve(target_service)
        except UnknownService:
            raise TicketRejected(TicketProblem.UNAUTHORIZED_TARGET) from None
        ticket = new_ticket("PT")
        pt = self._record(ticket, KIND_PT, target, url, account.id, session, False, record.proxies, now)
        self._store_ticket(ticket, pt, target, account, session, now)
        return ticket

    # --- end of a session ------------------------------------------------------------------------

    def end_session(self, session_id: str) -> None:
        """Forget an ended SSO session's tickets and attributes (its PGTs die with it, §3.3.1)."""
        self.tickets.end_session(session_id)
