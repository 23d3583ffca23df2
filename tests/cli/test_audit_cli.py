"""``idp audit``: the audit trail read with filters (account, school, event, dates), as a table or JSON."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from idp.core.ports import AuditEvent
from idp.storage.models import RepresentativeRow, SchoolRow
from idp.wiring import Services

T0 = dt.datetime(2026, 9, 1, 8, 0, tzinfo=dt.UTC)


def _events(services: Services, account_factory: Any) -> str:
    account = account_factory("Sophie", "Martin")
    with services.uow() as uow:
        uow.session.add_all([SchoolRow(uai="0340011C", name="Collège A", kind="college", academie="Montpellier",
                                       updated_at=T0),
                             SchoolRow(uai="0690026D", name="Lycée B", kind="lycee", academie="Lyon", updated_at=T0)])
        uow.session.flush()
        rep = RepresentativeRow(uai="0340011C", external_id="R1", family_name="Martin", given_names="Sophie",
                                fingerprint="x", updated_at=T0, account_id=account.id)
        uow.session.add(rep)
        uow.session.flush()
        for at, event, account_id, details in (
                (T0, "login.failure", account.id, {}),
                (T0 + dt.timedelta(days=1), "login.success", account.id, {"method": "password"}),
                (T0 + dt.timedelta(days=2), "activation.birthdate_locked", None, {"uai": ["0690026D"]}),
                (T0 + dt.timedelta(days=3), "staff.family_viewed", None, {"staff": 1, "about": [f"rep:{rep.id}"]}),
        ):
            uow.audit.record(AuditEvent(event=event, at=at, account_id=account_id, details=details))
        uow.commit()
    return account.identifier


def test_filters_and_formats(runner: Any, services: Services, account_factory: Any) -> None:
    identifier = _events(services, account_factory)
    everything = runner("audit")
    assert everything.exit_code == 0 and "4 événement(s)" in everything.output
    lines = [line for line in everything.output.splitlines() if line.startswith("2026-")]
    assert [line.split()[2] for line in lines] == ["login.failure", "login.success", "activation.birthdate_locked",
                                                   "staff.family_viewed"]
    assert "1 événement(s)" in runner("audit", "--account", identifier, "--event", "login.success").output
    assert "2 événement(s)" in runner("audit", "--event", "login.").output
    school = runner("audit", "--school", "0340011c", "--format", "json").output.splitlines()
    events = [json.loads(line)["event"] for line in school if line.startswith("{")]
    assert events == ["login.failure", "login.success", "staff.family_viewed"]  # its people's, not school B's
    assert "activation.birthdate_locked" in runner("audit", "--school", "0690026D").output
    window = runner("audit", "--since", "2026-09-02", "--until", "2026-09-04")
    assert "2 événement(s)" in window.output
    bad = runner("audit", "--since", "hier")
    assert bad.exit_code != 0 and "date invalide" in bad.output
