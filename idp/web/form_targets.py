"""Where a page's forms may send the browser: the CSP ``form-action`` origins beyond our own (SECURITY S31).

Chromium applies ``form-action`` to every redirect that follows a form submission (CSP Level 3 §6.4.3), so
``POST /login/<id>`` → 303 ``/cas/resume/<id>`` → 302 to the service is blocked under ``form-action 'self'``.
A page that belongs to a pending authentication request therefore allows exactly the origin of the place its
answer goes to, as registered (the CAS service, the OIDC ``redirect_uri``, the SAML ACS), and a logout
confirmation the origins its chain visits (a registered ``post_logout_redirect_uri``, the SAML SPs' logout
endpoints, the upstream provider's ``end_session``). The front-ends say which registered URLs those are
(``answer_targets``, ``services.extras["logout_targets"]``); this module alone turns them into origins and
hands them to ``idp.web.security`` — a page with nothing pending keeps ``form-action 'self'``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from flask import current_app

from idp.core.authn.model import AuthnRequest, SsoSession
from idp.errors import IdpError
from idp.web.security import allow_form_targets, browser_id

log = logging.getLogger("idp.web")

#: What may appear in ``form-action`` (CSP3 §2.3.1 ``host-source`` with a scheme): no path, no wildcard, no
#: quote, space or semicolon that could end the directive.
_ORIGIN = re.compile(r"https?://[a-z0-9.-]+(?::[0-9]{1,5})?|https?://\[[0-9a-f:.]+\](?::[0-9]{1,5})?")


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL (default port left out), or None for anything else."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host or "@" in parts.netloc:
        return None
    host = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}[scheme]
    origin = f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")
    return origin if _ORIGIN.fullmatch(origin) else None


def allow_urls(urls: Iterable[str]) -> None:
    """This page's forms may end at these registered URLs: their origins join ``form-action``."""
    origins = [origin for url in urls if (origin := origin_of(url))]
    if origins:
        allow_form_targets(origins)


def allow_answer_to(pending: AuthnRequest | str | None) -> None:
    """This page belongs to a pending request (or its id): its forms may end where the request is answered."""
    services = current_app.extensions["idp"]
    if isinstance(pending, str):
        if not pending:
            return
        try:
            pending = services.flow.pending(pending, browser_id())
        except IdpError:  # expired or foreign: its forms end on our own pages
            return
    if pending is None:
        return
    frontend = services.frontends.get(pending.protocol)
    targets = getattr(frontend, "answer_targets", None)
    if targets is not None:
        allow_urls(targets(pending))


def allow_logout_of(session: SsoSession | None, *registered: str, front_channel: bool = False) -> None:
    """A logout confirmation: its answer may visit what the session's logout visits — the upstream provider
    (``extras["logout_targets"]``), with ``front_channel`` the SAML SPs of ``/logout``'s chain too
    (``extras["logout_chain_targets"]``) — and ``registered`` (an address already checked against a
    registration, e.g. an OIDC ``post_logout_redirect_uri``)."""
    urls = list(registered)
    if session is not None:
        extras = current_app.extensions["idp"].extras
        providers = [*extras.get("logout_targets", []), *(extras.get("logout_chain_targets", []) if front_channel
                                                           else [])]
        for provider in providers:
            try:
                urls.extend(provider(session))
            except IdpError:  # the page still renders; the chain then stops on our own pages
                log.warning("logout targets not computed", exc_info=True)
    allow_urls(urls)
