"""Logout: RP-initiated (OIDC RP-Initiated Logout 1.0), back-channel (OIDC Back-Channel Logout 1.0), and
the single-logout hook every protocol's logout calls.

Ending an SSO session revokes every OIDC grant born of it (tokens die at once) and sends a logout token to
each participating client that registered a ``backchannel_logout_uri``, from a small background pool with
short timeouts: a slow client never holds up the person's logout.
"""

from __future__ import annotations

import logging
import secrets
import threading
import urllib.parse
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from authlib.oauth2.rfc6749.errors import OAuth2Error
from flask import current_app, redirect, render_template, request
from werkzeug.wrappers import Response

from idp.core import urls
from idp.core.authn.model import SsoSession
from idp.oidc.server import OidcServer
from idp.web.form_targets import allow_logout_of
from idp.web.security import check_csrf, clear_sso_cookie, client_ip, sso_token
from idp.wiring import Services

log = logging.getLogger("idp.oidc.logout")

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
#: RP-initiated logout parameters carried through the confirmation page.
LOGOUT_PARAMS = ("id_token_hint", "post_logout_redirect_uri", "state", "client_id", "logout_hint", "ui_locales")


class OidcLogout:
    """Single logout towards OIDC clients, and the RP-initiated logout endpoint."""

    def __init__(self, services: Services, server: OidcServer, max_workers: int = 4) -> None:
        self.services = services
        self.server = server
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="oidc-logout")
        self._pending: set[Future[bool]] = set()
        self._lock = threading.Lock()

    # --- single logout (hook) --------------------------------------------------------------------

    def session_ended(self, session: SsoSession) -> None:
        """The hook in ``services.extras["logout_hooks"]``: revoke the session's grants, notify clients."""
        server = self.server
        targets: dict[str, tuple[str, dict[str, Any]]] = {}
        with server.transaction() as uow:
            uow.oidc.revoke_grants_of_session(session.id, server.now())  # type: ignore[attr-defined]
            for protocol, client_id, data in uow.sessions.participants(session.id):
                if protocol != "oidc" or client_id in targets:
                    continue
                client = uow.oidc.client(client_id)  # type: ignore[attr-defined]
                if client is not None and client.enabled and client.backchannel_logout_uri:
                    targets[client_id] = (client.backchannel_logout_uri, data)
            uow.commit()
        for client_id, (uri, data) in targets.items():
            token = self.logout_token(client_id, str(data.get("sub", "")), str(data.get("sid", session.public_id)))
            self._submit(client_id, uri, token)

    def logout_token(self, client_id: str, sub: str, sid: str) -> str:
        """A logout token (Back-Channel Logout 1.0 §2.4): ``events``, ``sid``, ``sub``, ``jti``; never ``nonce``."""
        now = int(self.server.now().timestamp())
        claims = {"iss": self.server.issuer, "aud": client_id, "iat": now,
                  "exp": now + int(self.server.policy.logout_token_ttl.total_seconds()),
                  "jti": secrets.token_urlsafe(16), "events": {BACKCHANNEL_EVENT: {}}, "sid": sid}
        if sub:
            claims["sub"] = sub
        return self.server.sign(claims, typ="logout+jwt")

    def _submit(self, client_id: str, uri: str, token: str) -> None:
        future = self._pool.submit(self._post, client_id, uri, token)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[bool]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _post(self, client_id: str, uri: str, token: str) -> bool:
        body = urllib.parse.urlencode({"logout_token": token}).encode()
        req = urllib.request.Request(uri, data=body, method="POST",  # noqa: S310 - registered https URI
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(req, timeout=self.server.policy.backchannel_timeout_seconds) as answer:  # noqa: S310
                status = int(answer.status)
                ok = 200 <= status < 300
        except OSError as exc:
            log.warning("back-channel logout to %s failed: %s", client_id, type(exc).__name__)
            return False
        if not ok:
            log.warning("back-channel logout to %s answered %s", client_id, status)
        return ok

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait for the notifications under way (tests, shutdown)."""
        with self._lock:
            pending = list(self._pending)
        wait(pending, timeout=timeout)

    # --- RP-initiated logout ---------------------------------------------------------------------

    def end_session(self) -> Response | str:
        """``end_session_endpoint`` (GET or POST): log out at once for a valid hint, else ask first."""
        params = {k: request.values[k] for k in LOGOUT_PARAMS if request.values.get(k)}
        confirmed = request.method == "POST" and "confirmer" in request.form
        if confirmed:
            check_csrf()
        validated = self._validate()
        current = self.services.flow.current_session(sso_token(self.services.settings))
        if current is None:
            return self._finish(validated, logged_out=False)
        session, account = current
        claims = validated.id_token_claims if validated else None
        if confirmed or (claims is not None and claims.get("sid") == session.public_id):
            return self._finish(validated, logged_out=True)
        allow_logout_of(session, *filter(None, [self._return_to(validated)]))
        return render_template("oidc_logout_confirm.html", account=account, params=params,
                               client_name=validated.client.record.name if validated and validated.client else "")

    def _validate(self) -> Any:
        """authlib's checks (hint signed by us, client, registered post_logout_redirect_uri) or None."""
        try:
            with self.server.transaction():
                return self.server.validate_endpoint_request("end_session", request._get_current_object())  # type: ignore[attr-defined]
        except OAuth2Error:
            return None  # forged or foreign hint, client mismatch: no redirect anywhere (SECURITY O24)

    @staticmethod
    def _return_to(validated: Any) -> str | None:
        """The registered ``post_logout_redirect_uri`` to go back to: only with a valid ``id_token_hint``
        (OIDC RP-Initiated Logout 1.0 §3)."""
        target = validated.redirect_uri if validated is not None and validated.id_token_claims else None
        if target and not urls.is_safe(request.values.get("post_logout_redirect_uri", "")):
            # authlib compared it with the registered URIs byte for byte; one registered before the URL-safety
            # rule (a dot-segment, an encoded slash) is still never followed (SECURITY C15, O24).
            log.warning("unsafe post_logout_redirect_uri not followed")
            return None
        return target

    def _finish(self, validated: Any, *, logged_out: bool) -> Response:
        services = self.services
        target = self._return_to(validated)
        if logged_out:
            ended = services.flow.logout(sso_token(services.settings), client_ip())
            if ended is not None:
                services.extras["logout_hooks"].run([ended])
                # A session opened through FranceConnect ends there too, then comes back to ``target`` (F08):
                # authlib has checked it against the client's registered post_logout_redirect_uris.
                for wrap in services.extras.get("logout_wrappers", []):
                    target = wrap(ended, target, registered=True) or target
        response = redirect(target, 303) if target else current_app.make_response(render_template("logged_out.html"))
        clear_sso_cookie(response, services.settings)
        return response
