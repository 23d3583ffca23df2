"""Issue 17: a register change (a pupil changes school) reaches the next CAS validation of the same SSO session,
not the next SSO session, with the tickets in the database and in Redis; for a single-logout service too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cas import CASClient
from register_files import NEW_SCHOOL, SCHOOL, pupil_changes_school, registered_pupil

from idp.wiring import Services

from .conftest import SERVICE, CasBrowser, ticket_from


@pytest.mark.parametrize("slo", [False, True])
def test_the_next_ticket_carries_the_pupils_new_school(browser: CasBrowser, register: Any, live: str,
                                                       services: Services, account_factory: Any,
                                                       tmp_path: Path, slo: bool) -> None:
    pupil = registered_pupil(services, account_factory, tmp_path)
    register(slo=slo)
    client = CASClient(version=3, service_url=SERVICE, server_url=live)
    _, attrs, _ = client.verify_ticket(browser.first_login(pupil.identifier))
    assert attrs["FrEduCtEleveUAI"] == SCHOOL
    _, attrs, _ = client.verify_ticket(ticket_from(browser.sso()))  # from the session's attributes copy
    assert attrs["FrEduCtEleveUAI"] == SCHOOL

    pupil_changes_school(services, tmp_path)

    _, attrs, _ = client.verify_ticket(ticket_from(browser.sso()))
    assert attrs["FrEduCtEleveUAI"] == NEW_SCHOOL
    _, attrs, _ = client.verify_ticket(ticket_from(browser.sso()))  # the new copy is the one kept
    assert attrs["FrEduCtEleveUAI"] == NEW_SCHOOL
