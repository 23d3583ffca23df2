"""CAS 3.0 attributes: the canonical attributes of ``idp.core.identity`` renamed per preset (DESIGN §4).

The release policy (which canonical attributes a service may see) is stored with each registration; this
module only renames and reformats. Two presets:

- ``generic``: the canonical names as they are (``sn``, ``givenName``, ``FrEduCtId``, ``FrEduCtEleveUAI``…);
  default release: ``idp.core.identity.DEFAULT_RELEASE``.
- ``pronote``: what Pronote's CAS delegation joins accounts on — ``nom``, ``prenom``, ``dateNaissance``
  (DD/MM/YYYY; a pupil's own birth date, so a parent has none and the attribute is omitted), ``codePostal``,
  ``categories`` (``National_1`` pupil, ``National_2`` parent) and ``uai`` (the ``FrEduCtEleveUAI`` values:
  a pupil's school, a parent's children's schools; ``uai`` is the name Pronote's establishment matching
  reads, one value per school).

Every answer also carries the three attributes CAS 3.0 requires (Appendix A): ``authenticationDate``,
``longTermAuthenticationRequestTokenUsed`` (always false: there is no remember-me) and ``isFromNewLogin``.
"""

from __future__ import annotations

import datetime as dt

from idp.core.accounts.model import Account
from idp.core.authn.model import SsoSession
from idp.core.identity import (
    DEFAULT_RELEASE,
    Attr,
    ReleasePolicy,
    load_identity,
    pairwise_id,
    release_attributes,
)
from idp.core.ports import UnitOfWork
from idp.storage.cas_store import CasServiceRecord

PRESETS = ("generic", "pronote")

PRONOTE_RELEASE = frozenset({Attr.SN, Attr.GIVEN_NAME, Attr.DATE_NAISSANCE, Attr.POSTAL_CODE, Attr.AFFILIATION,
                             Attr.ELEVE_UAI})

#: Pronote names for canonical attributes (``categories`` is computed from ``FrEduCtPersonAffiliation``).
PRONOTE_NAMES = {Attr.SN: "nom", Attr.GIVEN_NAME: "prenom", Attr.DATE_NAISSANCE: "dateNaissance",
                 Attr.POSTAL_CODE: "codePostal", Attr.ELEVE_UAI: "uai"}

Attributes = list[tuple[str, list[str]]]


def release_policy(service: CasServiceRecord) -> ReleasePolicy:
    """The release policy stored with a registration (or its preset's default)."""
    if service.attributes:
        allowed = frozenset(Attr(a) for a in service.attributes)
    else:
        allowed = PRONOTE_RELEASE if service.preset == "pronote" else DEFAULT_RELEASE
    return ReleasePolicy(sp_id="cas:" + service.service_id, attributes=allowed, clear_ine=service.clear_ine)


def cas_user(secret: str, service: CasServiceRecord, account: Account) -> str:
    """``cas:user``: an opaque id, stable per service, never the login."""
    return pairwise_id(secret, "cas:" + service.service_id, account.public_id)


def _pronote(released: dict[Attr, list[str]]) -> Attributes:
    out: Attributes = []
    for canonical, name in PRONOTE_NAMES.items():
        values = released.get(canonical)
        if not values:
            continue
        if canonical is Attr.DATE_NAISSANCE:
            values = [dt.date.fromisoformat(v).strftime("%d/%m/%Y") for v in values]
        out.append((name, values))
    categories = sorted({"National_1" if a.startswith("eleve") else "National_2"
                         for a in released.get(Attr.AFFILIATION, [])})
    if categories:
        out.append(("categories", categories))
    return out


def snapshot(uow: UnitOfWork, service: CasServiceRecord, account: Account, session: SsoSession, *,
             secret: str, logout_url: str, now: dt.datetime) -> dict[str, object]:
    """What validations answer for this session and service: user id, attributes, authentication date."""
    identity = load_identity(uow, account, session)
    released = release_attributes(identity, release_policy(service), secret, logout_url, now)
    if service.preset == "pronote":
        attrs = _pronote(released)
    else:
        attrs = [(str(name), values) for name, values in released.items()]
    return {
        "user": cas_user(secret, service, account),
        "attributes": attrs,
        "authenticationDate": session.authn_instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
