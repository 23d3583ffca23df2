"""CAS tickets: their strings, their lifetimes, and why a validation is refused (CAS 3.0 §3).

Ticket strings are ``ST-``/``PT-``/``PGT-``/``PGTIOU-`` followed by 192 random bits in base 62 (33 characters
of ``[A-Za-z0-9]``), so the whole ticket is within ``[A-Za-z0-9-]`` (§3.7) and well under 256 characters.
Only the SHA-256 of a ticket string is stored.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import re
import secrets
from dataclasses import dataclass, field

#: Lifetime of service and proxy tickets (Apereo's default; the spec recommends at most 5 minutes).
TICKET_TTL = dt.timedelta(seconds=10)
RANDOM_BYTES = 24
MAX_TICKET_LENGTH = 256
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
TICKET_RE = re.compile(r"(?:ST|PT|PGT|PGTIOU)-[A-Za-z0-9-]{16,240}")


def _base62(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(_ALPHABET[rest])
    return "".join(reversed(digits)).rjust(33, "0")


def new_ticket(prefix: str) -> str:
    """A fresh ticket string: ``<prefix>-`` and 192 random bits (CAS 3.0 §3.1.1, §3.7)."""
    return f"{prefix}-{_base62(secrets.token_bytes(RANDOM_BYTES))}"


def ticket_id(ticket: str) -> str:
    """The stored key of a ticket: SHA-256 of its string, hex."""
    return hashlib.sha256(ticket.encode("ascii", "replace")).hexdigest()


def well_formed(ticket: str) -> bool:
    """Whether a string can be one of our tickets at all (cheap check before touching the database)."""
    return len(ticket) <= MAX_TICKET_LENGTH and TICKET_RE.fullmatch(ticket) is not None


class TicketProblem(enum.Enum):
    """Why a validation or proxy request fails; ``mapping.CAS_CODE`` gives each its CAS error code."""

    MISSING_PARAMETER = "missing_parameter"
    UNSUPPORTED_FORMAT = "unsupported_format"
    UNKNOWN_TICKET = "unknown_ticket"
    EXPIRED = "expired"
    WRONG_SERVICE = "wrong_service"
    NOT_FROM_NEW_LOGIN = "not_from_new_login"
    PROXY_TICKET_REFUSED = "proxy_ticket_refused"
    PROXY_NOT_ALLOWED = "proxy_not_allowed"
    BAD_PROXY_CALLBACK = "bad_proxy_callback"
    UNKNOWN_PGT = "unknown_pgt"
    UNAUTHORIZED_TARGET = "unauthorized_target"
    OUTAGE = "outage"


class TicketRejected(Exception):
    """A validation or proxy request refused for ``problem``."""

    def __init__(self, problem: TicketProblem) -> None:
        self.problem = problem
        super().__init__(problem.value)


@dataclass(frozen=True)
class Validated:
    """A successful validation: who, how, and the proxy details (CAS 3.0 §2.5.2, §2.6.2)."""

    user: str
    attributes: list[tuple[str, list[str]]]
    authentication_date: str
    from_new_login: bool
    pgt_iou: str = ""
    proxies: tuple[str, ...] = field(default_factory=tuple)
