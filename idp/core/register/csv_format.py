"""The documented CSV register format (docs/register-format.md): four files, read one row at a time.

UTF-8 with or without BOM, ``;`` or ``,`` (sniffed from the header line), a header row whose column names
are matched without regard to case or accents. Each physical line is decoded on its own so an encoding
error names its line. A file that cannot be read as a whole (no header, wrong header, bad encoding) yields
a fatal ``RowError``: nothing is imported from it, even with --skip-invalid.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from idp.core.register import validation as v
from idp.core.register.records import Kind, Link, Parsed, Representative, RowError, School, Student

#: File names looked for when a directory is given.
FILE_NAMES = {Kind.SCHOOL: "etablissements.csv", Kind.STUDENT: "eleves.csv",
              Kind.REPRESENTATIVE: "responsables.csv", Kind.LINK: "liens.csv"}

Row = Sequence[str]
Columns = dict[str, int]


@dataclass(frozen=True)
class Layout:
    """The columns of one file, in the order the builder reads them, and how a row becomes a record."""

    required: tuple[str, ...]
    optional: tuple[str, ...]
    build: Callable[[int, Row, dt.date], School | Student | Representative | Link]
    key_width: int  # leading columns forming the key a rejected row is remembered by (0: none)


class _FileError(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


# Rows reaching the builders are clean and in the layout's column order (see ``read_csv``). The common case
# (a valid, already normalised value) is checked inline; anything else goes through the full check, which
# normalises it or raises the French reason: same result, a fraction of the calls per row.
_ine_ok = re.compile(r"[0-9]{9}[0-9A-Z][A-Z]").fullmatch
_uai, _postal = v.uai, v.postal_code
_SEP = v.SEPARATOR  # a name with it goes through the full check, which refuses it


def _name(value: str, label: str) -> str:
    return value if 0 < len(value) <= v.NAME_MAX and value[0].isalpha() and _SEP not in value \
        else v.name(value, label)


def _pupil_id(value: str, label: str) -> str:
    return value if len(value) <= v.CODE_MAX and _SEP not in value else v.pupil_id(value, label)


def _school(line: int, r: Row, today: dt.date) -> School:
    return School(line, _uai(r[0]), v.text(r[1], "nom", required=True, limit=200), v.school_kind(r[2]),
                  v.text(r[3], "académie", required=True, limit=80), v.text(r[4], "commune", limit=120))


def _student(line: int, r: Row, today: dt.date) -> Student:
    ine, family, given, class_code, level = r[0], r[2], r[3], r[5], r[6]
    return Student(line, ine if _ine_ok(ine) else v.ine(ine), _uai(r[1]),
                   family if 0 < len(family) <= 100 and family[0].isalpha() and _SEP not in family
                   else v.name(family, "nom"),
                   given if 0 < len(given) <= 100 and given[0].isalpha() and _SEP not in given
                   else v.name(given, "prénoms"),
                   v.birth_date(r[4], today),
                   class_code if len(class_code) <= 40 else v.code(class_code, "classe"),
                   level if len(level) <= 40 else v.code(level, "niveau"), _postal(r[7]),
                   _pupil_id(r[8], "id_siecle") if len(r) > 8 else "")


def _representative(line: int, r: Row, today: dt.date) -> Representative:
    external_id = r[1]
    return Representative(line, _uai(r[0]),
                          external_id if 0 < len(external_id) <= 40 else v.code(external_id, "id_responsable",
                                                                                  required=True),
                          _name(r[2], "nom"), _name(r[3], "prénoms"), v.phone(r[4]), v.email(r[5]), _postal(r[6]))


def _link(line: int, r: Row, today: dt.date) -> Link:
    ine, external_id = r[0], r[2]
    return Link(line, ine if _ine_ok(ine) else v.ine(ine), _uai(r[1]),
                external_id if 0 < len(external_id) <= 40 else v.code(external_id, "id_responsable", required=True),
                v.relationship(r[3]), v.yes_no(r[4], "responsable_legal"))


LAYOUTS = {
    Kind.SCHOOL: Layout(("uai", "nom", "type", "academie", "commune"), (), _school, 0),
    Kind.STUDENT: Layout(("ine", "uai", "nom", "prenoms", "date_naissance", "classe", "niveau", "code_postal"),
                         ("id_siecle",), _student, 1),
    Kind.REPRESENTATIVE: Layout(("uai", "id_responsable", "nom", "prenoms", "telephone_portable", "courriel",
                                 "code_postal"), (), _representative, 2),
    Kind.LINK: Layout(("ine", "uai", "id_responsable", "lien", "responsable_legal"), (), _link, 3),
}


def _key(r: Row, width: int) -> tuple[str, ...]:
    key = tuple(field.upper() for field in r[:width])
    return key if all(key) else ()


def _decoded_lines(path: Path) -> Iterator[str]:
    """The file's lines (without line ends), decoded a block of whole lines at a time.

    A bad byte is reported with its line and position: the block it is in is decoded again line by line.
    """
    number = 0
    with path.open("rb") as handle:
        tail = handle.read(4)
        if tail.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise _FileError(1, "encodage UTF-16 non pris en charge (UTF-8 attendu)")
        tail = tail.removeprefix(codecs.BOM_UTF8)
        while True:
            block = handle.read(_BLOCK)
            data = tail + block
            cut = data.rfind(b"\n") + 1 if block else len(data)
            if not cut:
                if not block:
                    return
                tail = data
                continue
            chunk, tail = data[:cut], data[cut:]
            try:
                lines = chunk.decode("utf-8").split("\n")
            except UnicodeDecodeError:
                yield from _until_bad_byte(chunk, number)
                raise
            if chunk.endswith(b"\n"):
                lines.pop()
            number += len(lines)
            yield from lines
            if not block:
                return


_BLOCK = 1 << 20


def _until_bad_byte(chunk: bytes, lines_before: int) -> Iterator[str]:
    """The lines of a block that does not decode, up to the bad one, which raises with its line."""
    for number, raw in enumerate(chunk.split(b"\n"), lines_before + 1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _FileError(number, f"encodage invalide : octet 0x{raw[exc.start]:02X} en position "
                                     f"{exc.start + 1} (le fichier doit être en UTF-8)") from None


def _column_name(raw: str) -> str:
    decomposed = unicodedata.normalize("NFKD", raw.strip().lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace(" ", "_").replace("-", "_")


def _columns(header: Row, layout: Layout) -> Columns:
    expected = ";".join(layout.required + layout.optional)
    names = [_column_name(h) for h in header]
    for name in names:
        if name not in layout.required and name not in layout.optional:
            raise _FileError(1, f"colonne inconnue « {name} » (en-tête attendu : {expected})")
        if names.count(name) > 1:
            raise _FileError(1, f"colonne « {name} » en double dans l'en-tête")
    for name in layout.required:
        if name not in names:
            raise _FileError(1, f"colonne manquante « {name} » (en-tête attendu : {expected})")
    return {name: index for index, name in enumerate(names)}


def _plain(body: str, delimiter: str) -> bool:
    """Whether a line can be split as it is: every field already trimmed, single-spaced, NFC, unquoted.

    ``isprintable`` is false for control, format (zero-width, bidi) and non-ASCII space characters.
    """
    return (body.isprintable() and '"' not in body and "  " not in body and f" {delimiter}" not in body
            and f"{delimiter} " not in body and body[:1] != " " and body[-1:] != " "
            and (body.isascii() or unicodedata.is_normalized("NFC", body)))


def _clean_row(row: Row, header: Sequence[str]) -> Row:
    return [v.clean(field, header[i] if i < len(header) else "champ") for i, field in enumerate(row)]


def _rows(path: Path, layout: Layout) -> Iterator[tuple[int, Row, Columns, str]]:
    """Data rows with their first line number and fields cleaned, or the reason they cannot be cleaned."""
    lines = _decoded_lines(path)
    header = next(lines, None)
    if header is None or not header.strip():
        raise _FileError(1, "fichier vide ou sans ligne d'en-tête")
    delimiter = ";" if ";" in header else ","
    columns = _columns(next(csv.reader([header], delimiter=delimiter)), layout)
    names = list(columns)
    number = 1
    for line in lines:
        number += 1
        start = number
        body = line[:-1] if line.endswith("\r") else line
        if _plain(body, delimiter):
            row: Row = body.split(delimiter)
        else:
            more = [0]
            try:
                row = next(csv.reader(_continued(line, lines, more), delimiter=delimiter))
            except csv.Error as exc:
                raise _FileError(start, f"CSV illisible ({exc})") from None
            number += more[0]
            try:
                row = _clean_row(row, names)
            except v.Invalid as exc:
                yield start, (), columns, str(exc)
                continue
        if any(row):
            yield start, row, columns, ""


def _continued(line: str, lines: Iterator[str], more: list[int]) -> Iterator[str]:
    """One line for the csv module, then the following ones if a quoted field goes on (counted in ``more``)."""
    yield line + "\n"
    for following in lines:
        more[0] += 1
        yield following + "\n"


def read_csv(path: Path, kind: Kind, today: dt.date) -> Iterator[Parsed]:
    """Yield one record or one ``RowError`` per data row of a register CSV file."""
    layout, name = LAYOUTS[kind], path.name
    order: list[int] = []
    try:
        for line, row, columns, problem in _rows(path, layout):
            if not order:
                order = [columns[c] for c in layout.required + layout.optional if c in columns]
                in_order = order == list(range(len(order)))
            if problem:
                yield RowError(name, line, problem)
                continue
            width = len(columns)
            if len(row) != width and (len(row) < width or any(row[width:])):
                yield RowError(name, line, f"{len(row)} champs au lieu de {width}")
                continue
            r = row if in_order else [row[i] for i in order]
            try:
                yield layout.build(line, r, today)
            except v.Invalid as exc:
                yield RowError(name, line, str(exc), key=_key(r, layout.key_width))
    except _FileError as exc:
        yield RowError(name, exc.line, exc.reason, fatal=True)
