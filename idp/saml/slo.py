"""Single logout (SAML Profiles 4.4) as a top-level redirect chain, not hidden iframes.

A chain starts from ``/logout`` or from a signed LogoutRequest of one SP. The session is ended at once (and
the other protocols' back-channel hooks run); then the browser visits each other SAML SP of the session
with a signed LogoutRequest, each SP sends its LogoutResponse back here, and the chain ends on the
"Vous êtes déconnecté" page or with a LogoutResponse to the SP that asked (``PartialLogout`` when an SP
did not confirm). The chain's state lives in the database, keyed by a random id carried in RelayState.
"""

from __future__ import annotations

import base64
import secrets
import zlib
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

from flask import current_app, redirect, render_template, url_for
from lxml import etree
from saml2 import BINDING_HTTP_REDIRECT
from saml2.saml import NAMEID_FORMAT_PERSISTENT
from saml2.samlp import (
    STATUS_PARTIAL_LOGOUT,
    STATUS_REQUEST_DENIED,
    STATUS_REQUESTER,
    STATUS_SUCCESS,
    STATUS_UNKNOWN_PRINCIPAL,
)
from werkzeug.wrappers import Response

from idp.core import audit
from idp.core.authn.model import SsoSession
from idp.core.i18n import N_
from idp.core.ports import AuditEvent
from idp.errors import AuthnRequestExpired
from idp.saml import binding, checks, crypto
from idp.saml.errors import (
    LOGOUT_EXPIRED,
    SamlBadSignature,
    SamlInvalidRequest,
    SamlReplay,
    SamlRequestDenied,
    SamlUnknownServiceProvider,
    SamlUnsigned,
)
from idp.saml.idp import PostForm
from idp.saml.responses import encode_post
from idp.saml.signing import sign_enveloped
from idp.saml.xmlbuild import RSA_SHA256, SAML, SAMLP, instant, new_id, sub
from idp.storage.saml_store import SqlSamlStore
from idp.web.security import clear_sso_cookie, client_ip, sso_token

if TYPE_CHECKING:
    from idp.saml.idp import SamlIdp

NS = checks.NS


def deflate(document: bytes) -> bytes:
    """Raw DEFLATE for the HTTP-Redirect binding (Bindings 3.4.4.1)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(document) + compressor.flush()


class SingleLogout:
    """Receive LogoutRequests and LogoutResponses, and walk the chain of SPs to tell."""

    def __init__(self, idp: SamlIdp) -> None:
        self.idp = idp

    # --- starting a chain ------------------------------------------------------------------------------

    def _participants(self, uow: Any, session_id: str, exclude: str | None) -> list[dict[str, str]]:
        latest: dict[str, dict[str, str]] = {}
        for protocol, client_id, data in uow.sessions.participants(session_id):
            if protocol == "saml" and client_id != exclude:
                latest[client_id] = {"sp": client_id, **{k: str(v) for k, v in data.items()}}
        return list(latest.values())

    def logout_targets(self, session: SsoSession) -> list[str]:
        """The logout endpoints (from metadata) of the SAML SPs of ``session``: where ``/logout`` leads (SAML
        Profiles 4.4.3.1), for that page's CSP ``form-action``."""
        services, now = self.idp.services, self.idp.services.clock.now()
        with services.uow() as uow:
            store = SqlSamlStore(uow.session)
            targets = []
            for participant in self._participants(uow, session.id, None):
                found = self.idp.service_provider(store, participant["sp"], now)
                endpoint = found[1].slo_endpoint() if found else None
                if endpoint is not None:
                    targets.append(endpoint.location)
            uow.commit()
        return targets

    def start_from_logout(self, session: SsoSession) -> str | None:
        """After ``/logout`` ended ``session``: the URL of the chain, or None when no SAML SP took part."""
        services = self.idp.services
        with services.uow() as uow:
            pending = self._participants(uow, session.id, None)
            if not pending:
                return None
            chain_id = secrets.token_urlsafe(32)
            SqlSamlStore(uow.session).add_logout(chain_id, {"initiator": None, "pending": pending, "current": None,
                                                            "failed": []},
                                                 services.clock.now() + self.idp.config.logout_chain_ttl)
            uow.commit()
        return url_for("saml.slo_next", chain_id=chain_id)

    def receive(self, inbound: binding.Inbound, endpoint: str) -> Response:
        """Dispatch a message arriving at one of our SLO endpoints."""
        kind = etree.QName(inbound.root).text
        if kind == f"{{{SAMLP}}}LogoutRequest":
            return self._logout_request(inbound, endpoint)
        if kind == f"{{{SAMLP}}}LogoutResponse":
            return self._logout_response(inbound)
        raise SamlInvalidRequest()

    def _logout_request(self, inbound: binding.Inbound, endpoint: str) -> Response:
        """An SP asks to end the session (signature required: SECURITY S04, S23)."""
        services, idp = self.idp.services, self.idp
        root, now = inbound.root, services.clock.now()
        if root.get("Version") != "2.0":
            raise SamlInvalidRequest()
        request_id = checks.message_id(root)
        issuer = checks.issuer_of(root)
        with services.uow() as uow:
            store = SqlSamlStore(uow.session)
            found = idp.service_provider(store, issuer, now) if issuer else None
            if found is None:
                raise SamlUnknownServiceProvider()
            row, metadata = found
            checks.verify_signature(inbound, metadata, required=True)
            checks.check_destination(root, endpoint, signed=True)
            endpoint_sp = metadata.slo_endpoint()
            if endpoint_sp is None:
                raise SamlUnknownServiceProvider(N_("Ce service n'a pas déclaré d'adresse de déconnexion. Fermez "
                                                                "le navigateur pour terminer votre session."))
            initiator = {"sp": issuer, "id": request_id, "rs": inbound.relay_state}
            try:
                checks.check_fresh(root, idp.config, now)
            except SamlRequestDenied:
                uow.rollback()
                return self._finish(initiator, [], status=(STATUS_REQUESTER, STATUS_REQUEST_DENIED))
            if not store.consume_once(checks.replay_key(issuer, request_id), now + idp.config.replay_ttl, now):
                raise SamlReplay()
            name_id = checks.text_of(root.find("saml:NameID", NS))
            indexes = [checks.text_of(e) for e in root.findall("samlp:SessionIndex", NS)]
            session_id = self._session_for(uow, store, issuer, name_id, indexes)
            if session_id is None:
                uow.commit()
                return self._finish(initiator, [], status=(STATUS_REQUESTER, STATUS_UNKNOWN_PRINCIPAL))
            session = uow.sessions.get(session_id)
            uow.sessions.end(session_id, now)
            uow.audit.record(AuditEvent(event=audit.LOGOUT, at=now, account_id=session.account_id if session else None,
                                        ip=client_ip(), details={"via": "saml", "sp": issuer}))
            pending = self._participants(uow, session_id, issuer)
            chain_id = secrets.token_urlsafe(32)
            store.add_logout(chain_id, {"initiator": initiator, "pending": pending, "current": None, "failed": []},
                             now + idp.config.logout_chain_ttl)
            uow.commit()
        chain = url_for("saml.slo_next", chain_id=chain_id)
        if session is not None:
            services.extras["logout_hooks"].run([session])
            for wrap in services.extras.get("logout_wrappers", []):  # the upstream provider's logout (F08)
                chain = wrap(session, chain) or chain
        response = redirect(chain, 303)
        clear_sso_cookie(response, services.settings)
        return response

    def _session_for(self, uow: Any, store: SqlSamlStore, issuer: str, name_id: str,
                     indexes: list[str]) -> str | None:
        """The live session this SP's NameID (and SessionIndex, if given) designates; None if it does not match."""
        candidates = [self.idp.session_from_index(store, index, issuer) for index in indexes]
        if not indexes:
            current = self.idp.services.flow.current_session(sso_token(self.idp.services.settings))
            candidates = [current[0].id] if current else []
        for session_id in filter(None, candidates):
            session = uow.sessions.get(session_id)
            if session is None or session.ended_at is not None:
                continue
            for protocol, client_id, data in uow.sessions.participants(session_id):
                if protocol == "saml" and client_id == issuer and data.get("name_id") == name_id:
                    return session_id
        return None

    # --- walking the chain -----------------------------------------------------------------------------

    def next(self, chain_id: str) -> Response:
        """Send the browser to the next SP with a signed LogoutRequest, or finish the chain."""
        services, now = self.idp.services, self.idp.services.clock.now()
        with services.uow() as uow:
            store = SqlSamlStore(uow.session)
            state = store.get_logout(chain_id, now)
            if state is None:
                raise AuthnRequestExpired(LOGOUT_EXPIRED)
            if state["current"] is not None:
                state["failed"].append(state["current"]["sp"])
                state["current"] = None
            while state["pending"]:
                target = state["pending"].pop(0)
                found = self.idp.service_provider(store, target["sp"], now)
                endpoint = found[1].slo_endpoint() if found else None
                if endpoint is None:
                    state["failed"].append(target["sp"])
                    continue
                request_id = new_id()
                state["current"] = {"sp": target["sp"], "id": request_id}
                store.save_logout(chain_id, state)
                uow.commit()
                document = self._logout_request_xml(target, endpoint.location, request_id)
                return self._send(endpoint.binding, endpoint.location, "SAMLRequest", document, chain_id,
                                  found[0].name if found else target["sp"])
            store.end_logout(chain_id)
            names = [self._name(store, sp) for sp in state["failed"]]
            uow.commit()
        status = (STATUS_SUCCESS, STATUS_PARTIAL_LOGOUT if state["failed"] else None)
        return self._finish(state["initiator"], names, status=status)

    def _name(self, store: SqlSamlStore, entity_id: str) -> str:
        row = store.get_sp(entity_id)
        return row.name if row else entity_id

    def _logout_response(self, inbound: binding.Inbound) -> Response:
        """An SP answers our LogoutRequest: record whether it confirmed, then go on."""
        services, now = self.idp.services, self.idp.services.clock.now()
        chain_id = inbound.relay_state or ""
        with services.uow() as uow:
            store = SqlSamlStore(uow.session)
            state = store.get_logout(chain_id, now)
            if state is None or state["current"] is None:
                raise AuthnRequestExpired(LOGOUT_EXPIRED)
            current = state["current"]
            root = inbound.root
            ok = checks.issuer_of(root) == current["sp"] and root.get("InResponseTo") == current["id"]
            found = self.idp.service_provider(store, current["sp"], now)
            if ok and found is not None:
                try:
                    checks.verify_signature(inbound, found[1], required=False)
                except (SamlBadSignature, SamlUnsigned):
                    ok = False
            code = root.find("samlp:Status/samlp:StatusCode", NS)
            if not ok or code is None or code.get("Value") != STATUS_SUCCESS:
                state["failed"].append(current["sp"])
            state["current"] = None
            store.save_logout(chain_id, state)
            uow.commit()
        return redirect(url_for("saml.slo_next", chain_id=chain_id), 303)

    def _finish(self, initiator: dict[str, Any] | None, not_reached: list[str],
                status: tuple[str, str | None]) -> Response:
        """The end of the chain: a LogoutResponse to the SP that asked, or the logged-out page."""
        services = self.idp.services
        response: Response
        if initiator is None:
            response = current_app.make_response(render_template("saml_logged_out.html", not_reached=not_reached))
        else:
            with services.uow() as uow:
                found = self.idp.service_provider(SqlSamlStore(uow.session), initiator["sp"], services.clock.now())
            endpoint = found[1].slo_endpoint() if found else None
            if found is None or endpoint is None:
                raise SamlUnknownServiceProvider()
            location = endpoint.response_location or endpoint.location
            document = self._logout_response_xml(location, initiator["id"], status)
            response = self._send(endpoint.binding, location, "SAMLResponse", document, initiator.get("rs"),
                                  found[0].name)
        clear_sso_cookie(response, services.settings)
        return response

    # --- messages ----------------------------------------------------------------------------------------

    def _logout_request_xml(self, target: dict[str, str], destination: str, request_id: str) -> bytes:
        config, now = self.idp.config, self.idp.services.clock.now()
        root = etree.Element(f"{{{SAMLP}}}LogoutRequest", nsmap={"samlp": SAMLP, "saml": SAML}, ID=request_id,
                             Version="2.0", IssueInstant=instant(now), Destination=destination,
                             NotOnOrAfter=instant(now + config.message_lifetime))
        sub(root, SAML, "Issuer", config.entity_id)
        fmt = target.get("format", NAMEID_FORMAT_PERSISTENT)
        qualifiers = {"NameQualifier": config.entity_id, "SPNameQualifier": target["sp"]} \
            if fmt == NAMEID_FORMAT_PERSISTENT else {}
        sub(root, SAML, "NameID", target.get("name_id", ""), Format=fmt, **qualifiers)
        if target.get("session_index"):
            sub(root, SAMLP, "SessionIndex", target["session_index"])
        return self._sign(root)

    def _logout_response_xml(self, destination: str, in_response_to: str, status: tuple[str, str | None]) -> bytes:
        config, now = self.idp.config, self.idp.services.clock.now()
        root = etree.Element(f"{{{SAMLP}}}LogoutResponse", nsmap={"samlp": SAMLP, "saml": SAML}, ID=new_id(),
                             Version="2.0", IssueInstant=instant(now), Destination=destination,
                             InResponseTo=in_response_to)
        sub(root, SAML, "Issuer", config.entity_id)
        code = sub(sub(root, SAMLP, "Status"), SAMLP, "StatusCode", Value=status[0])
        if status[1]:
            sub(code, SAMLP, "StatusCode", Value=status[1])
        return self._sign(root)

    def _sign(self, root: etree._Element) -> bytes:
        """Messages are signed enveloped for HTTP-POST; for HTTP-Redirect the query is signed instead."""
        material = self.idp.keys.current()
        sign_enveloped(root, material, 1)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")  # type: ignore[no-any-return]

    def _send(self, binding: str, location: str, field: str, document: bytes, relay_state: str | None,
              sp_name: str) -> Response:
        if binding == BINDING_HTTP_REDIRECT:
            return redirect(self.redirect_url(location, field, document, relay_state), 303)
        from idp.saml.views import render_post

        return render_post(PostForm(action=location, field=field, message=encode_post(document),
                                    relay_state=relay_state, sp_name=sp_name))

    def redirect_url(self, location: str, field: str, document: bytes, relay_state: str | None) -> str:
        """An HTTP-Redirect URL with the query signed (RSA-SHA256 over the exact octets, Bindings 3.4.4.1).

        The enveloped signature is removed first: the binding forbids it in the deflated message.
        """
        root = crypto.parse_xml(document)
        for signature in root.findall("ds:Signature", NS):
            root.remove(signature)
        payload = base64.b64encode(deflate(etree.tostring(root))).decode("ascii")
        query = f"{field}={quote_plus(payload)}"
        if relay_state is not None:
            query += f"&RelayState={quote_plus(relay_state)}"
        query += f"&SigAlg={quote_plus(RSA_SHA256)}"
        signature = self.idp.keys.current().sign_bytes(query.encode("ascii"))
        query += f"&Signature={quote_plus(base64.b64encode(signature).decode('ascii'))}"
        return location + ("&" if "?" in location else "?") + query
