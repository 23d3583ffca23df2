"""The validation answers (CAS 3.0 §2.4–§2.9) as ``(status, body, content type)``, shared by the Flask views
and the WSGI fast lane (``idp.cas.fastlane``): the same code decides, whichever front door the request took."""

from __future__ import annotations

from collections.abc import Mapping

from idp.cas import responses
from idp.cas.mapping import CAS_CODE
from idp.cas.parameters import flag
from idp.cas.server import CasServer
from idp.cas.tickets import TicketProblem, TicketRejected
from idp.errors import ServiceUnavailable

Answer = tuple[int, bytes, str]


def requested_format(values: Mapping[str, str]) -> str | None:
    """``XML`` (the default) or ``JSON``; ``None`` for anything else."""
    fmt = values.get("format", "XML").upper()
    return fmt if fmt in ("XML", "JSON") else None


def failure(problem: TicketProblem, fmt: str, element: str = "authenticationFailure") -> Answer:
    """A failure document; 503 on an outage (``INTERNAL_ERROR``)."""
    code, description = CAS_CODE[problem]
    json_format = fmt == "JSON"
    body = responses.failure(code, description, json_format=json_format, element=element)
    status = 503 if problem is TicketProblem.OUTAGE else 200
    return status, body, responses.JSON_TYPE if json_format else responses.XML_TYPE


def validate(cas: CasServer, values: Mapping[str, str], *, with_attributes: bool,
             accept_proxy_tickets: bool) -> Answer:
    """``/serviceValidate``, ``/proxyValidate`` and their ``/p3/`` versions."""
    fmt = requested_format(values)
    if fmt is None:
        return failure(TicketProblem.UNSUPPORTED_FORMAT, "XML")
    try:
        result = cas.validate(values.get("ticket", ""), values.get("service", ""), renew=flag(values.get("renew")),
                              pgt_url=values.get("pgtUrl", ""), accept_proxy_tickets=accept_proxy_tickets)
    except TicketRejected as exc:
        return failure(exc.problem, fmt)
    except ServiceUnavailable:
        return failure(TicketProblem.OUTAGE, fmt)
    if fmt == "JSON":
        return 200, responses.success_json(result, with_attributes=with_attributes), responses.JSON_TYPE
    return 200, responses.success_xml(result, with_attributes=with_attributes), responses.XML_TYPE


def validate_v1(cas: CasServer, values: Mapping[str, str]) -> Answer:
    """CAS 1.0 ``/validate``: ``yes``/``no`` text; proxy tickets always fail (§2.4)."""
    try:
        result = cas.validate(values.get("ticket", ""), values.get("service", ""), renew=flag(values.get("renew")))
    except TicketRejected:
        return validate_v1_refusal()
    except ServiceUnavailable:
        return 503, responses.cas1(None), responses.TEXT_TYPE
    return 200, responses.cas1(result), responses.TEXT_TYPE


def validate_v1_refusal() -> Answer:
    """The CAS 1.0 ``no``."""
    return 200, responses.cas1(None), responses.TEXT_TYPE
