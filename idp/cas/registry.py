"""The CAS service registry: which ``service`` URLs may receive tickets (CAS 3.0 §2.2.1, SECURITY C01/C02).

A candidate ``service`` is first parsed, then normalised, and only the normalised form is matched:

1. refused outright: longer than 2048 characters, any character at or below U+0020 (spaces, CR, LF, TAB and
   other controls), DEL, a backslash, or a non-ASCII character outside the host; a scheme other than ``https`` (``http`` only when
   ``[server] development`` is true); userinfo (``user@``) in the authority; a host that is empty, contains
   ``%`` or anything but ``[a-z0-9.-]`` after lower-casing and IDNA encoding; an invalid port;
2. normalised: scheme and host lower-cased, host IDNA-encoded (``écoles.fr`` → ``xn--coles-bsa.fr``), the
   default port (443/80) dropped, an empty path becomes ``/``, every ``ticket`` query parameter removed (a
   service URL that already carries a ticket gets exactly one new one, CAS 3.0 Appendix B), the fragment
   removed (browsers never send it; it is kept only for the redirect); the rest of the path and query is
   kept byte for byte.

A registration is on one scheme and one host (compared exactly, never by pattern), with a pattern that is
``exact`` (the normalised URL must be equal), ``prefix`` (the normalised URL starts with the normalised
pattern, at a ``/``, ``?`` or end boundary) or ``regex`` (``re.fullmatch``: anchored ``^…$`` whatever the
operator wrote, applied to the normalised URL, after the host check).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from idp.errors import UntrustedRequest
from idp.storage.cas_store import CasServiceRecord, SqlCasStore
from idp.storage.cas_tickets import FastCasStore

MAX_SERVICE_LENGTH = 2048
MATCH_KINDS = ("exact", "prefix", "regex")
_HOST_RE = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$")
_DEFAULT_PORTS = {"https": 443, "http": 80}
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\]")


class UnknownService(UntrustedRequest):
    """The ``service`` is not registered (or not a URL we accept): a page, never a redirect."""

    code = "cas_unknown_service"
    description = ("Cette application n'est pas autorisée à utiliser ce service d'authentification. "
                   "Aucune connexion n'a été transmise. Si le problème persiste, signalez-le à votre "
                   "établissement.")


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
    """Parse and normalise a candidate service URL, or raise ``InvalidServiceUrl``."""
    if not raw or len(raw) > MAX_SERVICE_LENGTH:
        raise InvalidServiceUrl("empty or too long")
    if _FORBIDDEN.search(raw):
        raise InvalidServiceUrl("control character, space or backslash")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise InvalidServiceUrl(f"unparsable: {exc}") from None
    if not (parts.path + parts.query + parts.fragment).isascii():
        raise InvalidServiceUrl("non-ASCII path, query or fragment (must be percent-encoded)")
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and allow_http):
        raise InvalidServiceUrl(f"scheme {scheme!r} refused")
    if "@" in parts.netloc:
        raise InvalidServiceUrl("userinfo in authority")
    host = _normalise_host(parts.hostname or "")
    authority = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = parts.path or "/"
    query = _strip_ticket(parts.query)
    normalised = f"{scheme}://{authority}{path}" + (f"?{query}" if query else "")
    return ServiceUrl(scheme=scheme, host=authority, normalised=normalised, fragment=parts.fragment)


def _normalise_host(hostname: str) -> str:
    if not hostname or "%" in hostname:
        raise InvalidServiceUrl("bad host")
    try:
        host = hostname.lower().encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidServiceUrl("host is not a valid IDNA name") from None
    if not _HOST_RE.match(host) or ".." in host:
        raise InvalidServiceUrl("bad host")
    return host


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def matches(service: CasServiceRecord, url: ServiceUrl) -> bool:
    """Whether a normalised candidate belongs to this registration (scheme and host first, exactly)."""
    if not service.enabled or url.scheme != service.scheme or url.host != service.host:
        return False
    if service.match == "exact":
        return url.normalised == service.pattern
    if service.match == "prefix":
        prefix = service.pattern
        if not url.normalised.startswith(prefix):
            return False
        rest = url.normalised[len(prefix):]
        return not rest or prefix.endswith(("/", "?", "&")) or rest[0] in "/?&"
    if service.match == "regex":
        return _compiled(service.pattern).fullmatch(url.normalised) is not None
    return False


def find_service(store: SqlCasStore | FastCasStore, url: ServiceUrl) -> CasServiceRecord | None:
    """The first registration (oldest first) that matches a normalised candidate on its host."""
    for service in store.services_on(url.scheme, url.host):
        if matches(service, url):
            return service
    return None


def resolve(store: SqlCasStore | FastCasStore, raw: str, *, allow_http: bool) -> tuple[ServiceUrl, CasServiceRecord]:
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
