"""A campaign's forced password change in CAS: no ticket from a live session, the login goes through the
change-password step, and the ticket comes once the new password is set."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import update

from idp.storage.models import AccountRow
from idp.wiring import Services

from .conftest import PASSWORD, CasBrowser, People, csrf_of, ticket_from

NEW_PASSWORD = "Nouveau-Cartable-2026!"


def _flag(services: Services, account_id: int) -> None:
    with services.uow() as uow:
        uow.session.execute(update(AccountRow).where(AccountRow.id == account_id).values(must_change_password=True))
        uow.commit()


def test_cas_answers_only_after_the_new_password(browser: CasBrowser, register: Any, people: People,
                                                 services: Services, login: Any) -> None:
    register()
    browser.first_login(people.parent.identifier)
    _flag(services, people.parent.id)
    again = browser.sso()
    assert again.status_code in (302, 303) and "/login/" in again.headers["Location"]  # no ticket from the session
    form_url = again.headers["Location"]
    done = login.submit(form_url + "?profil=parent", people.parent.identifier, PASSWORD)
    assert done.status_code == 303 and "/login/mot-de-passe-a-changer" in done.headers["Location"]
    request_id = re.search(r"demande=([A-Za-z0-9_-]+)", done.headers["Location"]).group(1)  # type: ignore[union-attr]
    assert browser.client.get(f"/cas/resume/{request_id}").status_code == 400  # refused before the change
    page = browser.client.get(done.headers["Location"])
    changed = browser.client.post(done.headers["Location"], data={
        "csrf_token": csrf_of(page), "mot_de_passe": NEW_PASSWORD, "confirmation": NEW_PASSWORD,
        "demande": request_id})
    assert changed.status_code == 303 and changed.headers["Location"].endswith(f"/cas/resume/{request_id}")
    assert ticket_from(browser.client.get(changed.headers["Location"]))
