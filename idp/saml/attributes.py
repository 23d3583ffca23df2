"""Canonical attributes (``idp.core.identity``) under their SAML names (DESIGN §4).

By default the basic name format with the canonical names (``FrEduCtId``…). SPs registered with the
ÉduConnect compatibility profile get the ``urn:oid:1.3.6.1.4.1.20326.10.999.1.<n>`` names ÉduConnect
integrations parse, the X.500 / inetOrgPerson OIDs for the standard LDAP attributes, each with its
``FriendlyName``; attributes without a published OID keep their basic name.
"""

from __future__ import annotations

from dataclasses import dataclass

from idp.core.identity import Attr

NAME_FORMAT_BASIC = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
NAME_FORMAT_URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
EDUCONNECT = "urn:oid:1.3.6.1.4.1.20326.10.999.1."

#: ÉduConnect's numbering (DESIGN §4) and the standard OIDs of sn, givenName, mail, telephoneNumber, postalCode.
OID_NAMES: dict[Attr, str] = {
    Attr.URL_RETOUR: EDUCONNECT + "5",
    Attr.DATE_CONNEXION: EDUCONNECT + "6",
    Attr.AFFILIATION: EDUCONNECT + "7",
    Attr.FR_EDU_CT_ID: EDUCONNECT + "57",
    Attr.ELEVE_INE_HASH: EDUCONNECT + "64",
    Attr.DATE_NAISSANCE: EDUCONNECT + "67",
    Attr.ELEVE_UAI: EDUCONNECT + "72",
    Attr.ELEVE_NIVEAU: EDUCONNECT + "73",
    Attr.SN: "urn:oid:2.5.4.4",
    Attr.GIVEN_NAME: "urn:oid:2.5.4.42",
    Attr.MAIL: "urn:oid:0.9.2342.19200300.100.1.3",
    Attr.PHONE: "urn:oid:2.5.4.20",
    Attr.POSTAL_CODE: "urn:oid:2.5.4.17",
}


@dataclass(frozen=True)
class SamlAttribute:
    """One ``saml:Attribute`` to emit."""

    name: str
    name_format: str
    friendly_name: str | None
    values: tuple[str, ...]


def saml_attributes(released: dict[Attr, list[str]], compat_oid: bool) -> list[SamlAttribute]:
    """The released attributes under their SAML names, in a stable order."""
    out = []
    for attr in Attr:
        values = released.get(attr)
        if not values:
            continue
        oid = OID_NAMES.get(attr) if compat_oid else None
        if oid:
            out.append(SamlAttribute(oid, NAME_FORMAT_URI, attr.value, tuple(values)))
        else:
            out.append(SamlAttribute(attr.value, NAME_FORMAT_BASIC, None, tuple(values)))
    return out


def parse_attribute_list(text: str) -> frozenset[Attr]:
    """``sn,givenName,FrEduCtId`` → canonical names; raises ``ValueError`` naming an unknown one."""
    by_name = {a.value.lower(): a for a in Attr}
    chosen = set()
    for part in text.split(","):
        name = part.strip()
        if not name:
            continue
        if name.lower() not in by_name:
            raise ValueError(f"attribut inconnu : {name} (connus : {', '.join(a.value for a in Attr)})")
        chosen.add(by_name[name.lower()])
    return frozenset(chosen)
