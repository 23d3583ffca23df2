"""Issue 17: a register change (a pupil changes school) reaches the next SAML answer of the same SSO session,
although the released attributes are cached per session and SP (``caches.saml_released``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from register_files import NEW_SCHOOL, SCHOOL, pupil_changes_school, registered_pupil

from idp.wiring import Services
from tests.conftest import DEFAULT_PASSWORD
from tests.protocols.saml.conftest import OneLoginSp, login_through, path_of


def _school(sp: OneLoginSp, client: Any) -> list[str]:
    url, request_id = sp.login_url()
    auth = sp.consume(client.get(path_of(url)).get_data(as_text=True), request_id)
    assert auth.is_authenticated(), auth.get_last_error_reason()
    return auth.get_attributes()["FrEduCtEleveUAI"]  # type: ignore[no-any-return]


def test_the_next_answer_carries_the_pupils_new_school(client: Any, login: Any, account_factory: Any,
                                                      sp1: OneLoginSp, services: Services, tmp_path: Path) -> None:
    pupil = registered_pupil(services, account_factory, tmp_path)
    url, request_id = sp1.login_url()
    first = sp1.consume(login_through(client, login, url, pupil.identifier, DEFAULT_PASSWORD), request_id)
    assert first.get_attributes()["FrEduCtEleveUAI"] == [SCHOOL]
    assert _school(sp1, client) == [SCHOOL]  # the SSO session, from the released attributes cache

    pupil_changes_school(services, tmp_path)

    assert _school(sp1, client) == [NEW_SCHOOL]
