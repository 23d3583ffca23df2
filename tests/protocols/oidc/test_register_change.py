"""Issue 17: a register change (a pupil changes school) reaches the next UserInfo answer for an access token
already issued in the SSO session (claims are read from the register at each request)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from register_files import pupil_moved, register_dir, run_import

from idp.core.accounts.model import Profile
from idp.wiring import Services

from .conftest import Browser, Clients

PUPIL_INE = "1234567890A"  # tests/data/register/valid: collège 0690026D


def test_userinfo_carries_the_pupils_new_school(browser: Browser, clients: Clients, services: Services,
                                               account_factory: Any, tmp_path: Path) -> None:
    assert run_import(services, register_dir(tmp_path)).applied
    pupil = account_factory("Léa", "Dupont", profile=Profile.STUDENT)
    with services.uow() as uow:
        uow.accounts.link_register(pupil.id, student_ines=[PUPIL_INE])
        uow.commit()
    rp = clients(scopes=("openid", "fr_edu"))
    token = browser.tokens(rp, pupil.identifier, scope="openid fr_edu")["access_token"]
    assert browser.userinfo(token).get_json()["FrEduCtEleveUAI"] == ["0690026D"]

    services.clock.advance(minutes=1)
    assert run_import(services, pupil_moved(tmp_path, "v2", PUPIL_INE, "0750654D")).applied

    assert browser.userinfo(token).get_json()["FrEduCtEleveUAI"] == ["0750654D"]
