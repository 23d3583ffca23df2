"""SAML bindings on the way in (Bindings 3.4, 3.5): size caps, capped inflate, DOCTYPE refusal, one parse.

Nothing here trusts the message yet; ``checks`` decides what it may do.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus

from lxml import etree
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

from idp.saml import crypto
from idp.saml.config import SamlConfig
from idp.saml.errors import TOO_LARGE, SamlInvalidRequest


@dataclass(frozen=True)
class RedirectParts:
    """An HTTP-Redirect message as received: decoded values and the exact signed octets (Bindings 3.4.4.1)."""

    message: str
    relay_state: str | None
    sig_alg: str | None
    signature: str | None
    signed_octets: bytes


@dataclass(frozen=True)
class Inbound:
    """A decoded, parsed SAML message and how it came."""

    root: etree._Element
    binding: str
    relay_state: str | None
    redirect: RedirectParts | None = None


# --- transport decoding ----------------------------------------------------------------------------------


def b64decode_strict(value: str) -> bytes:
    """Base64 with whitespace allowed (POST bodies wrap lines) and nothing else; 400 otherwise."""
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise SamlInvalidRequest() from None


def inflate_capped(data: bytes, cap: int) -> bytes:
    """Raw DEFLATE (Bindings 3.4.4.1) with an output cap: a bomb stops at ``cap`` bytes (SECURITY S09)."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, cap + 1)
    except zlib.error:
        raise SamlInvalidRequest() from None
    if len(out) > cap or inflater.unconsumed_tail:
        raise SamlInvalidRequest(TOO_LARGE)
    return out


def split_redirect_query(raw_query: bytes, param: str, max_bytes: int) -> RedirectParts:
    """Take ``param``, ``RelayState``, ``SigAlg`` and ``Signature`` from the raw query, keeping their octets."""
    if len(raw_query) > max_bytes * 2:
        raise SamlInvalidRequest(TOO_LARGE)
    raw: dict[str, str] = {}
    for pair in raw_query.decode("latin-1").split("&"):
        name, _, encoded = pair.partition("=")
        key = unquote(name)
        if key in (param, "RelayState", "SigAlg", "Signature"):
            if key in raw:
                raise SamlInvalidRequest()
            raw[key] = encoded
    if param not in raw:
        raise SamlInvalidRequest()
    if len(raw[param]) > max_bytes:
        raise SamlInvalidRequest(TOO_LARGE)
    octets = "&".join(f"{k}={raw[k]}" for k in (param, "RelayState", "SigAlg") if k in raw).encode("latin-1")

    def value(key: str) -> str | None:
        return unquote_plus(raw[key], encoding="utf-8", errors="strict") if key in raw else None

    try:
        return RedirectParts(message=value(param) or "", relay_state=value("RelayState"), sig_alg=value("SigAlg"),
                             signature=value("Signature"), signed_octets=octets)
    except UnicodeDecodeError:
        raise SamlInvalidRequest() from None


def _parse(xml: bytes) -> etree._Element:
    try:
        return crypto.parse_xml(xml)
    except crypto.UnsafeXml:
        raise SamlInvalidRequest() from None
    except etree.XMLSyntaxError:
        raise SamlInvalidRequest() from None


def decode_redirect(raw_query: bytes, param: str, config: SamlConfig) -> Inbound:
    """An HTTP-Redirect message: base64, capped inflate, DOCTYPE refusal, parse."""
    parts = split_redirect_query(raw_query, param, config.redirect_param_max_bytes)
    xml = inflate_capped(b64decode_strict(parts.message), config.inflated_max_bytes)
    return Inbound(root=_parse(xml), binding=BINDING_HTTP_REDIRECT, relay_state=parts.relay_state, redirect=parts)


def decode_post(value: str, relay_state: str | None) -> Inbound:
    """An HTTP-POST message: base64 (never inflated), DOCTYPE refusal, parse (the body is capped at 64 KiB)."""
    return Inbound(root=_parse(b64decode_strict(value)), binding=BINDING_HTTP_POST, relay_state=relay_state)
