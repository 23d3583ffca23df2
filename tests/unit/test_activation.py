"""Core pieces of activation without the app: matching rules (A19), phone numbers (A02), codes (A04, A07),
provisional passwords, SMS texts, and the memory adapters."""

from __future__ import annotations

import pytest

from idp.core.activation import codes, messages
from idp.core.activation.matching import (
    mask_e164,
    name_problem,
    names_match,
    parse_phone,
    register_forms,
    sms_destination,
)
from idp.core.activation.provisional import email_problem, new_provisional_password
from idp.core.delivery import DeliveryFailed, MailMessage
from idp.delivery.memory import MemoryMailer, MemorySmsSender

REGIONS = ("FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF")


@pytest.mark.parametrize(("typed_family", "typed_given", "family", "given"), [
    ("Élodie", "ÉLODIE", "ELODIE", "élodie"),
    ("dupont", "Jean-Pierre", "DUPONT", "Jean Pierre"),
    ("N'Diaye", "Awa", "NDIAYE", "Awa Marie"),
    ("Œuvrard", "Inès", "OEUVRARD", "Ines"),
    ("le gall", "Anne", "Le-Gall", "Anne"),
    ("ﬁlion", "Zoé", "Filion", "Zoe"),  # NFKC ligature
])
def test_names_match_after_documented_normalisation(typed_family: str, typed_given: str, family: str,
                                                    given: str) -> None:
    assert names_match(typed_family, typed_given, family, given)


@pytest.mark.parametrize(("typed_family", "typed_given", "family", "given"), [
    ("Dupont", "Marie", "Dupond", "Marie"),
    ("Dupont", "Claire", "Dupont", "Marie Claire"),  # the first given name or all of them, not any
    ("' OR 1=1--", "x", "Dupont", "Marie"),
    ("", "", "", ""),
])
def test_names_that_do_not_match(typed_family: str, typed_given: str, family: str, given: str) -> None:
    assert not names_match(typed_family, typed_given, family, given)


def test_name_input_hardening() -> None:
    assert name_problem("", "nom")
    assert name_problem("a" * 101, "nom")
    assert name_problem("Dup\x00ont", "nom")
    assert name_problem("1234", "nom")
    assert name_problem("Dupont", "nom") == ""


@pytest.mark.parametrize(("typed", "e164"), [
    ("06 12 34 56 78", "+33612345678"), ("+33 6 12 34 56 78", "+33612345678"), ("0033612345678", "+33612345678"),
    ("06.12.34.56.78", "+33612345678"), ("+590 690 12 34 56", "+590690123456"), ("0690 12 34 56", "+590690123456"),
    ("0692 12 34 56", "+262692123456"), ("+44 7911 123456", "+447911123456"),
])
def test_phone_numbers_are_parsed_to_e164(typed: str, e164: str) -> None:
    assert parse_phone(typed) == e164


@pytest.mark.parametrize("typed", ["", "abc", "12", "06 12", "+33 6 12 34 56 78 99 99 99"])
def test_not_phone_numbers(typed: str) -> None:
    assert parse_phone(typed) is None


def test_sms_only_to_mobiles_of_allowed_regions() -> None:
    assert sms_destination("+33612345678", REGIONS) == "+33612345678"
    assert sms_destination("+590690123456", REGIONS) == "+590690123456"
    assert sms_destination("+33123456789", REGIONS) is None  # landline
    assert sms_destination("+447911123456", REGIONS) is None  # not an allowed region (SMS pumping)
    assert sms_destination("+33899123456", REGIONS) is None  # premium rate
    assert sms_destination("", REGIONS) is None


def test_register_forms_and_masks() -> None:
    assert register_forms("+590690123456") == ["+590690123456", "+33690123456"]
    assert register_forms("+33612345678") == ["+33612345678"]
    assert mask_e164("+33612345678") == "+33 6 •• •• •• 78"


def test_codes_alphabet_hash_and_binding() -> None:
    seen = {codes.new_code() for _ in range(2000)}
    assert len(seen) > 1990 and all(len(c) == 6 and set(c) <= set(codes.ALPHABET) for c in seen)
    assert codes.normalise_code(" k7x-q2m ") == "K7XQ2M"
    stored = codes.code_hash("secret", "parent_sms", "tx1", "K7XQ2M")
    assert len(stored) == 64 and "K7XQ2M" not in stored
    assert codes.same_code("secret", "parent_sms", "tx1", "k7xq2m", stored)
    assert not codes.same_code("secret", "recover_password", "tx1", "K7XQ2M", stored)
    assert not codes.same_code("secret", "parent_sms", "tx2", "K7XQ2M", stored)
    assert not codes.same_code("other", "parent_sms", "tx1", "K7XQ2M", stored)


def test_provisional_passwords_are_easy_to_copy_and_strong() -> None:
    passwords = {new_provisional_password() for _ in range(500)}
    assert len(passwords) == 500
    for p in passwords:
        assert len(p) == 14 and p.count("-") == 2
        assert not set(p) & set("0O1lIo")
        assert any(c.isupper() for c in p) and any(c.islower() for c in p) and any(c.isdigit() for c in p)


def test_email_shape() -> None:
    assert email_problem("parent@example.fr") == ""
    assert email_problem("parent@") and email_problem("a b@example.fr") and email_problem("x" * 250 + "@a.fr")


def test_sms_texts_are_short_plain_french() -> None:
    texts = [messages.activation_code("Compte scolaire", "K7XQ2M", 30),
             messages.reset_code("Compte scolaire", "K7XQ2M", 30),
             messages.identifiers("Compte scolaire", [("m.dupont7", "Représentant légal")])]
    for text in texts:
        assert len(text) <= 160 and "Compte scolaire" in text
    assert "valable 30 min" in texts[0]


def test_memory_adapters_record_and_fail_on_demand() -> None:
    mailer, sms = MemoryMailer(), MemorySmsSender()
    mailer.send(MailMessage("a@example.fr", "s", "b"))
    sms.send("+33612345678", "t")
    assert mailer.sent[0].to == "a@example.fr" and sms.sent[0].text == "t"
    sms.failing = True
    with pytest.raises(DeliveryFailed):
        sms.send("+33612345678", "t")
