"""Identifier building from register names, and normalisation of what users type (SECURITY A19)."""

from __future__ import annotations

import pytest

from idp.core.accounts.identifiers import (
    IDENTIFIER_RE,
    fold_text,
    format_identifier,
    identifier_base,
    initial_for_identifier,
    next_free_number,
    normalise_login_input,
    normalise_name_for_identifier,
)


@pytest.mark.parametrize(
    ("family_name", "expected"),
    [
        ("Dupont", "dupont"),
        ("DUPONT", "dupont"),
        ("Le Gall", "legall"),
        ("de La Fontaine", "fontaine"),
        ("De la Fontaine", "fontaine"),
        ("D'Artagnan", "artagnan"),
        ("D’Artagnan", "artagnan"),
        ("d' Artagnan", "artagnan"),
        ("de l'Isle", "isle"),
        ("de L’Estrange", "estrange"),
        ("de Les Granges", "granges"),
        ("Du Bellay", "bellay"),
        ("Des Rosiers", "rosiers"),
        ("de Gaulle", "gaulle"),
        ("Van der Berg", "berg"),
        ("van den Broek", "broek"),
        ("Von der Leyen", "leyen"),
        ("Van Gogh", "gogh"),
        ("von Braun", "braun"),
        ("Saint-Exupéry", "saintexupery"),
        ("N'Diaye", "ndiaye"),
        ("N’Diaye", "ndiaye"),
        ("L'Hôpital", "lhopital"),
        ("La Fontaine", "lafontaine"),
        ("Martin-Dupont", "martindupont"),
        ("Müller", "muller"),
        ("Éléonore", "eleonore"),
        ("Çelik", "celik"),
        ("Nuñez", "nunez"),
        ("Œuvrard", "oeuvrard"),
        ("Lætitia", "laetitia"),
        ("Strauß", "strauss"),
        ("Øster", "oster"),
        ("  Dupont  ", "dupont"),
        ("Dupont 2", "dupont"),
        ("O'Brien", "obrien"),
    ],
)
def test_family_name_is_normalised(family_name: str, expected: str) -> None:
    assert normalise_name_for_identifier(family_name) == expected


@pytest.mark.parametrize(
    ("family_name", "expected"),
    [
        # A name that is only a particle is kept rather than emptied.
        ("Du", "du"),
        ("De", "de"),
        ("Van", "van"),
        ("De La", "dela"),
        ("D'", "d"),
    ],
)
def test_particle_alone_is_kept(family_name: str, expected: str) -> None:
    assert normalise_name_for_identifier(family_name) == expected


@pytest.mark.parametrize("family_name", ["", "   ", "---", "'’", "123", "王", "Σ"])
def test_name_without_latin_letters_gives_x(family_name: str) -> None:
    assert normalise_name_for_identifier(family_name) == "x"


def test_long_name_is_truncated_to_twenty_letters() -> None:
    name = normalise_name_for_identifier("Montmorency-Laval-Bouteville-Luxembourg")
    assert name == "montmorencylavalbout"
    assert len(name) == 20


def test_truncation_counts_letters_after_expanding_ligatures() -> None:
    assert normalise_name_for_identifier("Œœœœœœœœœœœ") == "oe" * 10


@pytest.mark.parametrize(
    ("given_names", "expected"),
    [
        ("Marie", "m"),
        ("Élodie Marie", "e"),
        ("élodie", "e"),
        ("Œdipe", "o"),
        ("Jean-Pierre", "j"),
        ("  Zoé", "z"),
        ("", "x"),
        ("---", "x"),
        ("李", "x"),
    ],
)
def test_initial(given_names: str, expected: str) -> None:
    assert initial_for_identifier(given_names) == expected


@pytest.mark.parametrize(
    ("given_names", "family_name", "expected"),
    [
        ("Marie", "Dupont", "m.dupont"),
        ("Élodie Marie", "de La Fontaine", "e.fontaine"),
        ("Amadou", "N'Diaye", "a.ndiaye"),
        ("", "***", "x.x"),
    ],
)
def test_identifier_base(given_names: str, family_name: str, expected: str) -> None:
    assert identifier_base(given_names, family_name) == expected


def test_format_identifier_appends_number() -> None:
    identifier = format_identifier("m.dupont", 7)
    assert identifier == "m.dupont7"
    assert IDENTIFIER_RE.fullmatch(identifier)


@pytest.mark.parametrize("number", [0, -1, 1_000_000])
def test_format_identifier_rejects_numbers_out_of_range(number: int) -> None:
    with pytest.raises(ValueError):
        format_identifier("m.dupont", number)


@pytest.mark.parametrize(
    ("given_names", "family_name"),
    [
        ("Marie", "Dupont"),
        ("Élodie", "Montmorency-Laval-Bouteville-Luxembourg"),
        ("", ""),
        ("Œdipe", "Strauß"),
    ],
)
def test_built_identifiers_match_the_pattern(given_names: str, family_name: str) -> None:
    identifier = format_identifier(identifier_base(given_names, family_name), 999_999)
    assert IDENTIFIER_RE.match(identifier)


@pytest.mark.parametrize(
    "text",
    ["m.dupont", "m.dupont1234567", "M.dupont7", "m.dupont7 ", "md.upont7", "m.dupont-7", "m.7", ".dupont7"],
)
def test_pattern_rejects_malformed_identifiers(text: str) -> None:
    assert IDENTIFIER_RE.match(text) is None


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("  M.Dupont7  ", "m.dupont7"),
        ("m.dupont7\n", "m.dupont7"),
        ("Ｍ．ＤＵＰＯＮＴ７", "m.dupont7"),  # full-width keyboard input, folded by NFKC
        ("' OR 1=1--", "' or 1=1--"),  # treated as text, not interpreted
    ],
)
def test_login_input_is_normalised(typed: str, expected: str) -> None:
    assert normalise_login_input(typed) == expected


def test_login_input_is_capped_to_64_characters() -> None:
    assert normalise_login_input("  " + "a" * 200) == "a" * 64


def test_fold_text_matches_names_regardless_of_case_and_accents() -> None:
    assert fold_text("Élodie") == fold_text("ELODIE") == "elodie"


@pytest.mark.parametrize(("taken", "expected"), [
    ([], 1),
    (["m.dupont1", "m.dupont2"], 3),
    (["m.dupont1", "m.dupont7"], 8),  # after the highest, not in a gap
    (["m.dupontel3", "m.dupont", "m.dupont2x", "m.dupont1234567"], 1),  # other bases and malformed rows ignored
    (["m.dupont4", "m.dupont4"], 5),  # an identifier both held by an account and still listed as reserved
])
def test_next_free_number_follows_the_highest_of_the_base(taken: list[str], expected: int) -> None:
    assert next_free_number("m.dupont", taken) == expected
