"""Letters with provisional credentials: one PDF page per person, ready to print, and a CSV for mail merge.

The files carry passwords in clear: they are written with mode 0600 and should be deleted once printed. The
PDF uses DejaVu Sans when the system has it (Debian package ``fonts-dejavu-core``) so every name prints as
written; otherwise the PDF core font, with characters outside Latin-1 transliterated.
"""

from __future__ import annotations

import csv
import os
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from fpdf import FPDF

from idp.core.accounts.model import Profile
from idp.core.activation.provisional import IssuedCredential

FONT_CANDIDATES = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",)
BOLD_CANDIDATES = ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",)
CSV_COLUMNS = ("uai", "etablissement", "classe", "profil", "nom", "prenoms", "enfants", "identifiant",
               "mot_de_passe_provisoire", "valable_jusqu_au")


def _private_open(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)


def write_csv(path: Path, issued: Sequence[IssuedCredential]) -> None:
    """The mail-merge file (UTF-8 with BOM so spreadsheet software shows the accents)."""
    with os.fdopen(_private_open(path), "w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(CSV_COLUMNS)
        for c in issued:
            writer.writerow([c.uai, c.school, c.class_code, c.profile.label, c.family_name, c.given_names,
                             ", ".join(c.children), c.identifier, c.password, f"{c.expires_at:%d/%m/%Y}"])


class _Letters(FPDF):
    def __init__(self, product: str, login_url: str) -> None:
        super().__init__(format="A4")
        self.product, self.login_url = product, login_url
        self._wrapped: dict[tuple[str, float, str], list[str]] = {}
        self.set_auto_page_break(False)
        self.set_margins(20, 20, 20)
        regular = next((f for f in FONT_CANDIDATES if Path(f).exists()), None)
        bold = next((f for f in BOLD_CANDIDATES if Path(f).exists()), None)
        if regular and bold:
            self.add_font("letter", "", regular)
            self.add_font("letter", "B", bold)
            self._font, self._unicode = "letter", True
        else:
            self._font, self._unicode = "helvetica", False

    def printable(self, value: str) -> str:
        """What the font can print."""
        if self._unicode:
            return value
        value = value.replace("œ", "oe").replace("Œ", "OE").replace("’", "'").replace("•", "-")
        return "".join(c if ord(c) < 256 else unicodedata.normalize("NFKD", c)[0] for c in value)

    def para(self, value: str, size: float = 11, style: str = "", height: float = 6) -> None:
        """A left-aligned paragraph. Lines are wrapped here, once per distinct text (the instructions repeat on
        every letter): fpdf2's own ``multi_cell`` line breaking costs ~50 ms a page."""
        self.set_font(self._font, style, size)
        key = (value, size, style)
        lines = self._wrapped.get(key)
        if lines is None:
            lines = self._wrapped[key] = self._wrap(self.printable(value))
        for line in lines:
            self.cell(0, height, line, new_x="LMARGIN", new_y="NEXT")

    def _wrap(self, text: str) -> list[str]:
        lines: list[str] = []
        current = ""
        for word in text.split(" "):
            candidate = f"{current} {word}" if current else word
            if current and self.get_string_width(candidate) > self.epw:
                lines.append(current)
                current = word
            else:
                current = candidate
        lines.append(current)
        return lines

    def letter(self, c: IssuedCredential) -> None:
        self.add_page()
        self.para(c.school + (f" ({c.uai})" if c.uai else ""), 10)
        self.ln(8)
        who = f"{c.given_names} {c.family_name}"
        self.para(f"{self.product} : vos identifiants provisoires", 16, "B", 9)
        self.ln(2)
        if c.profile is Profile.STUDENT:
            self.para(f"Élève : {who}" + (f" – classe {c.class_code}" if c.class_code else ""), 12)
        else:
            self.para(f"Représentant légal : {who}", 12)
            if c.children:
                self.para("Élève(s) : " + ", ".join(c.children), 11)
        self.ln(6)
        self.set_fill_color(235, 238, 250)
        self.para(f"Identifiant : {c.identifier}", 14, "B", 10)
        self.para(f"Mot de passe provisoire : {c.password}", 14, "B", 10)
        self.para(f"Valable jusqu'au {c.expires_at:%d/%m/%Y}.", 11)
        self.ln(6)
        self.para("Pour activer votre compte :", 12, "B")
        steps = [
            f"Allez sur {self.login_url} (ou sur l'ENT de l'établissement, bouton « Se connecter »).",
            "Choisissez le profil « " + c.profile.label + " », puis saisissez l'identifiant et le mot de passe "
            "provisoire ci-dessus.",
            "Choisissez votre mot de passe personnel (au moins 8 caractères, une majuscule, une minuscule, un "
            "chiffre et un caractère spécial), différent du mot de passe provisoire.",
            "Confirmez " + ("votre date de naissance" if c.profile is Profile.STUDENT else
                            "la date de naissance de l'un de vos enfants") + " et indiquez votre adresse électronique"
            + (" si vous en avez une." if c.profile is Profile.STUDENT else "."),
            "Cliquez sur « Activer mon compte » : gardez précieusement votre identifiant et votre mot de passe.",
        ]
        for number, step in enumerate(steps, 1):
            self.para(f"{number}. {step}", 11)
        if c.profile is Profile.PARENT:
            self.ln(3)
            self.para("Vous avez déjà un compte pour un autre enfant ? Connectez-vous avec ces identifiants "
                      "provisoires puis choisissez « J'ai déjà un compte » : cet élève sera rattaché à votre compte.", 10)
        self.ln(6)
        self.para("Ce courrier est personnel : ne communiquez ce mot de passe à personne. L'établissement ne vous le "
                  "demandera jamais.", 9)


def letters_pdf(issued: Sequence[IssuedCredential], *, product: str, login_url: str) -> bytes:
    """The letters as PDF bytes: one A4 page per person, in the order given (class, then name)."""
    pdf = _Letters(product, login_url)
    for credential in issued:
        pdf.letter(credential)
    return bytes(pdf.output())


def write_letters(path: Path, issued: Sequence[IssuedCredential], *, product: str, login_url: str) -> None:
    """``letters_pdf`` written to a file readable by its owner only."""
    data = letters_pdf(issued, product=product, login_url=login_url)
    with os.fdopen(_private_open(path), "wb") as out:
        out.write(data)
