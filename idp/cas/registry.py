"""The CAS service registry: which ``service`` URLs may receive tickets (CAS 3.0 §2.2.1, SECURITY C01/C02/C15).

A candidate ``service`` is first checked and normalised by the one URL-safety parse of ``idp.core.urls``
(controls, backslashes, userinfo, bad hosts, encoded slashes and dot-segments refused; scheme and host
lower-cased, IDNA host, default port dropped, unreserved percent-escapes decoded, the others upper-cased), then
``idp.core.urls.transport_allowed`` decides the scheme (``https``; ``http`` on a loopback host, or on any host
when ``[server] development`` is true). Here every ``ticket`` query parameter is removed (a service URL that
already carries a ticket gets exactly one new one, CAS 3.0 Appendix B) and the fragment kept apart (browsers
never send it; it is kept only for the redirect). Only the normalised form is matched.

A registration is on one scheme and one host (compared exactly, never by pattern), with a pattern that is
``exact`` (the normalised URL must be equal), ``prefix`` (the normalised URL starts with the normalised
pattern, at a ``/``, ``?`` or end boundary) or ``regex`` (``re.fullmatch``: anchored ``^…$`` whatever the
operator wrote, applied to the normalised URL, after the host check). As no normalised URL has a dot-segment,
``https://host/app/../admin/`` can never match a prefix ``https://host/app/``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from idp.core import urls
from idp.core.i18n import N_
from idp.errors import UntrustedRequest
from idp.storage.cas_store import CasServiceRecord
from idp.storage.cas_tickets import SqlCasTickets

MAX_SERVICE_LENGTH = urls.MAX_URL_LENGTH
MATCH_KINDS = ("exact", "prefix", "regex")


class UnknownService(UntrustedRequest):
    """The ``service`` is not registered (or not a URL we accept): a page, never a redirect."""

    code = "cas_unknown_service"
    description = N_("Cette application n'est pas autorisée à utiliser ce service d'authentification. "
                     "Aucune connexion n'a été transmise. Retournez sur le site de l'application ; si le problème "
                     "persiste, signalez-le à votre établissement.")


class InvalidServiceUrl(ValueError):
    """A candidate service URL that cannot be normalised (the reason is for logs and operators)."""


@dataclass(frozen=True)
class ServiceUrl:
    """A parsed candidate: its normalised form (what tickets are bound to) and the fragment to give back."""

    scheme: str
    host: str  # host[:port], normalised
    normalised: str
    fragment: str = ""

    def with_ticket(self, ticket: str) -> str:
        """The redirect target: the normalised URL with ``ticket`` appended once, fragment last (Appendix B)."""
        joiner = "&" if "?" in self.normalised else "?"
        target = f"{self.normalised}{joiner}ticket={ticket}" if ticket else self.normalised
        return f"{target}#{self.fragment}" if self.fragment else target

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` (for the CSP ``form-action`` of the POST response)."""
        return f"{self.scheme}://{self.host}"


def _strip_ticket(query: str) -> str:
    return "&".join(p for p in query.split("&") if p and p.split("=", 1)[0] != "ticket")


def parse_service(raw: str, *, allow_http: bool) -> ServiceUrl:
    """Parse and normalise a candidate service URL, or raise ``InvalidServiceUrl``.

    ``allow_http`` is the development mode of ``idp.core.urls.transport_allowed``."""
    try:
        url = urls.parse_url(raw)
    except urls.UnsafeUrl as exc:
        raise InvalidServiceUrl(str(exc)) from None
    if not urls.transport_allowed(url, development=allow_http):
        raise InvalidServiceUrl(f"schéma {url.scheme!r} refusé hors de la boucle locale (https attendu)")
    query = _strip_ticket(url.query)
    normalised = f"{url.origin}{url.path}" + (f"?{query}" if query else "")
    return ServiceUrl(scheme=url.scheme, host=url.authority, normalised=normalised, fragment=url.fragment)


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@functools.lru_cache(maxsize=512)
def _stored_pattern(pattern: str) -> str:
    """An ``exact``/``prefix`` pattern in today's normalised form: a row stored before ``idp.core.urls`` (a
    ``%7e``, a lower-case escape) still matches its equivalent candidates; an unsafe one ("") matches nothing."""
    try:
        return parse_service(pattern, allow_http=True).normalised  # the scheme was checked at registration
    except InvalidServiceUrl:
        return ""


def matches(service: CasServiceRecord, url: ServiceUrl) -> bool:
    """Whether a normalised candidate belongs to this registration (scheme and host first, exactly)."""
    if not service.enabled or url.scheme != service.scheme or url.host != service.host:
        return False
    if service.match == "exact":
        return url.normalised == _stored_pattern(service.pattern)
    if service.match == "prefix":
        prefix = _stored_pattern(service.pattern)
        if not prefix or not url.normalised.startswith(prefix):
            return False
        rest = url.normalised[len(prefix):]
        return not rest or prefix.endswith(("/", "?", "&")) or rest[0] in "/?&"
    if service.match == "regex":
        return _compiled(service.pattern).fullmatch(url.normalised) is not None
    return False


def find_service(store: SqlCasTickets, url: ServiceUrl) -> CasServiceRecord | None:
    """The first registration (oldest first) that matches a normalised candidate on its host."""
    for service in store.services_on(url.scheme, url.host):
        if matches(service, url):
            return service
    return None


def resolve(store: SqlCasTickets, raw: str, *, allow_http: bool) -> tuple[ServiceUrl, CasServiceRecord]:
    """Parse a ``service`` parameter and find its registration, or raise ``UnknownService``."""
    try:
        url = parse_service(raw, allow_http=allow_http)
    except InvalidServiceUrl as exc:
        raise UnknownService() from exc
    service = find_service(store, url)
    if service is None:
        raise UnknownService()
    return url, service


def registration_for(pattern: str, match: str, *, allow_http: bool) -> tuple[str, str, str]:
    """Check an operator's pattern; return ``(scheme, host, stored pattern)`` or raise ``InvalidServiceUrl``.

    ``exact`` and ``prefix`` patterns are URLs, stored normalised. A ``regex`` must begin with a literal
    ``https://host[:port]/`` (optionally after ``^``): the host is taken from it and compared exactly at
    match time, so a loose regex can never open another host.
    """
    if match not in MATCH_KINDS:
        raise InvalidServiceUrl(f"unknown match kind {match!r}")
    if match in ("exact", "prefix"):
        url = parse_service(pattern, allow_http=allow_http)
        if url.fragment:
            raise InvalidServiceUrl("a fragment is never part of a service URL")
        return url.scheme, url.host, url.normalised
    body = pattern[1:] if pattern.startswith("^") else pattern
    body = body[:-1] if body.endswith("$") and not body.endswith("\\$") else body
    head = re.match(r"^(https?)://((?:[a-z0-9-]|\\\.)+(?::[0-9]{1,5})?)/", body)
    if head is None:
        raise InvalidServiceUrl("a regex must start with a literal scheme://host/")
    literal_host = head.group(2).replace("\\.", ".")
    base = parse_service(f"{head.group(1)}://{literal_host}/", allow_http=allow_http)
    try:
        re.compile(body)
    except re.error as exc:
        raise InvalidServiceUrl(f"invalid regex: {exc}") from None
    return base.scheme, base.host, body
