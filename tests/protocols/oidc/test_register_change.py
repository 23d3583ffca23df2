"""Issue 17: a register change (a pupil changes school) reaches the next UserInfo answer for an access token
already issued in the SSO session (claims are read from the register at each request)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from register_files import NEW_SCHOOL, SCHOOL, pupil_changes_school, registered_pupil

from idp.wiring import Services

from .conftest import Browser, Clients


def test_userinfo_carries_the_pupils_new_school(browser: Browser, clients: Clients, services: Services,
                                               account_factory: Any, tmp_path: Path) -> None:
    pupil = registered_pupil(services, account_factory, tmp_path)
    rp = clients(scopes=("openid", "fr_edu"))
    token = browser.tokens(rp, pupil.identifier, scope="openid fr_edu")["access_token"]
    assert browser.userinfo(token).get_json()["FrEduCtEleveUAI"] == [SCHOOL]

    pupil_changes_school(services, tmp_path)

    assert browser.userinfo(token).get_json()["FrEduCtEleveUAI"] == [NEW_SCHOOL]
