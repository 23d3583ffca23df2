"""The provider's test identities (pivot identity as FranceConnect v2 returns it).

Some match parents of the demo register (``idp.demo_register``): Sandrine Dupuis (two schools, one person,
under her usage name: her birth name is Martin), Karim Lefort (no account yet), Hélène Moulin. Catherine Robert
matches two different representatives (the ambiguous case: never linked automatically), and Jean-Baptiste
Inconnu-Test matches nobody. Anouk Vauclair, Damien Roquebrune, Odile Peyrolles and Bastien Mirabel are the
register's ``FRANCECONNECT_FAMILIES`` (no account yet: the browser matrix's FranceConnect route).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    key: str
    given_name: str
    family_name: str
    birthdate: str
    gender: str
    birthplace: str
    birthcountry: str
    email: str
    preferred_username: str = ""

    def claims(self) -> dict[str, str]:
        return {"given_name": self.given_name, "family_name": self.family_name, "birthdate": self.birthdate,
                "gender": self.gender, "birthplace": self.birthplace, "birthcountry": self.birthcountry,
                "email": self.email, "preferred_username": self.preferred_username}


IDENTITIES = (
    Identity("sandrine", "Sandrine Marie", "MARTIN", "1981-04-12", "female", "34172", "99100",
             "sandrine.dupuis@example.fr", "DUPUIS"),
    Identity("karim", "Karim Ahmed", "LEFORT", "1979-11-30", "male", "30189", "99100", "karim.lefort@example.fr"),
    Identity("helene", "Hélène Jeanne", "MOULIN", "1985-02-03", "female", "69123", "99100",
             "helene.moulin@example.fr"),
    Identity("catherine", "Catherine", "ROBERT", "1976-06-21", "female", "75115", "99100",
             "catherine.robert@example.fr"),
    Identity("inconnu", "Jean-Baptiste", "INCONNU-TEST", "1990-01-01", "male", "", "99134",
             "jb.inconnu@example.fr"),
    # The parents of ``idp.demo_register.FRANCECONNECT_FAMILIES`` (no account yet, one each per service).
    Identity("anouk", "Anouk Claire", "VAUCLAIR", "1984-05-17", "female", "30189", "99100",
             "anouk.vauclair@example.fr"),
    Identity("damien", "Damien", "ROQUEBRUNE", "1980-09-08", "male", "34032", "99100",
             "damien.roquebrune@example.fr"),
    Identity("odile", "Odile Marie", "PEYROLLES", "1982-12-01", "female", "34301", "99100",
             "odile.peyrolles@example.fr"),
    Identity("bastien", "Bastien", "MIRABEL", "1978-03-25", "male", "34057", "99100",
             "bastien.mirabel@example.fr"),
)
