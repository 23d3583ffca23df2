"""The funnel's figures against a register built here, per school and class, by route; the CSV export."""

from __future__ import annotations

import datetime as dt

from flask.testing import FlaskClient
from sqlalchemy import update

from idp.core.accounts.model import AccountState
from idp.core.ports import AuditEvent
from idp.storage.models import AccountRow
from idp.wiring import Services

from .staff_support import SCHOOL_A, SCHOOL_B, Register, account_for, enrol


def _activated_by(services: Services, account_id: int, event: str) -> None:
    with services.uow() as uow:
        uow.audit.record(AuditEvent(event=event, at=services.clock.now(), account_id=account_id))
        uow.commit()


def _logged_in(services: Services, account_id: int, at: dt.datetime) -> None:
    with services.uow() as uow:
        uow.session.execute(update(AccountRow).where(AccountRow.id == account_id).values(last_login_at=at))
        uow.commit()


def test_funnel_figures_per_school_and_class(client: FlaskClient, services: Services, register: Register) -> None:
    # Register of school A: Léa (5A, active, activated by letter, logged in this month), Zoé (5A, provisional),
    # Tom (5B, no account); parents Sophie (Léa, active by SMS, logged in last month) and Paul (Tom, none).
    zoe = account_for(services, "student", register.students["zoe"], "Zoé", "Petit", state=AccountState.PROVISIONAL)
    _activated_by(services, register.accounts["lea"], "provisional.completed")
    _activated_by(services, register.accounts["sophie"], "activation.completed")
    now = services.clock.now()  # 2026-09-01 08:00
    _logged_in(services, register.accounts["lea"], now)
    _logged_in(services, register.accounts["sophie"], now - dt.timedelta(days=2))
    _logged_in(services, zoe, now)  # a provisional login: an account, not activated
    enrol(client, services, "ref@college.fr", SCHOOL_A)
    rows = services.extras["staff"].desk.funnel(services.extras["staff"].auth.context(
        client.get_cookie("__Host-staff").value), SCHOOL_A)
    table = {(r.label, r.profile): (r.in_register, r.with_account, r.activated, r.logged_in_this_month,
                                    r.by_route["sms"], r.by_route["letter"], r.by_route["franceconnect"])
             for r in rows}
    assert table == {
        ("Collège Claude Chappe", "student"): (3, 2, 1, 2, 0, 1, 0),
        ("Collège Claude Chappe", "parent"): (2, 1, 1, 0, 1, 0, 0),
        ("5A", "student"): (2, 2, 1, 2, 0, 1, 0),
        ("5A", "parent"): (1, 1, 1, 0, 1, 0, 0),
        ("5B", "student"): (1, 0, 0, 0, 0, 0, 0),
        ("5B", "parent"): (1, 0, 0, 0, 0, 0, 0),
    }
    page = client.get(f"/etablissement/entonnoir/{SCHOOL_A}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and text.count("<svg") == 3 and 'role="img"' in text
    assert "<th scope=\"row\">Activés</th><td>1</td>" in text
    assert "5A élèves 50 %, représentants légaux 100 %" in text  # the per-class chart's text alternative


def test_funnel_csv_is_scoped(client: FlaskClient, services: Services, register: Register) -> None:
    enrol(client, services, "ref@college.fr", SCHOOL_A)
    export = client.get(f"/etablissement/entonnoir/{SCHOOL_A}.csv")
    lines = export.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert export.mimetype == "text/csv" and lines[0].startswith("niveau;profil;dans_le_registre")
    assert "Collège Claude Chappe;eleves;3;1;1;0;0;0;0" in lines
    assert client.get(f"/etablissement/entonnoir/{SCHOOL_B}.csv").status_code == 404
