"""One identity for every protocol, and the attributes released from it (DESIGN §4).

``load_identity`` gathers what the register says about an account; ``release_attributes`` turns it into the
canonical attribute names (``FrEduCtId``, ``sn``, ``FrEduCtEleveUAI``…) limited by the service provider's
release policy. SAML, OIDC and CAS then only rename: they never decide what a service provider may see.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import hashlib
import hmac
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from idp.core.accounts.model import Account, Profile
from idp.core.authn.model import AuthMethod, SsoSession
from idp.core.ports import AccountRepository, UnitOfWork

log = logging.getLogger("idp.identity")

PRIMARY_KINDS = frozenset({"ecole"})
#: An INE's shape (10 digits and a letter, or 9 digits and 2 letters), wherever it appears in a value.
INE_SHAPE = re.compile(r"[0-9]{9}[0-9A-Z][A-Z]", re.IGNORECASE)
#: The separator of composite attributes (``FrEduVecteur``) and what may never sit inside one of their fields:
#: the separator itself and control characters (a line break would split a value for a line-based parser).
VECTOR_SEPARATOR = "|"
_UNSAFE_IN_FIELD = re.compile("[|\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class Pupil:
    """A pupil as the register knows them: the account holder, or one of a parent's children."""

    ine: str
    external_id: str
    family_name: str
    given_names: str
    birth_date: dt.date
    uai: str
    school: str
    school_kind: str
    class_code: str
    level: str
    postal_code: str = ""

    @property
    def primary(self) -> bool:
        """True for a pupil of an école (1er degré)."""
        return self.school_kind in PRIMARY_KINDS


@dataclass(frozen=True)
class Identity:
    """Everything any protocol may release about the person behind an SSO session."""

    account_id: str
    identifier: str
    profile: Profile
    family_name: str
    given_names: str
    email: str = ""
    phone: str = ""
    postal_code: str = ""
    pupils: tuple[Pupil, ...] = ()
    authn_instant: dt.datetime | None = None
    auth_method: AuthMethod = AuthMethod.PASSWORD

    @property
    def own_record(self) -> Pupil | None:
        """A pupil's own register record (None for a parent)."""
        return self.pupils[0] if self.profile is Profile.STUDENT and self.pupils else None


def load_identity(uow: UnitOfWork, account: Account, session: SsoSession | None = None) -> Identity:
    """Build the identity of an account from its register records (only verified contacts are kept)."""
    return identity_of(uow.accounts, account, session)


def identity_of(accounts: AccountRepository, account: Account, session: SsoSession | None = None, *,
                register: bool = True, postal: bool = True) -> Identity:
    """``load_identity`` for a caller that knows what it will release: without ``register`` no register record
    is read (no pupils: the ``fr_edu`` attributes stay empty), without ``postal`` no postal code is looked up."""
    records = accounts.linked_records(account.id) if register else ()
    own_record = account.profile is Profile.STUDENT and bool(records)  # a pupil's postal code is on the record
    postal_code = accounts.postal_code(account.id) if postal and not own_record else ""
    return identity_with(account, records, postal_code, session)


def identity_with(account: Account, records: Sequence[Mapping[str, Any]], postal_code: str = "",
                  session: SsoSession | None = None) -> Identity:
    """The identity of an account from register records already read (``AccountRepository.linked_records``' rows);
    a pupil's postal code is their record's, ``postal_code`` is a parent's."""
    pupils = tuple(Pupil(
        ine=r["ine"], external_id=r["external_id"], family_name=r["family_name"], given_names=r["given_names"],
        birth_date=r["birth_date"], uai=r["uai"], school=r["school"], school_kind=r["school_kind"],
        class_code=r["class_code"], level=r["level"], postal_code=r["postal_code"],
    ) for r in records)
    if account.profile is Profile.STUDENT and pupils:
        postal_code = pupils[0].postal_code
    return Identity(
        account_id=account.public_id, identifier=account.identifier, profile=account.profile,
        family_name=account.family_name, given_names=account.given_names,
        email=account.email if account.email_verified else "", phone=account.phone if account.phone_verified else "",
        postal_code=postal_code, pupils=pupils,
        authn_instant=session.authn_instant if session else None,
        auth_method=session.auth_method if session else AuthMethod.PASSWORD,
    )


class Attr(enum.StrEnum):
    """Canonical attribute names (ÉduConnect's), which each protocol maps to its own wire names."""

    SN = "sn"
    GIVEN_NAME = "givenName"
    FR_EDU_CT_ID = "FrEduCtId"
    AFFILIATION = "FrEduCtPersonAffiliation"
    ELEVE_UAI = "FrEduCtEleveUAI"
    ELEVE_INE = "FrEduCtEleveINE"
    ELEVE_INE_HASH = "FrEduCtEleveINEHash"
    DATE_NAISSANCE = "FrEduCtDateNaissance"
    ELEVE_NIVEAU = "FrEduCtEleveNiveau"
    REF_ID = "FrEduCtRefId"
    VECTEUR = "FrEduVecteur"
    URL_RETOUR = "FrEduUrlRetour"
    DATE_CONNEXION = "FrEduCtDateConnexion"
    MAIL = "mail"
    PHONE = "telephoneNumber"
    POSTAL_CODE = "postalCode"


#: What a service provider gets when its registration says nothing (the minimum an ENT needs).
DEFAULT_RELEASE = frozenset({Attr.SN, Attr.GIVEN_NAME, Attr.FR_EDU_CT_ID, Attr.AFFILIATION, Attr.ELEVE_UAI,
                             Attr.ELEVE_NIVEAU, Attr.REF_ID, Attr.VECTEUR, Attr.URL_RETOUR,
                             Attr.DATE_CONNEXION})


@dataclass(frozen=True)
class ReleasePolicy:
    """Which attributes one service provider may receive, and whether it sees INEs in clear."""

    sp_id: str
    attributes: frozenset[Attr] = field(default_factory=lambda: DEFAULT_RELEASE)
    clear_ine: bool = False


def pairwise_id(secret: str, sector: str, account_id: str) -> str:
    """An opaque, stable id per (service provider sector, account): 160 bits, base32, never the login."""
    digest = hmac.new(secret.encode(), f"{sector}\x00{account_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:20]).decode("ascii").lower()


def ine_hash(secret: str, sp_id: str, ine: str) -> str:
    """A per-service-provider salted hash of an INE, for SPs not allowed to see it in clear."""
    return hmac.new(secret.encode(), f"ine\x00{sp_id}\x00{ine}".encode(), hashlib.sha256).hexdigest()


def affiliations(identity: Identity) -> list[str]:
    """``eleve1d``/``eleve2d`` for a pupil; ``resp1d``/``resp2d`` for a parent (several for mixed levels)."""
    prefix = "eleve" if identity.profile is Profile.STUDENT else "resp"
    degrees = sorted({"1d" if p.primary else "2d" for p in identity.pupils}) or ["2d"]
    return [prefix + d for d in degrees]


def vector_field(value: str) -> str:
    """One field of a composite attribute: separator and control characters become a space (defence in depth;
    the register import already refuses them), so a field can never forge another field or entry."""
    return _UNSAFE_IN_FIELD.sub(" ", value) if _UNSAFE_IN_FIELD.search(value) else value


def pupil_ref(pupil: Pupil, policy: ReleasePolicy, secret: str) -> str:
    """How a service provider may name a pupil in a vector: the register's pupil id (SIECLE ``ELEVE_ID``), or
    else the INE in clear to a service registered with clear INEs, or else its per-service hash (DESIGN §4)."""
    external = pupil.external_id
    if external and not INE_SHAPE.search(external):
        return external
    return pupil.ine if policy.clear_ine else ine_hash(secret, policy.sp_id, pupil.ine)


def vectors(identity: Identity, policy: ReleasePolicy, secret: str) -> list[str]:
    """Legacy ENT vectors ``type|NOM|PRENOM|id|UAI`` (1/2 parent 1d/2d, 3/4 pupil 1d/2d), one per pupil."""
    out = []
    first = identity.given_names.split(" ")[0]
    for pupil in identity.pupils:
        if identity.profile is Profile.STUDENT:
            kind = 3 if pupil.primary else 4
        else:
            kind = 1 if pupil.primary else 2
        fields = (str(kind), identity.family_name.upper(), first, pupil_ref(pupil, policy, secret), pupil.uai)
        out.append(VECTOR_SEPARATOR.join(vector_field(f) for f in fields))
    return out


def carries_clear_ine(identity: Identity, value: str) -> bool:
    """Whether a value to release contains one of the identity's INEs in clear."""
    upper = value.upper()
    return any(p.ine and p.ine.upper() in upper for p in identity.pupils)


def withhold_clear_ines(identity: Identity, values: dict[Attr, list[str]],
                        policy: ReleasePolicy) -> dict[Attr, list[str]]:
    """The release policy's INE rule, for every attribute at once: to a service without clear INEs, no value
    carrying an INE leaves (only ``FrEduCtEleveINE`` carries one by design, and it is not selected)."""
    if policy.clear_ine:
        return values
    kept: dict[Attr, list[str]] = {}
    for name, vals in values.items():
        safe = [v for v in vals if not carries_clear_ine(identity, v)]
        if len(safe) != len(vals):
            log.error("attribute %s would carry a clear INE to %s: value withheld", name.value, policy.sp_id)
        kept[name] = safe
    return kept


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def release_attributes(identity: Identity, policy: ReleasePolicy, secret: str, logout_url: str,
                       now: dt.datetime) -> dict[Attr, list[str]]:
    """The attributes this service provider may see, by canonical name, each a list of text values."""
    pupils = identity.pupils
    values: dict[Attr, list[str]] = {
        Attr.SN: [identity.family_name],
        Attr.GIVEN_NAME: [identity.given_names],
        Attr.FR_EDU_CT_ID: [identity.account_id],
        Attr.AFFILIATION: affiliations(identity),
        Attr.ELEVE_UAI: _unique(p.uai for p in pupils),
        Attr.ELEVE_NIVEAU: _unique(p.level for p in pupils),
        Attr.REF_ID: [pairwise_id(secret, policy.sp_id, p.ine) for p in pupils],
        Attr.VECTEUR: vectors(identity, policy, secret),
        Attr.URL_RETOUR: [logout_url],
        Attr.DATE_CONNEXION: [(identity.authn_instant or now).strftime("%Y-%m-%dT%H:%M:%SZ")],
        Attr.MAIL: _unique([identity.email]),
        Attr.PHONE: _unique([identity.phone]),
        Attr.POSTAL_CODE: _unique([identity.postal_code]),
    }
    own = identity.own_record
    if own is not None:
        values[Attr.DATE_NAISSANCE] = [own.birth_date.isoformat()]
        values[Attr.ELEVE_INE] = [own.ine]
        values[Attr.ELEVE_INE_HASH] = [ine_hash(secret, policy.sp_id, own.ine)]
    allowed = set(policy.attributes)
    if Attr.ELEVE_INE in allowed and not policy.clear_ine:
        allowed.discard(Attr.ELEVE_INE)
        allowed.add(Attr.ELEVE_INE_HASH)
    selected = {name: vals for name, vals in values.items() if name in allowed and vals}
    return {name: vals for name, vals in withhold_clear_ines(identity, selected, policy).items() if vals}
