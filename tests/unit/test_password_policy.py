"""Password policy: composition, length, blocklist and context words (SECURITY A11)."""

from __future__ import annotations

import json

import pytest

from idp.core.accounts.identifiers import SPECIAL_LETTERS
from idp.core.passwords.blocklist import MIN_RUN_LENGTH, common_passwords, is_common, script_data
from idp.core.passwords.policy import (
    PasswordContext,
    PasswordPolicy,
    Violation,
    check_password,
    checklist_data,
    contains_context,
    describe_rules,
)

POLICY = PasswordPolicy()
STRONG = "Velo-Rouge-Garonne-42"

MESSAGES = {
    "too_short": "Le mot de passe doit contenir au moins 8 caractères.",
    "no_upper": "Le mot de passe doit contenir au moins une lettre majuscule.",
    "no_lower": "Le mot de passe doit contenir au moins une lettre minuscule.",
    "no_digit": "Le mot de passe doit contenir au moins un chiffre.",
    "no_special": "Le mot de passe doit contenir au moins un caractère spécial (! ? @ # $ …).",
    "common": "Ce mot de passe est trop courant : choisissez-en un autre, plus personnel.",
    "context": "Le mot de passe ne doit pas contenir votre identifiant, votre nom ou celui de vos enfants.",
}


def codes(violations: list[Violation]) -> list[str]:
    return [violation.code for violation in violations]


def test_strong_personal_password_is_accepted() -> None:
    context = PasswordContext(
        identifier="m.dupont7",
        names=("Dupont", "Marie", "Lucas"),
        extra_words=("Collège Jean Moulin",),
        birth_years=(1982, 2012),
    )
    assert check_password(STRONG, POLICY, context) == []


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("Vl-R7!k", "too_short"),
        ("vlouge-garonne-42", "no_upper"),
        ("VLOUGE-GARONNE-42", "no_lower"),
        ("Vlouge-Garonne-xy", "no_digit"),
        ("VlougeGaronne42", "no_special"),
    ],
)
def test_each_rule_reports_its_french_reason(password: str, code: str) -> None:
    assert check_password(password, POLICY) == [Violation(code, MESSAGES[code])]


def test_every_broken_rule_is_reported_in_a_stable_order() -> None:
    violations = check_password("", POLICY)
    assert codes(violations) == ["too_short", "no_upper", "no_lower", "no_digit", "no_special"]
    assert [v.message for v in violations] == [MESSAGES[code] for code in codes(violations)]


def test_composition_and_blocklist_and_context_together() -> None:
    context = PasswordContext(names=("Azerty",))
    assert codes(check_password("azerty", POLICY, context)) == [
        "too_short",
        "no_upper",
        "no_digit",
        "no_special",
        "common",
        "context",
    ]


@pytest.mark.parametrize(
    "special", list("!?@#$(){}[]_&=+-%*<>£/;:,.µ") + ["€", "§", "~", "^", "|", "\\", "«", "😀"]
)
def test_any_symbol_counts_as_special(special: str) -> None:
    assert check_password(f"Vlouge{special}Garonne42", POLICY) == []


def test_space_is_allowed_but_is_not_a_special_character() -> None:
    assert codes(check_password("Vlouge Garonne 42", POLICY)) == ["no_special"]
    assert check_password("Vlouge Garonne 42 !", POLICY) == []


@pytest.mark.parametrize(
    "password",
    [
        "ÉLÉPHANT-rose-91",  # accented upper-case letters count as upper-case
        "éléphant-ROSE-91",
        "Ça-glisse-sur-l’Érdre-7",
        "Привет-Мир-2024!",  # any alphabet
        "Vlouge Garonne 42 ! avec des espaces",
    ],
)
def test_unicode_passwords_are_accepted(password: str) -> None:
    assert check_password(password, POLICY) == []


def test_nfkc_normalisation_applies_before_counting() -> None:
    # Full-width letters and digits become ordinary ones, so the rule sees upper, lower and digit.
    assert check_password("Ｖｌｏｕｇｅ-Ｇａｒｏｎｎｅ-４２", POLICY) == []


def test_long_passwords_are_accepted_without_truncation() -> None:
    sixty_five = "Vlouge-Garonne-42-" + "x" * 47
    two_hundred = "Vlouge-Garonne-42-" + "mQ7!" * 45 + "zz"
    assert len(sixty_five) == 65 and len(two_hundred) == 200
    assert check_password(sixty_five, POLICY) == []
    assert check_password(two_hundred, POLICY) == []


def test_password_over_the_maximum_is_too_long() -> None:
    password = "Vlouge-Garonne-42-" + "mQ7!" * 70 + "zz"
    assert len(password) == 300
    assert check_password(password, POLICY) == [
        Violation("too_long", "Le mot de passe ne doit pas dépasser 256 caractères.")
    ]


@pytest.mark.parametrize("control", ["\t", "\n", "\x00", "\x1b", "\x7f"])
def test_control_characters_are_rejected(control: str) -> None:
    violations = check_password(f"Vlouge-Garonne{control}42", POLICY)
    assert codes(violations) == ["control_chars"]
    assert "contrôle" in violations[0].message


@pytest.mark.parametrize(
    "password",
    [
        "Azerty123!",
        "P@ssw0rd2024",
        "Motdepasse1!",
        "Mot-de-Passe-2024!",
        "Soleil2024!",
        "Marseille13!",
        "B0nj0ur!2023",
        "D0ud0u!!",
        "Ch0uch0u#1",
        "L0ul0u@75",
        "Nicolas1982!",
        "Educonnect1!",
        "Pronote2024?",
        "Qwerty123$",
        "Football-98",
        "@zerty2024",
        "Pr1nc3ss3!",
        "123456Aa!",
        "!Azertyuiop1",
        "AzertyAzerty1!",
        "Abcdefg1!",
        "Aaaaaaa1!",
        "Zyxwvut9!",
        "12345678Aa!",
    ],
)
def test_common_passwords_and_decorated_base_words_are_rejected(password: str) -> None:
    assert is_common(password)
    violations = check_password(password, POLICY)
    assert Violation("common", MESSAGES["common"]) in violations


@pytest.mark.parametrize("password", [STRONG, "Tr0ttinette-Bleue!", "Kiwi&Mangue&Litchi7", "Desert#Vandale9"])
def test_uncommon_passwords_pass_the_blocklist(password: str) -> None:
    assert not is_common(password)


def test_blocklist_is_large_and_folded() -> None:
    listed = common_passwords()
    assert len(listed) >= 1000
    assert {"azerty", "motdepasse", "password", "soleil", "educonnect", "marseille", "123456"} <= listed
    assert all(word == word.lower() and word.isascii() for word in listed)


@pytest.mark.parametrize(
    ("password", "context"),
    [
        ("M.dupont7-Garonne!", PasswordContext(identifier="m.dupont7")),
        ("Dupont2024!x", PasswordContext(identifier="m.dupont7")),
        ("dupont2024!X", PasswordContext(names=("Dupont",))),
        ("Du-Pont-Garonne-42", PasswordContext(names=("Dupont",))),
        ("J'aime-Éloïse-42", PasswordContext(names=("ELOISE",))),
        ("Vive-Lucas-2012!", PasswordContext(names=("Marie", "Lucas"))),
        ("Vive-Luc@s-99!", PasswordContext(names=("Lucas",))),
        ("Garonne-Fontaine-9!", PasswordContext(names=("de La Fontaine",))),
        ("Mon-EduConnect-42!", PasswordContext()),
        ("Velo-Rouge-1982!", PasswordContext(birth_years=(1982,))),
        ("Moulin-Rouge-42!", PasswordContext(extra_words=("Collège Jean Moulin",))),
    ],
)
def test_context_words_are_rejected(password: str, context: PasswordContext) -> None:
    assert Violation("context", MESSAGES["context"]) in check_password(password, POLICY, context)


@pytest.mark.parametrize(
    ("password", "context"),
    [
        # Short name parts and particles are not context words: they are everywhere.
        ("Desert-Rouge-42!", PasswordContext(names=("Des Rosiers", "Lé"))),
        ("Velo-Rouge-1983!", PasswordContext(birth_years=(1982,))),
        (STRONG, PasswordContext(names=("Van der Berg",))),
    ],
)
def test_context_check_ignores_short_words_and_other_years(password: str, context: PasswordContext) -> None:
    assert "context" not in codes(check_password(password, POLICY, context))


def test_stricter_policy_and_disabled_rules() -> None:
    strict = PasswordPolicy(min_length=15)
    assert codes(check_password("Velo-Rouge-G42", strict)) == ["too_short"]
    assert check_password("Velo-Rouge-Ga42", strict) == []
    assert "Au moins 15 caractères" in dict(describe_rules(strict)).values()
    relaxed = PasswordPolicy(require_upper=False, require_special=False)
    assert check_password("velorougegaronne42", relaxed) == []


@pytest.mark.parametrize(("min_length", "max_length"), [(0, 256), (8, 32), (200, 150)])
def test_inconsistent_policy_is_refused(min_length: int, max_length: int) -> None:
    with pytest.raises(ValueError):
        PasswordPolicy(min_length=min_length, max_length=max_length)


def test_describe_rules_lists_every_rule_the_server_applies_in_french() -> None:
    assert describe_rules(POLICY) == [
        ("too_short", "Au moins 8 caractères"),
        ("no_upper", "Une lettre majuscule"),
        ("no_lower", "Une lettre minuscule"),
        ("no_digit", "Un chiffre"),
        ("no_special", "Un caractère spécial (! ? @ # $ …)"),
        ("common", "Pas un mot de passe courant (comme « Azerty123! »)"),
        ("context", "Ni votre identifiant, ni votre nom, ni le prénom de vos enfants"),
    ]
    assert [code for code, _ in describe_rules(PasswordPolicy(require_digit=False))] == [
        "too_short",
        "no_upper",
        "no_lower",
        "no_special",
        "common",
        "context",
    ]
    # Every code check_password can answer with (but the length limit and control characters, which a person
    # meets only by pasting) is on the checklist: nothing is refused that the page did not announce.
    shown = {code for code, _ in describe_rules(POLICY)}
    assert {"too_short", "no_upper", "no_lower", "no_digit", "no_special", "common", "context"} <= shown


def test_checklist_data_is_the_server_policy_for_this_person() -> None:
    """The live checklist gets the server's minimum and exactly the words and years the server refuses."""
    context = PasswordContext(identifier="S.Martin3", names=("Martin", "Sophie", "Éloïse Dupont-Lefèvre"),
                              birth_years=(2012, 2012, 2015))
    data = checklist_data(PasswordPolicy(min_length=12), context)
    assert data["min"] == 12 and data["identifier"] == "s.martin3" and data["years"] == ["2012", "2015"]
    assert {"martin", "sophie", "eloise", "dupont", "lefevre", "educonnect"} <= set(data["words"])
    for word in data["words"]:
        assert contains_context(f"Xq!{word}9Z", context)
    assert "context" in codes(check_password("Velo-2015-Rouge!", POLICY, context))
    assert checklist_data(POLICY)["words"] == ["educonnect"]


def test_script_data_is_the_server_common_list_and_tables() -> None:
    data = script_data()
    assert data["list"] == sorted(common_passwords()) and data["min_run"] == MIN_RUN_LENGTH
    assert data["letters"] == {chr(k): v for k, v in SPECIAL_LETTERS.items()}
    assert data["leet"]["@"] == "a" and data["leet_one"] == ["i", "l"]
    assert len(json.dumps(data)) < 20_000  # small enough to be one cached file
