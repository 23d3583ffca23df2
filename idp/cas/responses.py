"""CAS response documents: XML (Appendix A schema) built with ElementTree, JSON (§2.5.2), CAS 1.0 text, and
the single-logout ``LogoutRequest`` (Appendix C). Nothing is ever concatenated into markup: the serialiser
escapes ``& < > " '``; characters XML 1.0 cannot carry (controls other than TAB, LF, CR) are dropped.
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
ET.register_namespace("cas", CAS_NS)
ET.register_namespace("samlp", SAMLP_NS)
ET.register_namespace("saml", SAML_NS)

XML_TYPE = "application/xml; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)


def _cas(parent: ET.Element | None, tag: str, text: str | None = None) -> ET.Element:
    name = f"{{{CAS_NS}}}{tag}"
    element = ET.Element(name) if parent is None else ET.SubElement(parent, name)
    if text is not None:
        element.text = _clean(text)
    return element


def _document(root: ET.Element) -> bytes:
    # Serialised to str then encoded once (much cheaper than ElementTree's encoding writer); UTF-8 is XML's
    # default, so no declaration is needed.
    return ET.tostring(root, encoding="unicode").encode("utf-8")


def _bool(value: bool) -> str:
    return "true" if value else "false"


def success_xml(result: Validated, *, with_attributes: bool) -> bytes:
    """``<cas:authenticationSuccess>`` with user, attributes (CAS 3), PGT IOU and proxies (§2.5.2, §2.6.2)."""
    root = _cas(None, "serviceResponse")
    success = _cas(root, "authenticationSuccess")
    _cas(success, "user", result.user)
    if with_attributes:
        attrs = _cas(success, "attributes")
        _cas(attrs, "authenticationDate", result.authentication_date)
        _cas(attrs, "longTermAuthenticationRequestTokenUsed", "false")
        _cas(attrs, "isFromNewLogin", _bool(result.from_new_login))
        for name, values in result.attributes:
            for value in values:
                _cas(attrs, name, value)
    if result.pgt_iou:
        _cas(success, "proxyGrantingTicket", result.pgt_iou)
    if result.proxies:
        proxies = _cas(success, "proxies")
        for proxy in result.proxies:
            _cas(proxies, "proxy", proxy)
    return _document(root)


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
    root = _cas(None, "serviceResponse")
    _cas(root, element, description).set("code", code)
    return _document(root)


def proxy_success(proxy_ticket: str, *, json_format: bool) -> bytes:
    """``<cas:proxySuccess>`` with the PT (§2.7.2)."""
    if json_format:
        return json.dumps({"serviceResponse": {"proxySuccess": {"proxyTicket": proxy_ticket}}}).encode("utf-8")
    root = _cas(None, "serviceResponse")
    _cas(_cas(root, "proxySuccess"), "proxyTicket", proxy_ticket)
    return _document(root)


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
