"""The téléservices' small business rules (demonstration figures, not the official scales)."""

from __future__ import annotations

SERVICES = (
    ("bourse", "Bourse de collège et de lycée", "Estimer le montant et demander une bourse."),
    ("orientation", "Orientation", "Formuler les vœux d'orientation de fin d'année."),
    ("affectation", "Affectation après la 3e", "Suivre la demande d'affectation au lycée."),
    ("fiche", "Fiche de renseignements", "Vérifier et mettre à jour les informations de contact."),
    ("livret", "Livret scolaire", "Consulter les bilans périodiques et les attestations."),
)

#: Demonstration scale: (maximum reference income for 1 dependent child, + per extra child, yearly amount).
SCALE_COLLEGE = ((3_200, 700, 483), (9_500, 2_100, 291), (17_700, 3_900, 111))
SCALE_LYCEE = ((3_000, 700, 972), (6_500, 1_400, 738), (10_000, 2_200, 498), (14_000, 3_000, 441))
LYCEE_LEVELS = {"2NDE", "1ERE", "TLE"}


def bourse_estimate(income: int, dependants: int, level: str) -> dict[str, object]:
    """The échelon and yearly amount of the demonstration scale, or no bourse."""
    scale = SCALE_LYCEE if level in LYCEE_LEVELS else SCALE_COLLEGE
    for number, (ceiling, extra, amount) in enumerate(scale, start=1):
        if income <= ceiling + extra * (dependants - 1):
            return {"eligible": True, "echelon": number, "montant": amount,
                    "niveau": "lycée" if scale is SCALE_LYCEE else "collège"}
    return {"eligible": False, "echelon": 0, "montant": 0, "niveau": "lycée" if scale is SCALE_LYCEE else "collège"}


def orientation_choices(level: str) -> list[str]:
    """What can be asked at the end of the pupil's year."""
    if level == "3EME":
        return ["2de générale et technologique", "2de professionnelle", "1re année de CAP"]
    if level == "2NDE":
        return ["1re générale", "1re technologique STMG", "1re technologique STI2D", "1re technologique ST2S"]
    if level in {"1ERE", "TLE"}:
        return ["Poursuite dans la série", "Réorientation"]
    return ["Passage dans la classe supérieure", "Redoublement (sur avis du conseil de classe)"]
