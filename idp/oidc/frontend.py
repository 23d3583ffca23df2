"""The OIDC front-end: an authorization request → the common login → a code at the registered redirect_uri.

OIDC Core 3.1.2: the request is checked for trust first (client, byte-identical ``redirect_uri``; otherwise a
French page, never a redirect), then validated by authlib (response_type, scope, PKCE, nonce), then handed
to ``services.flow.begin``. The code is issued at once when the SSO session answers, or by ``/oidc/resume``
after the login page, or after the consent page for third-party clients.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749.errors import AccessDeniedError, InvalidRequestError, OAuth2Error
from authlib.oidc.core.errors import LoginRequiredError, RequestNotSupportedError, RequestURINotSupportedError
from flask import Blueprint, redirect, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from idp.core.accounts.model import Account
from idp.core.authn.flow import Client, browser_hash
from idp.core.authn.model import Assertion, AuthMethod, AuthnRequest, SsoSession
from idp.core.ports import UnitOfWork
from idp.errors import AuthnFailed, AuthnRequestExpired
from idp.oidc.claims import allowed_scopes
from idp.oidc.config import ACR, AMR
from idp.oidc.mapping import CONSENT_REQUIRED, InvalidRedirectUri, OidcUntrusted, UnknownClient, oauth_error
from idp.oidc.models import OidcClient, Subject
from idp.oidc.prompt import LoginDemand, login_demand, max_age_exceeded, parse_max_age, parse_prompt
from idp.oidc.server import OidcServer, StoredRequest
from idp.storage.oidc_store import PendingRecord
from idp.web.security import browser_id, sso_token
from idp.wiring import Services

#: Parameters that must not be repeated (RFC 6749 §3.1).
SINGLE_PARAMS = ("response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "prompt", "max_age",
                 "code_challenge", "code_challenge_method", "id_token_hint")
MAX_PARAM_LENGTH = 2048
#: authlib's authorization grant and the redirect URI its validation returned.
Validated = tuple[Any, str]


class OidcFrontend:
    """The ``ProtocolFrontend`` of OpenID Connect."""

    name = "oidc"

    def __init__(self, services: Services, server: OidcServer) -> None:
        self.services = services
        self.server = server

    def blueprint(self) -> Blueprint:
        """The ``/oidc`` routes and discovery."""
        from idp.oidc.views import bp

        return bp

    def back_channel(self) -> dict[str, Any]:
        """The token, UserInfo, revocation and introspection endpoints: WSGI handlers, not Flask views."""
        from idp.oidc.token_endpoint import routes

        return routes(self.server)

    def resume_url(self, request_id: str) -> str:
        """After the login page: ``/oidc/resume/<id>``."""
        return url_for("oidc.resume", request_id=request_id)

    def answer_targets(self, req: AuthnRequest) -> list[str]:
        """The registered ``redirect_uri`` the code (or the error) is sent to (OIDC Core 3.1.2.5, 3.1.2.6)."""
        try:
            return [self.trusted(MultiDict(req.payload.get("params", {})))[1]]
        except OidcUntrusted:
            return []

    # --- trust -----------------------------------------------------------------------------------

    def trusted(self, params: MultiDict[str, str]) -> tuple[OidcClient, str]:
        """The client and the registered redirect_uri this request may be answered at, or an error page."""
        client = self.server.query_client(params.get("client_id"))  # in memory (a short TTL), no transaction
        if client is None:
            raise UnknownClient()
        uris = params.getlist("redirect_uri")
        if len(uris) > 1:
            raise InvalidRedirectUri()
        if not uris:
            # OIDC requires it (Core 3.1.2.1); plain OAuth may default to the only registered one.
            default = client.get_default_redirect_uri()
            if "openid" in (params.get("scope") or "").split() or default is None:
                raise InvalidRedirectUri()
            return client, default
        if not client.check_redirect_uri(uris[0]):
            raise InvalidRedirectUri()
        return client, uris[0]

    # --- authorize -------------------------------------------------------------------------------

    def authorize(self, params: MultiDict[str, str]) -> Response:
        """Authorization endpoint, GET or POST (OIDC Core 3.1.2.1)."""
        client, redirect_uri = self.trusted(params)
        flat = params.to_dict(flat=True)
        answers: list[Response] = []
        try:
            demand, validated = self._validate(client, params, flat)

            def answer(uow: UnitOfWork, assertion: Assertion) -> None:
                # The SSO session answers: the code is issued on the unit of work that read the session.
                answers.append(self.respond(assertion.account, assertion.session, flat, ask_consent=demand.consent,
                                            passive=demand.passive, validated=validated, uow=uow))

            outcome = self.services.flow.begin(
                Client(self.name, client.client_id, client.record.name), {"params": flat}, browser_id(),
                sso_token(self.services.settings), force_authn=demand.force_authn, passive=demand.passive,
                on_answer=answer)
        except OAuth2Error as error:
            return self.error(error, redirect_uri, flat.get("state"))
        except AuthnFailed as failed:
            return self.error(oauth_error(failed.failure, redirect_uri, flat.get("state")), redirect_uri,
                              flat.get("state"))
        if isinstance(outcome, Assertion):
            return answers[0]
        hint = flat.get("login_hint", "")[:64]
        target = url_for("login.login_page", request_id=outcome.id)
        return redirect(target + ("?" + urlencode({"login_hint": hint}) if hint else ""), 303)

    def _validate(self, client: OidcClient, params: MultiDict[str, str],
                  flat: dict[str, str]) -> tuple[LoginDemand, Validated]:
        """Check the request (authlib: response_type, redirect_uri, scope, PKCE, nonce; then prompt, max_age,
        id_token_hint); the validated grant and redirect URI are kept to answer at once with an SSO session."""
        if any(len(v) > MAX_PARAM_LENGTH or "\x00" in v for v in flat.values()):
            raise InvalidRequestError("A parameter is too long or holds a NUL character.")
        for name in SINGLE_PARAMS:
            if len(params.getlist(name)) > 1:
                raise InvalidRequestError(f"Multiple '{name}' parameters.")
        if "request" in params:
            raise RequestNotSupportedError()
        if "request_uri" in params:
            raise RequestURINotSupportedError()  # never fetched (no SSRF, SECURITY O17)
        # No transaction: the client comes from memory (``query_client``) and nothing else is read.
        oauth_request = self.oauth_request(flat)
        grant = self.server.get_authorization_grant(oauth_request)
        redirect_uri = grant.validate_authorization_request()
        prompts = parse_prompt(flat.get("prompt"))
        max_age = parse_max_age(flat.get("max_age"))
        too_old = mismatch = False
        if max_age is not None or flat.get("id_token_hint"):
            current = self.services.flow.current_session(sso_token(self.services.settings))
            session, account = current if current else (None, None)
            too_old = max_age_exceeded(max_age, session.authn_instant if session else None, self.server.now())
            if flat.get("id_token_hint"):
                claims = self.server.verify_id_token_hint(flat["id_token_hint"])
                mismatch = account is None or claims["sub"] != client.subject_for(
                    self.services.settings.pairwise_salt, account.public_id)
        demand = login_demand(prompts, too_old, mismatch)
        if demand.passive and (too_old or mismatch):
            raise LoginRequiredError()
        return demand, (grant, redirect_uri)

    def oauth_request(self, params: dict[str, str]) -> StoredRequest:
        """An authlib request from the stored parameters (they survive the login page)."""
        return StoredRequest(self.server.url("/oidc/authorize"), params)

    def resume(self, request_id: str) -> Response:
        """The login page is done: answer the request it was for."""
        assertion = self.services.flow.resume(request_id, browser_id(), sso_token(self.services.settings))
        params = assertion.request.payload.get("params", {})
        demand = login_demand(parse_prompt(params.get("prompt")), False, False)
        return self.respond(assertion.account, assertion.session, params, ask_consent=demand.consent)

    # --- answer ----------------------------------------------------------------------------------

    def subject(self, client: OidcClient, account: Account, session: SsoSession) -> Subject:
        """Who the client is told about: its ``sub``, the session's ``sid``, ``auth_time``, ``acr``, ``amr``."""
        method = AuthMethod(session.auth_method)
        return Subject(account_id=account.id, sub=client.subject_for(self.services.settings.pairwise_salt, account.public_id),
                       session_id=session.id, sid=session.public_id, auth_time=session.authn_instant,
                       acr=ACR[method], amr=AMR[method])

    def respond(self, account: Account, session: SsoSession, params: dict[str, str], *, ask_consent: bool = False,
                passive: bool = False, consented: bool = False, validated: Validated | None = None,
                uow: UnitOfWork | None = None) -> Response:
        """Issue the code (or ask consent first); record the client as a participant of the session.

        ``validated``: authlib's grant and redirect URI as ``_validate`` left them a moment ago in this request
        (the SSO session answered at once), not validated a second time. After the login or consent page the
        stored parameters are validated again (``create_authorization_response``). ``uow``: the unit of work
        the session was read in (the code is written there), else one of its own."""
        server = self.server
        client = server.query_client(params.get("client_id"))
        if client is None:
            raise UnknownClient()
        scopes = allowed_scopes((params.get("scope") or "").split(), client.record.scopes)
        if not consented and self._needs_consent(client, account, scopes, ask_consent):
            if passive:
                return self.error(CONSENT_REQUIRED(), self.redirect_uri_for(client, params), params.get("state"))
            pending = PendingRecord(id=secrets.token_urlsafe(24), params=params, account_id=account.id,
                                    session_id=session.id, fresh=False,
                                    expires_at=server.now() + server.policy.consent_ttl)
            with server.transaction() as uow:
                uow.oidc.add_pending(pending, browser_hash(browser_id()))  # type: ignore[attr-defined]
                uow.commit()
            return redirect(url_for("oidc.consent", pending_id=pending.id), 303)
        subject = self.subject(client, account, session)
        if validated is None:
            oauth_request = self.oauth_request(params)
            grant = server.get_authorization_grant(oauth_request)
            response: Response = server.create_authorization_response(oauth_request, grant_user=subject, grant=grant)
        else:
            # authlib's create_authorization_response, hooks included (``iss``, RFC 9207), without its second
            # validation of the same request.
            grant, redirect_uri = validated
            oauth_request = grant.request
            server.execute_hook("before_create_authorization_response", oauth_request, grant_user=subject,
                                grant=grant)
            try:
                response = server.handle_response(*grant.create_authorization_response(redirect_uri, subject))
            except OAuth2Error as error:
                error.state = oauth_request.payload.state
                response = server.handle_error_response(oauth_request, error)
            grant.execute_hook("after_authorization_response", response)
            server.execute_hook("after_create_authorization_response", response)
        new_code = getattr(oauth_request, "new_code", None)
        if new_code is not None:
            # The grant, the code and the session participant (for single logout) in one statement.
            server.issue_code(new_code, uow)
        return self._status(response)

    def _needs_consent(self, client: OidcClient, account: Account, scopes: list[str], ask: bool) -> bool:
        """First-party school apps are pre-consented; others need a stored consent covering the scopes."""
        if client.record.first_party:
            return False
        if ask:
            return True
        with self.server.transaction():  # never cached: a withdrawal must count at once in every worker
            given = self.server.store.consent(account.id, client.client_id)
        return given is None or not set(scopes) <= set(given)

    @staticmethod
    def redirect_uri_for(client: OidcClient, params: dict[str, str]) -> str:
        """Where a stored request is answered: its ``redirect_uri``, checked when it arrived, or the default."""
        return params.get("redirect_uri") or client.get_default_redirect_uri() or ""

    def refuse(self, client: OidcClient, params: dict[str, str]) -> Response:
        """The person declined consent: ``access_denied`` at the registered redirect_uri."""
        return self.error(AccessDeniedError(), self.redirect_uri_for(client, params), params.get("state"))

    def error(self, error: OAuth2Error, redirect_uri: str, state: str | None) -> Response:
        """An authorization error at the registered redirect_uri, with ``state`` and ``iss`` (RFC 9207)."""
        error.redirect_uri = redirect_uri
        error.state = state
        status, _, headers = error()
        location = add_params_to_uri(dict(headers)["Location"], {"iss": self.server.issuer})
        return self._status(Response("", status=status, headers={"Location": location}))

    @staticmethod
    def _status(response: Response) -> Response:
        """303 after a POST so nothing is re-posted to the client (RFC 9700 §4.12)."""
        if response.status_code == 302 and request.method == "POST":
            response.status_code = 303
        return response

    # --- consent ---------------------------------------------------------------------------------

    def consent_context(self, pending_id: str, bhash: str, token: str | None) -> tuple[PendingRecord, OidcClient, Account, SsoSession]:
        """The request waiting on the consent page, for this browser and its still-open SSO session."""
        current = self.services.flow.current_session(token)
        with self.server.transaction():
            pending = self.server.store.pending(pending_id, bhash, self.server.now())
            client = self.server.query_client(pending.params.get("client_id")) if pending else None
        if pending is None or client is None or current is None or current[0].id != pending.session_id:
            raise AuthnRequestExpired()
        return pending, client, current[1], current[0]

    def decide(self, pending: PendingRecord, client: OidcClient, account: Account, session: SsoSession, *,
               accepted: bool) -> Response:
        """Record the person's answer (stored, so the account page can list and withdraw it)."""
        with self.server.transaction() as uow:
            if not self.server.store.use_pending(pending.id, self.server.now()):
                raise AuthnRequestExpired()
            if accepted:
                scopes = allowed_scopes((pending.params.get("scope") or "").split(), client.record.scopes)
                self.server.store.save_consent(account.id, client.client_id, scopes, self.server.now())
            uow.commit()
        if not accepted:
            return self.refuse(client, pending.params)
        return self.respond(account, session, pending.params, consented=True)
