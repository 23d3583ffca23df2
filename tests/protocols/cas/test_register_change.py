"""Issue 17: a register change (a pupil changes school) reaches the next CAS validation of the same SSO session,
not the next SSO session, with the tickets in the database and in Redis; for a single-logout service too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cas import CASClient
from register_files import pupil_moved, register_dir, run_import

from idp.core.accounts.model import Profile
from idp.wiring import Services

from .conftest import SERVICE, CasBrowser, ticket_from

PUPIL_INE = "1234567890A"  # tests/data/register/valid: collège 0690026D


@pytest.mark.parametrize("slo", [False, True])
def test_the_next_ticket_carries_the_pupils_new_school(browser: CasBrowser, register: Any, live: str,
                                                       services: Services, account_factory: Any,
                                                       tmp_path: Path, slo: bool) -> None:
    assert run_import(services, register_dir(tmp_path)).applied
    pupil = account_factory("Léa", "Dupont", profile=Profile.STUDENT)
    with services.uow() as uow:
        uow.accounts.link_register(pupil.id, student_ines=[PUPIL_INE])
        uow.commit()
    register(slo=slo)
    client = CASClient(version=3, service_url=SERVICE, server_url=live)
    _, attrs, _ = client.verify_ticket(browser.first_login(pupil.identifier))
    assert attrs["FrEduCtEleveUAI"] == "0690026D"
    _, attrs, _ = client.verify_ticket(ticket_from(browser.sso()))  # from the session's attributes copy
    assert attrs["FrEduCtEleveUAI"] == "0690026D"

    services.clock.advance(minutes=5)
    assert run_import(services, pupil_moved(tmp_path, "v2", PUPIL_INE, "0750654D")).applied

    _, attrs, _ = client.verify_ticket(ticket_from(browser.sso()))
    assert attrs["FrEduCtEleveUAI"] == "0750654D"
    _, attrs, _ = client.verify_ticket(ticket_from(browser.sso()))  # the new copy is the one kept
    assert attrs["FrEduCtEleveUAI"] == "0750654D"
