"""CAS response documents: XML (Appendix A schema), JSON (§2.5.2), CAS 1.0 text, and the single-logout
``LogoutRequest`` (Appendix C).

Validation answers are the hot path, so their XML is written directly rather than through ElementTree (a tenth
of the cost): element names are our own constants and attribute names (``Attr`` values, preset names), and
every value goes through ``_text``, which drops the characters XML 1.0 cannot carry (controls other than TAB,
LF, CR; U+FFFE, U+FFFF) and escapes ``& < >`` (and ``"`` in attribute values): the bytes ElementTree wrote. The single-logout document is built with ElementTree.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import xml.etree.ElementTree as ET

from idp.cas.tickets import Validated

CAS_NS = "http://www.yale.edu/tp/cas"
SAMLP_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
ET.register_namespace("samlp", SAMLP_NS)
ET.register_namespace("saml", SAML_NS)

XML_TYPE = "application/xml; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: str, *, quote: bool = False) -> str:
    """A value as XML character data (or, with ``quote``, attribute value): impossible characters dropped,
    markup escaped."""
    value = _NOT_XML.sub("", value)
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    if quote and '"' in value:
        value = value.replace('"', "&quot;")
    return value


_OPEN = f'<cas:serviceResponse xmlns:cas="{CAS_NS}">'
_CLOSE = "</cas:serviceResponse>"


def _element(out: list[str], tag: str, value: str) -> None:
    out.append(f"<cas:{tag}>{_text(value)}</cas:{tag}>")


def _bool(value: bool) -> str:
    return "true" if value else "false"


def success_xml(result: Validated, *, with_attributes: bool) -> bytes:
    """``<cas:authenticationSuccess>`` with user, attributes (CAS 3), PGT IOU and proxies (§2.5.2, §2.6.2)."""
    out = [_OPEN, "<cas:authenticationSuccess>"]
    _element(out, "user", result.user)
    if with_attributes:
        out.append("<cas:attributes>")
        _element(out, "authenticationDate", result.authentication_date)
        _element(out, "longTermAuthenticationRequestTokenUsed", "false")
        _element(out, "isFromNewLogin", _bool(result.from_new_login))
        for name, values in result.attributes:
            for value in values:
                _element(out, name, value)
        out.append("</cas:attributes>")
    if result.pgt_iou:
        _element(out, "proxyGrantingTicket", result.pgt_iou)
    if result.proxies:
        out.append("<cas:proxies>")
        for proxy in result.proxies:
            _element(out, "proxy", proxy)
        out.append("</cas:proxies>")
    out.append("</cas:authenticationSuccess>")
    out.append(_CLOSE)
    return "".join(out).encode("utf-8")


def success_json(result: Validated, *, with_attributes: bool) -> bytes:
    """The JSON form of a successful validation (§2.5.2, §2.5.7): one value as a string, several as a list."""
    success: dict[str, object] = {"user": result.user}
    if with_attributes:
        attrs: dict[str, object] = {
            "authenticationDate": result.authentication_date,
            "longTermAuthenticationRequestTokenUsed": False,
            "isFromNewLogin": result.from_new_login,
        }
        for name, values in result.attributes:
            attrs[name] = values[0] if len(values) == 1 else list(values)
        success["attributes"] = attrs
    if result.pgt_iou:
        success["proxyGrantingTicket"] = result.pgt_iou
    if result.proxies:
        success["proxies"] = list(result.proxies)
    return json.dumps({"serviceResponse": {"authenticationSuccess": success}}, ensure_ascii=False).encode("utf-8")


def failure(code: str, description: str, *, json_format: bool, element: str = "authenticationFailure") -> bytes:
    """``authenticationFailure`` (validation) or ``proxyFailure`` (``/proxy``) with its code (§2.5.3, §2.7.3)."""
    if json_format:
        body = {"serviceResponse": {element: {"code": code, "description": description}}}
        return json.dumps(body, ensure_ascii=False).encode("utf-8")
    return f'{_OPEN}<cas:{element} code="{_text(code, quote=True)}">{_text(description)}</cas:{element}>{_CLOSE}'.encode()


def proxy_success(proxy_ticket: str, *, json_format: bool) -> bytes:
    """``<cas:proxySuccess>`` with the PT (§2.7.2)."""
    if json_format:
        return json.dumps({"serviceResponse": {"proxySuccess": {"proxyTicket": proxy_ticket}}}).encode("utf-8")
    out = [_OPEN, "<cas:proxySuccess>"]
    _element(out, "proxyTicket", proxy_ticket)
    return "".join([*out, "</cas:proxySuccess>", _CLOSE]).encode("utf-8")


def cas1(result: Validated | None) -> bytes:
    """CAS 1.0 ``/validate``: ``yes<LF>user<LF>`` or ``no<LF><LF>`` (§2.4.2)."""
    if result is None:
        return b"no\n\n"
    return f"yes\n{result.user}\n".encode()


def logout_request(ticket: str, now: dt.datetime) -> str:
    """The SAML ``LogoutRequest`` a service receives at single logout, ``SessionIndex`` = its ticket."""
    root = ET.Element(f"{{{SAMLP_NS}}}LogoutRequest", {
        "ID": "LR-" + secrets.token_hex(16), "Version": "2.0",
        "IssueInstant": now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    })
    ET.SubElement(root, f"{{{SAML_NS}}}NameID").text = "@NOT_USED@"
    ET.SubElement(root, f"{{{SAMLP_NS}}}SessionIndex").text = ticket
    return ET.tostring(root, encoding="unicode")
