"""``idp account …``: what the helpdesk uses, with one-line French errors."""

from __future__ import annotations

import pytest
from conftest import AccountFactory, Runner

from idp.core.accounts.model import AccountState
from idp.wiring import Services


def test_every_command_has_help(runner: Runner) -> None:
    from idp.cli.main import cli

    def walk(group, path):
        for name, command in group.commands.items():
            yield [*path, name]
            if hasattr(command, "commands"):
                yield from walk(command, [*path, name])

    for path in [[], *walk(cli, [])]:
        result = runner(*path, "--help")
        assert result.exit_code == 0, path
        assert "Usage" in result.output


def test_list_and_show(runner: Runner, account_factory: AccountFactory) -> None:
    account = account_factory("Élodie", "de La Fontaine", email="elodie@example.fr")
    listed = runner("account", "list")
    assert listed.exit_code == 0 and account.identifier in listed.output
    assert account.identifier.startswith("e.fontaine")
    shown = runner("account", "show", account.identifier)
    assert shown.exit_code == 0
    assert "de La Fontaine" in shown.output and "e•••@example.fr" in shown.output
    assert "langue        non connue" in shown.output


def test_show_names_the_stored_language(runner: Runner, services: Services, account_factory: AccountFactory) -> None:
    account = account_factory("Élodie", "de La Fontaine")
    with services.uow() as uow:
        uow.accounts.set_language(account.id, "ar")
        uow.commit()
    assert "langue        arabe" in runner("account", "show", account.identifier).output


def test_unknown_account_fails_with_one_line(runner: Runner) -> None:
    result = runner("account", "show", "z.personne1")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["erreur : aucun compte avec l'identifiant « z.personne1 »"]


def test_lock_and_unlock(runner: Runner, account_factory: AccountFactory, services: Services) -> None:
    account = account_factory()
    assert runner("account", "lock", account.identifier).exit_code == 0
    assert services.accounts.get(account.identifier).state is AccountState.LOCKED
    assert runner("account", "unlock", account.identifier).exit_code == 0
    assert services.accounts.get(account.identifier).state is AccountState.ACTIVE


def test_set_password_from_stdin_applies_the_policy(runner: Runner, account_factory: AccountFactory,
                                                    services: Services) -> None:
    account = account_factory("Marie", "Dupont")
    weak = runner("account", "set-password", account.identifier, input="azerty\n")
    assert weak.exit_code == 1
    assert "au moins 8 caractères" in weak.output and "majuscule" in weak.output
    context = runner("account", "set-password", account.identifier, input="Dupont-Marie-2024!\n")
    assert context.exit_code == 1 and "votre nom" in context.output
    ok = runner("account", "set-password", account.identifier, input="Tulipe-Bleue-Soir-9\n")
    assert ok.exit_code == 0, ok.output
    stored = services.accounts.get(account.identifier).password_hash
    assert services.hasher.verify(stored, "Tulipe-Bleue-Soir-9")


@pytest.mark.parametrize("args", [["account", "show"], ["account", "frobnicate"], ["nope"]])
def test_usage_errors_exit_non_zero(runner: Runner, args: list[str]) -> None:
    assert runner(*args).exit_code != 0
