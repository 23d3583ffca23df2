"""The ``/saml`` routes: metadata, SSO (HTTP-Redirect and HTTP-POST), resume after login, IdP-initiated
entry, single logout. Views parse, call the ``SamlIdp``, and render or redirect."""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

from flask import Blueprint, Response, current_app, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from saml2.samlp import STATUS_NO_AUTHN_CONTEXT, STATUS_RESPONDER

from idp.core.authn.flow import Client
from idp.core.authn.model import Assertion
from idp.errors import AuthnFailed, AuthnRequestExpired
from idp.saml import checks
from idp.saml.errors import SamlInvalidRequest, SamlRequestDenied, SamlUnknownServiceProvider
from idp.saml.idp import PostForm, Prepared, SamlIdp
from idp.saml.mapping import saml_status
from idp.storage.saml_store import SqlSamlStore
from idp.web.security import browser_id, sso_token
from idp.wiring import Services

bp = Blueprint("saml", __name__, url_prefix="/saml")


def _services() -> Services:
    return current_app.extensions["idp"]  # type: ignore[no-any-return]


def _idp() -> SamlIdp:
    return _services().frontends["saml"]  # type: ignore[return-value]


def render_post(form: PostForm) -> Response:
    """The autopost page (Bindings 3.5.4): a visible "Continuer" button, a nonce'd one-line auto-submit,
    and a CSP whose ``form-action`` allows only the SP's origin."""
    nonce = secrets.token_urlsafe(16)
    response = make_response(render_template("saml_post.html", action=form.action, field=form.field,
                                             message=form.message, relay_state=form.relay_state,
                                             sp_name=form.sp_name, nonce=nonce))
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'; "
        f"form-action {form.origin}; script-src 'nonce-{nonce}'"
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/metadata")
def metadata() -> ResponseReturnValue:
    """Our signed metadata (entityID = this URL)."""
    document = _idp().publisher.document(_services().clock.now())
    response = make_response(document)
    response.headers["Content-Type"] = "application/samlmetadata+xml"
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def _check(inbound: checks.Inbound, endpoint: str) -> tuple[checks.CheckedAuthnRequest, str] | Response:
    """Run the AuthnRequest checks (the SP's row from the worker's cache; the replay record is written with
    the answer or when the request is parked)."""
    services, idp = _services(), _idp()
    now = services.clock.now()
    try:
        checked, metadata = idp.checker(None, now).check(inbound, endpoint, now)
    except SamlRequestDenied as denied:
        found = idp.service_provider(None, denied.sp.entity_id, now)  # type: ignore[attr-defined]
        refused = checks.CheckedAuthnRequest(
            sp=denied.sp.entity_id, request_id=denied.request_id, acs_url=denied.acs,  # type: ignore[attr-defined]
            relay_state=denied.relay_state, force_authn=False, passive=False,  # type: ignore[attr-defined]
            nameid_format=None, allow_create=True, signed=False)
        return render_post(idp.deny(refused, found[0].name if found else refused.sp, denied.status,
                                    denied.sub_status, denied.message))
    found = idp.service_provider(None, metadata.entity_id, now)
    return checked, found[0].name if found else checked.sp


def _consume(checked: checks.CheckedAuthnRequest) -> checks.CheckedAuthnRequest:
    """Record the request ID before it waits for a login or gets an error status (replay cache, S14)."""
    services = _services()
    if checked.replay_key:
        with services.uow() as uow:
            _idp().consume(SqlSamlStore(uow.session), checked, services.clock.now())
            uow.commit()
    return dataclasses.replace(checked, replay_key="")


def _begin(checked: checks.CheckedAuthnRequest, sp_name: str) -> ResponseReturnValue:
    """Hand the request to the common login; answer at once when the SSO session may."""
    services, idp = _services(), _idp()
    prepared: list[Prepared] = []

    def on_answer(uow: Any, assertion: Assertion) -> None:
        # Answered from the SSO session: replay record and participant commit with the session lookup.
        if not idp.needs_fresh_login(assertion, checked):
            prepared.append(idp.prepare(uow, assertion, checked, consume=True))

    try:
        outcome = services.flow.begin(Client("saml", checked.sp, sp_name), checked.payload(), browser_id(),
                                      sso_token(services.settings), force_authn=checked.force_authn,
                                      passive=checked.passive, on_answer=on_answer)
        if isinstance(outcome, Assertion) and not prepared:
            # The session's authentication context is not one the SP accepts; a password login is.
            outcome = services.flow.begin(Client("saml", checked.sp, sp_name), checked.payload(), browser_id(),
                                          sso_token(services.settings), force_authn=True, passive=False)
    except AuthnFailed as exc:
        status, sub_status = saml_status(exc.failure)
        return render_post(idp.deny(_consume(checked), sp_name, status, sub_status))
    if isinstance(outcome, Assertion):
        return render_post(idp.finish(prepared[0]))
    if not idp.login_page_satisfies(checked):
        return render_post(idp.deny(_consume(checked), sp_name, STATUS_RESPONDER, STATUS_NO_AUTHN_CONTEXT))
    _consume(checked)
    return redirect(url_for("login.login_page", request_id=outcome.id), 303)


@bp.get("/sso/redirect")
def sso_redirect() -> ResponseReturnValue:
    """SP-initiated SSO, HTTP-Redirect binding (signature, if any, over the raw query)."""
    idp = _idp()
    inbound = checks.decode_redirect(request.query_string, "SAMLRequest", idp.config)
    result = _check(inbound, idp.config.url("/saml/sso/redirect"))
    if isinstance(result, Response):
        return result
    return _begin(*result)


@bp.post("/sso/post")
def sso_post() -> ResponseReturnValue:
    """SP-initiated SSO, HTTP-POST binding: checked here, then a 303 to a same-site GET (SECURITY S28)."""
    services, idp = _services(), _idp()
    value = request.form.get("SAMLRequest")
    if not value:
        raise SamlInvalidRequest()
    inbound = checks.decode_post(value, request.form.get("RelayState"))
    result = _check(inbound, idp.config.url("/saml/sso/post"))
    if isinstance(result, Response):
        return result
    checked, sp_name = result
    handle = secrets.token_urlsafe(32)
    with services.uow() as uow:
        store = SqlSamlStore(uow.session)
        idp.consume(store, checked, services.clock.now())
        parked = dataclasses.replace(checked, replay_key="")
        store.add_pending(handle, {"req": parked.payload(), "name": sp_name},
                          services.clock.now() + idp.config.pending_ttl)
        uow.commit()
    return redirect(url_for("saml.sso_continue", handle=handle), 303)


@bp.get("/sso/continue/<handle>")
def sso_continue(handle: str) -> ResponseReturnValue:
    """The GET after a POSTed AuthnRequest: the SameSite=Lax SSO cookie is sent again here."""
    services = _services()
    with services.uow() as uow:
        pending = SqlSamlStore(uow.session).take_pending(handle, services.clock.now())
        uow.commit()
    if pending is None:
        raise AuthnRequestExpired()
    return _begin(checks.CheckedAuthnRequest.from_payload(pending["req"]), pending["name"])


@bp.get("/resume/<request_id>")
def resume(request_id: str) -> ResponseReturnValue:
    """After the login page: answer the request it was for (single use)."""
    services = _services()
    assertion = services.flow.resume(request_id, browser_id(), sso_token(services.settings))
    if assertion.request.protocol != "saml":
        raise AuthnRequestExpired()
    checked = checks.CheckedAuthnRequest.from_payload(assertion.request.payload)
    return render_post(_idp().answer(assertion, checked))


@bp.get("/init")
def idp_initiated() -> ResponseReturnValue:
    """IdP-initiated ("unsolicited") SSO, for SPs that allow it; the ACS is still the one in metadata (S22)."""
    services, idp = _services(), _idp()
    entity_id = request.args.get("sp", "")
    relay_state = request.args.get("RelayState")
    if relay_state is not None and len(relay_state.encode("utf-8")) > idp.config.relay_state_max_bytes:
        raise SamlInvalidRequest("Requête invalide : le paramètre RelayState est trop long.")
    with services.uow() as uow:
        found = idp.service_provider(SqlSamlStore(uow.session), entity_id, services.clock.now())
    if found is None or not found[0].allow_idp_initiated:
        raise SamlUnknownServiceProvider("Ce service n'accepte pas les connexions ouvertes depuis ce portail.")
    row, metadata = found
    acs = metadata.default_acs()
    if acs is None:
        raise SamlUnknownServiceProvider()
    checked = checks.CheckedAuthnRequest(sp=row.entity_id, request_id="", acs_url=acs.location,
                                         relay_state=relay_state, force_authn=False, passive=False,
                                         nameid_format=None, allow_create=True, signed=False)
    return _begin(checked, row.name)


# --- single logout ---------------------------------------------------------------------------------------


@bp.get("/slo/redirect")
def slo_redirect() -> ResponseReturnValue:
    """Single logout, HTTP-Redirect binding: a LogoutRequest from an SP, or a LogoutResponse in our chain."""
    idp = _idp()
    param = "SAMLResponse" if b"SAMLResponse=" in request.query_string else "SAMLRequest"
    inbound = checks.decode_redirect(request.query_string, param, idp.config)
    return idp.slo.receive(inbound, idp.config.url("/saml/slo/redirect"))


@bp.post("/slo/post")
def slo_post() -> ResponseReturnValue:
    """Single logout, HTTP-POST binding."""
    idp = _idp()
    value = request.form.get("SAMLRequest") or request.form.get("SAMLResponse")
    if not value:
        raise SamlInvalidRequest()
    inbound = checks.decode_post(value, request.form.get("RelayState"))
    return idp.slo.receive(inbound, idp.config.url("/saml/slo/post"))


@bp.get("/slo/next/<chain_id>")
def slo_next(chain_id: str) -> ResponseReturnValue:
    """The next step of a logout chain: the next SP to tell, or the end."""
    return _idp().slo.next(chain_id)
