"""The ``/saml`` routes: metadata, SSO (HTTP-Redirect and HTTP-POST), resume after login, IdP-initiated
entry, single logout. Views parse, call the ``SamlIdp``, and render or redirect."""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
from typing import Any

from flask import Blueprint, Response, current_app, make_response, redirect, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from markupsafe import escape
from saml2.samlp import STATUS_NO_AUTHN_CONTEXT, STATUS_RESPONDER

from idp.core.authn.flow import Client
from idp.core.authn.model import Assertion, AuthnRequest
from idp.core.i18n import N_
from idp.errors import AuthnFailed, AuthnRequestExpired
from idp.saml import binding, checks
from idp.saml.errors import (
    RELAY_STATE_TOO_LONG,
    SamlInvalidRequest,
    SamlRequestDenied,
    SamlUnknownServiceProvider,
)
from idp.saml.idp import PostForm, Prepared, SamlIdp
from idp.saml.mapping import saml_status
from idp.storage.saml_store import SqlSamlStore
from idp.web.security import autopost_policy, browser_id, sso_token
from idp.wiring import Services

bp = Blueprint("saml", __name__, url_prefix="/saml")


@bp.record_once
def _portal_links(state: BlueprintSetupState) -> None:
    """« Mes services » opens the SPs that allow it through IdP-initiated SSO (``/saml/init``)."""
    state.app.jinja_env.globals["portal_sso_url"] = lambda entity_id: url_for("saml.idp_initiated", sp=entity_id)


def _services() -> Services:
    return current_app.extensions["idp"]  # type: ignore[no-any-return]


def _idp() -> SamlIdp:
    return _services().frontends["saml"]  # type: ignore[return-value]


#: The autopost page's variable parts, in ``saml_post.html`` as rendered once with these markers.
POST_SLOTS = ("sp_name", "action", "field", "message", "relay_state", "nonce")


_TEMPLATES = ("saml_post.html", "base.html")


def _template_stamp() -> tuple[int, ...]:
    """When the page's templates last changed (development: a pre-rendered page is checked against it)."""
    from idp import PROJECT_ROOT

    return tuple(os.stat(PROJECT_ROOT / "templates" / name).st_mtime_ns for name in _TEMPLATES)


def cached_post_page(idp: SamlIdp, script_root: str,
                     with_relay_state: bool) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The pre-rendered autopost page, if there is one still up to date."""
    entry = idp.post_pages.get(("saml_post", script_root, with_relay_state))
    if entry is None:
        return None
    page, stamp = entry
    if stamp is not None and stamp != _template_stamp():
        return None
    return page


def _post_page(with_relay_state: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``saml_post.html`` split around its variables: the literal parts and the slot between each two.

    The page is the same for every answer but for six escaped values, so Jinja renders it once per process
    (and script root) with unguessable markers in their place; each answer then only escapes its values
    with the same function Jinja's autoescaping uses (``markupsafe.escape``) and joins the parts: the same
    bytes without a Jinja rendering per login. Kept by the ``SamlIdp`` (one per application: product name,
    URLs); in development (templates reloaded) it is rendered again when one of its templates has changed.
    """
    idp = _idp()
    page = cached_post_page(idp, request.script_root, with_relay_state)
    if page is None:
        tag = secrets.token_hex(16)
        values: dict[str, Any] = {name: f"slot{tag}{name}end" for name in POST_SLOTS}
        if not with_relay_state:
            values["relay_state"] = None
        stamp = _template_stamp() if current_app.config["TEMPLATES_AUTO_RELOAD"] else None
        parts = re.split(f"slot{tag}({'|'.join(POST_SLOTS)})end", render_template("saml_post.html", **values))
        page = (tuple(parts[0::2]), tuple(parts[1::2]))
        idp.post_pages.put(("saml_post", request.script_root, with_relay_state), (page, stamp))
    return page


def assemble_post(page: tuple[tuple[str, ...], tuple[str, ...]], form: PostForm) -> tuple[str, str]:
    """The autopost page's HTML and its CSP: the values escaped into the pre-rendered page, a fresh nonce."""
    nonce = secrets.token_urlsafe(16)
    values = {"sp_name": form.sp_name, "action": form.action, "field": form.field, "message": form.message,
              "relay_state": form.relay_state, "nonce": nonce}
    literals, slots = page
    body = [literals[0]]
    for slot, literal in zip(slots, literals[1:], strict=True):
        body.append(escape(values[slot]))
        body.append(literal)
    return "".join(body), autopost_policy(form.origin, f"'nonce-{nonce}'")


def render_post(form: PostForm) -> Response:
    """The autopost page (Bindings 3.5.4): a visible "Continuer" button, a nonce'd one-line auto-submit,
    and a CSP whose ``form-action`` allows only the SP's origin."""
    body, csp = assemble_post(_post_page(form.relay_state is not None), form)
    response = current_app.response_class(body, mimetype="text/html")
    response.headers["Content-Security-Policy"] = csp
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


def check_request(services: Services, idp: SamlIdp, inbound: binding.Inbound,
                  endpoint: str) -> tuple[checks.CheckedAuthnRequest, str] | PostForm:
    """Run the AuthnRequest checks (the SP's row from the worker's cache; the replay record is written with
    the answer or when the request is parked): the checked request and the SP's name, or the signed refusal
    of a trusted request. Nothing is written here."""
    now = services.clock.now()
    try:
        checked, metadata = idp.checker(None, now).check(inbound, endpoint, now)
    except SamlRequestDenied as denied:
        found = idp.service_provider(None, denied.sp.entity_id, now)  # type: ignore[attr-defined]
        refused = checks.CheckedAuthnRequest(
            sp=denied.sp.entity_id, request_id=denied.request_id, acs_url=denied.acs,  # type: ignore[attr-defined]
            relay_state=denied.relay_state, force_authn=False, passive=False,  # type: ignore[attr-defined]
            nameid_format=None, allow_create=True, signed=False)
        return idp.deny(refused, found[0].name if found else refused.sp, denied.status, denied.sub_status,
                        denied.message)
    found = idp.service_provider(None, metadata.entity_id, now)
    return checked, found[0].name if found else checked.sp


def _consume(services: Services, idp: SamlIdp, checked: checks.CheckedAuthnRequest) -> checks.CheckedAuthnRequest:
    """Record the request ID before it waits for a login or gets an error status (replay cache, S14)."""
    if checked.replay_key:
        with services.uow() as uow:
            idp.consume(SqlSamlStore(uow.session), checked, services.clock.now())
            uow.commit()
    return dataclasses.replace(checked, replay_key="")


def decide(services: Services, idp: SamlIdp, checked: checks.CheckedAuthnRequest, sp_name: str, bid: str,
           token: str | None) -> PostForm | AuthnRequest:
    """Hand the request to the common login: the answer (or refusal) to post when the SSO session may
    answer at once, else the stored request the login page is for."""
    prepared: list[Prepared] = []

    def on_answer(uow: Any, assertion: Assertion) -> None:
        # Answered from the SSO session: replay record and participant commit with the session lookup.
        if not idp.needs_fresh_login(assertion, checked):
            prepared.append(idp.prepare(uow, assertion, checked, consume=True))

    try:
        outcome = services.flow.begin(Client("saml", checked.sp, sp_name), checked.payload(), bid, token,
                                      force_authn=checked.force_authn, passive=checked.passive,
                                      on_answer=on_answer)
        if isinstance(outcome, Assertion) and not prepared:
            # The session's authentication context is not one the SP accepts; a password login is.
            outcome = services.flow.begin(Client("saml", checked.sp, sp_name), checked.payload(), bid, token,
                                          force_authn=True, passive=False)
    except AuthnFailed as exc:
        status, sub_status = saml_status(exc.failure)
        return idp.deny(_consume(services, idp, checked), sp_name, status, sub_status)
    if isinstance(outcome, Assertion):
        return idp.finish(prepared[0])
    if not idp.login_page_satisfies(checked):
        return idp.deny(_consume(services, idp, checked), sp_name, STATUS_RESPONDER, STATUS_NO_AUTHN_CONTEXT)
    _consume(services, idp, checked)
    return outcome


def _respond(outcome: PostForm | AuthnRequest) -> ResponseReturnValue:
    """The autopost page, or the login page for a stored request."""
    if isinstance(outcome, PostForm):
        return render_post(outcome)
    return redirect(url_for("login.login_page", request_id=outcome.id), 303)


def _begin(checked: checks.CheckedAuthnRequest, sp_name: str) -> ResponseReturnValue:
    """Answer at once when the SSO session may, else send the browser to the login page."""
    services = _services()
    return _respond(decide(services, _idp(), checked, sp_name, browser_id(), sso_token(services.settings)))


@bp.get("/sso/redirect")
def sso_redirect() -> ResponseReturnValue:
    """SP-initiated SSO, HTTP-Redirect binding (Bindings 3.4; the signature, if any, over the raw query)."""
    services, idp = _services(), _idp()
    inbound = binding.decode_redirect(request.query_string, "SAMLRequest", idp.config)
    result = check_request(services, idp, inbound, idp.config.url("/saml/sso/redirect"))
    if isinstance(result, PostForm):
        return render_post(result)
    return _begin(*result)


@bp.post("/sso/post")
def sso_post() -> ResponseReturnValue:
    """SP-initiated SSO, HTTP-POST binding: checked here, then a 303 to a same-site GET (SECURITY S28)."""
    services, idp = _services(), _idp()
    value = request.form.get("SAMLRequest")
    if not value:
        raise SamlInvalidRequest()
    inbound = binding.decode_post(value, request.form.get("RelayState"))
    result = check_request(services, idp, inbound, idp.config.url("/saml/sso/post"))
    if isinstance(result, PostForm):
        return render_post(result)
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
        raise SamlInvalidRequest(RELAY_STATE_TOO_LONG)
    with services.uow() as uow:
        found = idp.service_provider(SqlSamlStore(uow.session), entity_id, services.clock.now())
    if found is None or not found[0].allow_idp_initiated:
        raise SamlUnknownServiceProvider(N_("Ce service n'accepte pas les connexions ouvertes depuis ce portail. "
                                            "Ouvrez-le depuis son propre site."))
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
    inbound = binding.decode_redirect(request.query_string, param, idp.config)
    return idp.slo.receive(inbound, idp.config.url("/saml/slo/redirect"))


@bp.post("/slo/post")
def slo_post() -> ResponseReturnValue:
    """Single logout, HTTP-POST binding."""
    idp = _idp()
    value = request.form.get("SAMLRequest") or request.form.get("SAMLResponse")
    if not value:
        raise SamlInvalidRequest()
    inbound = binding.decode_post(value, request.form.get("RelayState"))
    return idp.slo.receive(inbound, idp.config.url("/saml/slo/post"))


@bp.get("/slo/next/<chain_id>")
def slo_next(chain_id: str) -> ResponseReturnValue:
    """The next step of a logout chain: the next SP to tell, or the end."""
    return _idp().slo.next(chain_id)
