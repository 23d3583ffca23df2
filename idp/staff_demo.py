"""The demo's référent numérique of Collège Claude Chappe, created as an operator would (``idp staff add``),
then enrolled through the enrolment link of its mail (password, TOTP app) so ``idp demo`` can print how to
log in to the console. Development only: the TOTP secret is printed for the demo."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyotp

from idp.core.staff.model import Role, StaffState

if TYPE_CHECKING:
    from idp.wiring import Services

DEMO_EMAIL = "referent@clg-chappe.example"
DEMO_NAME = "Claire Vidal (référente numérique)"
DEMO_PASSWORD = "Tableau-Noir-2026!"
_LINK = re.compile(r"/etablissement/inscription/([A-Za-z0-9_-]{20,})")


@dataclass(frozen=True)
class DemoStaff:
    """What ``idp demo`` prints for the console."""

    email: str
    password: str
    totp_secret: str
    school: str


def create_demo_staff(services: Services, school_name: str = "Collège Claude Chappe") -> DemoStaff:
    """Invite the référent (idempotent) and complete the enrolment as the person would from the mail."""
    from idp.storage.activation_store import SqlOutbox
    from idp.storage.staff_store import SqlStaffStore

    staff = services.extras["staff"]
    uai = next(u for u, name in staff.desk.schools() if name == school_name)
    with services.uow() as uow:
        existing = SqlStaffStore(uow.session).member_by_email(DEMO_EMAIL)  # type: ignore[attr-defined]
        sealed = SqlStaffStore(uow.session).totp_secrets(existing.id)[0] if existing else ""  # type: ignore[attr-defined]
    if existing is not None and existing.state is StaffState.ACTIVE and sealed:
        return DemoStaff(DEMO_EMAIL, DEMO_PASSWORD, staff.auth.sealer.open(sealed)["s"], school_name)
    staff.auth.invite(DEMO_EMAIL, DEMO_NAME, uai, Role.REFERENT, actor="demo")
    token = _enrolment_token(services, SqlOutbox(services.db.sessionmaker))
    cookie = staff.auth.set_password(token, DEMO_PASSWORD, DEMO_PASSWORD, "127.0.0.1")
    secret, _ = staff.factors.totp_setup(cookie)
    staff.factors.totp_confirm(cookie, pyotp.TOTP(secret).at(services.clock.now()), "127.0.0.1")
    return DemoStaff(DEMO_EMAIL, DEMO_PASSWORD, secret, school_name)


def _enrolment_token(services: Any, outbox: Any, wait_seconds: float = 30.0) -> str:
    """The link's token from the invitation in the development outbox. The delivery worker woken by the
    invitation may be delivering it at this very moment, so the outbox is read until the mail is there."""
    deadline = time.monotonic() + wait_seconds
    while True:
        services.delivery.run_pending()
        mails = outbox.messages(to=DEMO_EMAIL)
        found = _LINK.search(mails[-1]["body"]) if mails else None
        if found is not None:
            return found.group(1)
        if time.monotonic() > deadline:
            raise RuntimeError(f"the invitation to {DEMO_EMAIL} never reached the development outbox")
        time.sleep(0.1)
