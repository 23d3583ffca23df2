"""Scopes to claims: the same identity as SAML and CAS (DESIGN §4), renamed for OpenID Connect.

Attribute *selection* is done by ``idp.core.identity.release_attributes``; this module only says which
canonical attributes each scope asks for and what each is called in a claim.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from idp.core.accounts.model import Profile
from idp.core.i18n import N_
from idp.core.identity import (
    Attr,
    Identity,
    ReleasePolicy,
    carries_clear_ine,
    pairwise_id,
    release_attributes,
)

#: Scopes this provider knows; anything else in a request is dropped (SECURITY O13).
SCOPES = ("openid", "profile", "email", "phone", "fr_edu", "fr_edu_ine", "fr_edu_children")
#: Scopes only granted to clients registered with them explicitly.
RESTRICTED_SCOPES = frozenset({"fr_edu_ine", "phone"})

SCOPE_ATTRIBUTES: dict[str, frozenset[Attr]] = {
    "profile": frozenset({Attr.SN, Attr.GIVEN_NAME}),
    "email": frozenset({Attr.MAIL}),
    "phone": frozenset({Attr.PHONE}),
    "fr_edu": frozenset({Attr.FR_EDU_CT_ID, Attr.AFFILIATION, Attr.ELEVE_UAI, Attr.ELEVE_NIVEAU, Attr.REF_ID,
                         Attr.VECTEUR, Attr.URL_RETOUR, Attr.DATE_CONNEXION, Attr.DATE_NAISSANCE,
                         Attr.ELEVE_INE_HASH}),
    "fr_edu_ine": frozenset({Attr.ELEVE_INE}),
}

#: Claim name and whether it holds one value (a string) or several (a list).
CLAIM_NAMES: dict[Attr, tuple[str, bool]] = {
    Attr.SN: ("family_name", True),
    Attr.GIVEN_NAME: ("given_name", True),
    Attr.MAIL: ("email", True),
    Attr.PHONE: ("phone_number", True),
    Attr.FR_EDU_CT_ID: ("FrEduCtId", True),
    Attr.AFFILIATION: ("FrEduCtPersonAffiliation", False),
    Attr.ELEVE_UAI: ("FrEduCtEleveUAI", False),
    Attr.ELEVE_NIVEAU: ("FrEduCtEleveNiveau", False),
    Attr.REF_ID: ("FrEduCtRefId", False),
    Attr.VECTEUR: ("FrEduVecteur", False),
    Attr.URL_RETOUR: ("FrEduUrlRetour", True),
    Attr.DATE_CONNEXION: ("FrEduCtDateConnexion", True),
    Attr.DATE_NAISSANCE: ("FrEduCtDateNaissance", True),
    Attr.ELEVE_INE: ("FrEduCtEleveINE", True),
    Attr.ELEVE_INE_HASH: ("FrEduCtEleveINEHash", True),
}

ID_TOKEN_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "at_hash", "azp")
CLAIMS_SUPPORTED = (*ID_TOKEN_CLAIMS, "name", "family_name", "given_name", "email", "email_verified",
                    "phone_number", "phone_number_verified", "children",
                    *sorted({name for name, _ in CLAIM_NAMES.values()} - {"family_name", "given_name", "email",
                                                                          "phone_number"}))

#: What the consent page and « Mon compte » say about each scope (catalogue keys, translated where shown).
SCOPE_LABELS = {
    "openid": N_("Votre identifiant pour ce service (un numéro propre à ce service)"),
    "profile": N_("Vos nom et prénom"),
    "email": N_("Votre adresse mail vérifiée"),
    "phone": N_("Votre numéro de téléphone vérifié"),
    "fr_edu": N_("Votre profil scolaire : établissements, niveaux, date de naissance d'un élève"),
    "fr_edu_ine": N_("Le numéro national d'élève (INE)"),
    "fr_edu_children": N_("Vos enfants : noms, prénoms, établissement et niveau"),
}


def allowed_scopes(requested: Iterable[str], registered: Iterable[str]) -> list[str]:
    """The requested scopes this client may have, in request order; unknown or unallowed ones dropped."""
    allowed = set(registered) & set(SCOPES)
    return list(dict.fromkeys(s for s in requested if s in allowed))


def userinfo_claims(identity: Identity, scopes: Iterable[str], *, sub: str, sector: str, secret: str,
                    logout_url: str, now: dt.datetime) -> dict[str, Any]:
    """The claims one client sees for the granted scopes (OIDC Core 5.4), ``sub`` first."""
    scopes = set(scopes)
    wanted: set[Attr] = set()
    for scope in scopes:
        wanted |= SCOPE_ATTRIBUTES.get(scope, frozenset())
    policy = ReleasePolicy(sp_id=sector, attributes=frozenset(wanted), clear_ine="fr_edu_ine" in scopes)
    released = release_attributes(identity, policy, secret=secret, logout_url=logout_url, now=now)
    claims: dict[str, Any] = {"sub": sub}
    for attr, values in released.items():
        name, single = CLAIM_NAMES[attr]
        claims[name] = values[0] if single else values
    if "profile" in scopes:
        claims["name"] = f"{identity.given_names} {identity.family_name}".strip()
    if "email" in claims:
        claims["email_verified"] = True  # only verified addresses reach the identity
    if "phone_number" in claims:
        claims["phone_number_verified"] = True
    if "fr_edu_children" in scopes and identity.profile is Profile.PARENT:
        claims["children"] = children(identity, sector, secret)
    return claims


def children(identity: Identity, sector: str, secret: str) -> list[dict[str, str]]:
    """A parent's children, each with a pairwise id (the same as ``FrEduCtRefId``), names, UAI and level; like
    every released attribute, never a value carrying an INE (``idp.core.identity.withhold_clear_ines``)."""
    entries = [{"id": pairwise_id(secret, sector, p.ine), "family_name": p.family_name, "given_name": p.given_names,
                "FrEduCtEleveUAI": p.uai, "FrEduCtEleveNiveau": p.level} for p in identity.pupils]
    return [e for e in entries if not any(carries_clear_ine(identity, v) for v in e.values())]
