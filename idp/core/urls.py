"""URL safety: the one parse that every URL a service registers or sends goes through (SECURITY C15, S29, O01).

``parse_url`` refuses what a browser, a proxy or the service's own server could read differently from us, and
returns the syntax-normalised form (RFC 3986 §6.2.2) that registrations are matched on:

1. refused: empty or longer than 2048 characters; a space, control character, DEL or backslash; a non-ASCII
   character outside the host; a scheme other than ``http``/``https``; userinfo (``user@``); a host that is
   not a DNS name (IDNA) or a bracketed IPv6 address; a bad port; a malformed percent-escape;
2. refused in the path: an encoded slash or backslash (``%2F``, ``%5C``), a double-encoded dot, slash or
   backslash (``%252E``…), and every dot-segment (``.`` or ``..``, also spelt ``%2E``, also before a ``;``
   parameter as servlet containers read ``..;``). RFC 3986 §5.2.4 would remove them, but the server behind
   the service may resolve them otherwise (or not at all): a URL that §5.2.4 would change is never matched,
   it is refused;
3. normalised: scheme and host lower-cased, the host IDNA-encoded, the default port dropped, an empty path
   becomes ``/``; in path and query, percent-escapes of unreserved characters decoded (§2.3, §6.2.2.2) and
   the others upper-cased (§6.2.2.1). The fragment is kept apart, unchanged.

``transport_allowed`` is the one transport rule for a URL a service registers (CAS services, OIDC redirect
and logout URIs, SAML ACS and SLO endpoints): ``https``; ``http`` only on a loopback host (RFC 8252 §7.3), or
on any host in development mode.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"https": 443, "http": 80}
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\]")
_HOST_RE = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ENCODED_SEPARATOR = re.compile(r"%(2F|5C)|%25(2E|2F|5C)", re.IGNORECASE)


class UnsafeUrl(ValueError):
    """A URL refused by ``parse_url``; the message says why, in French (operators read it)."""


@dataclass(frozen=True)
class SafeUrl:
    """A URL that passed ``parse_url``: its normalised parts."""

    scheme: str
    hostname: str  # lower-cased, IDNA; an IPv6 address in brackets
    authority: str  # hostname[:port], the default port dropped
    path: str
    query: str
    fragment: str = ""

    @property
    def normalised(self) -> str:
        """``scheme://authority/path[?query]``, without the fragment (what matching compares)."""
        return f"{self.scheme}://{self.authority}{self.path}" + (f"?{self.query}" if self.query else "")

    @property
    def origin(self) -> str:
        """``scheme://authority``."""
        return f"{self.scheme}://{self.authority}"


def _normalise_escapes(text: str) -> str:
    """Decode escapes of unreserved characters, upper-case the others (RFC 3986 §6.2.2.1–2)."""
    if "%" not in text:
        return text
    if text.count("%") != len(_ESCAPE.findall(text)):
        raise UnsafeUrl("séquence %XX invalide")

    def one(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return _ESCAPE.sub(one, text)


def _check_path(path: str) -> None:
    """No encoded separator, no dot-segment (RFC 3986 §5.2.4 would remove it; we refuse it)."""
    if _ENCODED_SEPARATOR.search(path):
        raise UnsafeUrl("barre oblique encodée (%2F, %5C) ou encodage double dans le chemin")
    for segment in path.split("/"):
        if segment.split(";", 1)[0] in (".", ".."):
            raise UnsafeUrl("segment « . » ou « .. » dans le chemin")


def _normalise_host(netloc: str, hostname: str) -> str:
    if not hostname or "%" in hostname:  # no zone id (``[fe80::1%25eth0]``), no escape in a host
        raise UnsafeUrl("hôte invalide")
    if "[" in netloc:
        try:
            return f"[{ipaddress.IPv6Address(hostname).compressed}]"
        except ValueError:
            raise UnsafeUrl("adresse IPv6 invalide") from None
    try:
        host = hostname.lower().encode("idna").decode("ascii")
    except UnicodeError:
        raise UnsafeUrl("hôte invalide (nom IDNA)") from None
    if not _HOST_RE.match(host) or ".." in host:
        raise UnsafeUrl("hôte invalide")
    return host


def parse_url(raw: str) -> SafeUrl:
    """Check and normalise an absolute http(s) URL, or raise ``UnsafeUrl`` (the module docstring's rules)."""
    if not raw or len(raw) > MAX_URL_LENGTH:
        raise UnsafeUrl("adresse vide ou trop longue")
    if _FORBIDDEN.search(raw):
        raise UnsafeUrl("espace, caractère de contrôle ou barre oblique inversée")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise UnsafeUrl("adresse illisible (hôte ou port)") from None
    if not (parts.path + parts.query + parts.fragment).isascii():
        raise UnsafeUrl("caractère non ASCII hors de l'hôte (à encoder en %XX)")
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UnsafeUrl(f"schéma {scheme or '(absent)'!r} refusé (http ou https)")
    if "@" in parts.netloc:
        raise UnsafeUrl("identifiants (user@) dans l'adresse")
    hostname = _normalise_host(parts.netloc, parts.hostname or "")
    authority = hostname if port is None or port == DEFAULT_PORTS[scheme] else f"{hostname}:{port}"
    path = _normalise_escapes(parts.path) or "/"
    _check_path(path)
    return SafeUrl(scheme=scheme, hostname=hostname, authority=authority, path=path,
                   query=_normalise_escapes(parts.query), fragment=parts.fragment)


def is_loopback(hostname: str) -> bool:
    """``localhost`` or a loopback IP address (``127.0.0.0/8``, ``[::1]``)."""
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def transport_allowed(url: SafeUrl, *, development: bool) -> bool:
    """https; http only on a loopback host (RFC 8252 §7.3), or on any host in development (SECURITY S29)."""
    return url.scheme == "https" or development or is_loopback(url.hostname)


def is_safe(raw: str) -> bool:
    """Whether ``parse_url`` accepts this URL (a candidate is checked before any comparison)."""
    try:
        parse_url(raw)
    except UnsafeUrl:
        return False
    return True
