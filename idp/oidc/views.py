"""The ``/oidc`` browser routes and discovery: each view parses the request and calls one front-end or server method.

The back-channel endpoints (token, UserInfo, revocation, introspection) are not Flask views: see
``idp.oidc.token_endpoint``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, render_template, request
from flask.typing import ResponseReturnValue

from idp.core.authn.flow import browser_hash
from idp.oidc.claims import CLAIMS_SUPPORTED, SCOPE_LABELS, SCOPES
from idp.oidc.config import ACR
from idp.oidc.frontend import OidcFrontend
from idp.oidc.logout import OidcLogout
from idp.oidc.mapping import OidcUntrusted
from idp.oidc.server import AUTH_METHODS, CONFIDENTIAL_METHODS
from idp.web.form_targets import allow_urls
from idp.web.security import browser_id, check_csrf, sso_token

bp = Blueprint("oidc", __name__)



def _frontend() -> OidcFrontend:
    return current_app.extensions["idp"].frontends["oidc"]  # type: ignore[no-any-return]


def discovery_document(frontend: OidcFrontend) -> dict[str, Any]:
    """OpenID Provider Metadata (Discovery 1.0 §3): only what this provider really does (SECURITY O23)."""
    server = frontend.server
    url = server.url
    return {
        "issuer": server.issuer,
        "authorization_endpoint": url("/oidc/authorize"),
        "token_endpoint": url("/oidc/token"),
        "userinfo_endpoint": url("/oidc/userinfo"),
        "jwks_uri": url("/oidc/jwks"),
        "end_session_endpoint": url("/oidc/logout"),
        "revocation_endpoint": url("/oidc/revoke"),
        "introspection_endpoint": url("/oidc/introspect"),
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": list(server.keys.algorithms()),
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256", "ES256"],
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": CONFIDENTIAL_METHODS,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": list(CLAIMS_SUPPORTED),
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": False,
        "authorization_response_iss_parameter_supported": True,
        "acr_values_supported": sorted(set(ACR.values())),
        "prompt_values_supported": ["none", "login", "consent"],
        "display_values_supported": ["page", "popup"],
        "ui_locales_supported": ["fr"],
        "claims_locales_supported": ["fr"],
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": False,
    }


def _public(response: Response) -> Response:
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/.well-known/openid-configuration")
def discovery() -> ResponseReturnValue:
    """Discovery document."""
    return _public(jsonify(discovery_document(_frontend())))


@bp.get("/oidc/jwks")
def jwks() -> ResponseReturnValue:
    """Public signing keys: next, active and previous (R10)."""
    return _public(jsonify(_frontend().server.keys.jwks()))


@bp.route("/oidc/authorize", methods=["GET", "POST"])
def authorize() -> ResponseReturnValue:
    """Authorization endpoint (GET query or POST form, OIDC Core 3.1.2.1)."""
    frontend = _frontend()
    return frontend.authorize(request.form if request.method == "POST" else request.args)


@bp.get("/oidc/resume/<request_id>")
def resume(request_id: str) -> ResponseReturnValue:
    """Back from the login page."""
    return _frontend().resume(request_id)


@bp.route("/oidc/consent/<pending_id>", methods=["GET", "POST"])
def consent(pending_id: str) -> ResponseReturnValue:
    """Third-party clients: the person sees the scopes in French and agrees or declines (ASVS 10.7)."""
    frontend = _frontend()
    pending, client, account, session = frontend.consent_context(pending_id, browser_hash(browser_id()),
                                                                 sso_token(frontend.services.settings))
    if request.method == "GET":
        scopes = [s for s in (pending.params.get("scope") or "").split() if s in client.record.scopes]
        allow_urls([frontend.redirect_uri_for(client, pending.params)])  # the decision goes there
        return render_template("oidc_consent.html", client=client.record, labels=SCOPE_LABELS,
                               scopes=list(dict.fromkeys(scopes)), pending_id=pending_id)
    check_csrf()
    return frontend.decide(pending, client, account, session, accepted=request.form.get("decision") == "accepter")


@bp.route("/oidc/logout", methods=["GET", "POST"])
def logout() -> ResponseReturnValue:
    """End-session endpoint (RP-Initiated Logout 1.0)."""
    handler: OidcLogout = current_app.extensions["idp"].extras["oidc_logout"]
    return handler.end_session()


@bp.errorhandler(OidcUntrusted)
def _untrusted(exc: OidcUntrusted) -> ResponseReturnValue:
    current_app.logger.info("oidc request refused: %s", exc.code)
    return render_template("oidc_error.html", title=exc.title, message=exc.description,
                           correlation_id=getattr(g, "correlation_id", "")), exc.http_status

