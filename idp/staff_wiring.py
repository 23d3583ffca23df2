"""Build the school staff console's services from the application's (called by ``idp.wiring``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from idp.core.activation.common import FlowKit
from idp.core.authn.throttle import ThrottlePolicy
from idp.core.ports import UnitOfWork
from idp.core.staff.auth import StaffAuth, StaffPolicy
from idp.core.staff.console import StaffConsole
from idp.core.staff.school import SchoolDesk
from idp.core.staff.second_factor import StaffFactors

if TYPE_CHECKING:
    from idp.wiring import Services


@dataclass
class StaffServices:
    """The console's services: staff accounts and factors, families, the school's desk."""

    auth: StaffAuth
    factors: StaffFactors
    console: StaffConsole
    desk: SchoolDesk


def build_staff(services: Services, kit: FlowKit, throttle_policy: ThrottlePolicy) -> StaffServices:
    """Staff stores on the unit of work's session; the TOTP secrets sealed under their own derived key."""
    from idp.storage.activation_store import PayloadCipher
    from idp.storage.staff_console_store import SqlConsoleStore
    from idp.storage.staff_inbox_store import SqlInboxStore
    from idp.storage.staff_store import SqlStaffStore
    from idp.storage.uow import SqlUnitOfWork

    settings = services.settings
    s = settings.staff

    def session_of(uow: UnitOfWork) -> object:
        return cast(SqlUnitOfWork, uow).session

    sealer = PayloadCipher((settings.secret_key or "development-only") + "\0staff-totp-v1")
    policy = StaffPolicy(idle=dt.timedelta(minutes=s.idle_minutes), absolute=dt.timedelta(hours=s.absolute_hours),
                         enrolment_ttl=dt.timedelta(hours=s.enrolment_ttl_hours), base_url=settings.server.base_url,
                         product=settings.server.product_name)
    auth = StaffAuth(kit, lambda uow: SqlStaffStore(session_of(uow)), services.hasher,  # type: ignore[arg-type]
                     services.password_policy, throttle_policy, sealer, policy)
    console = StaffConsole(kit, lambda uow: SqlConsoleStore(session_of(uow)),  # type: ignore[arg-type]
                           lambda uow: SqlInboxStore(session_of(uow)),  # type: ignore[arg-type]
                           services.accounts, services.provisional)
    return StaffServices(auth=auth, factors=StaffFactors(auth), console=console,
                         desk=SchoolDesk(console, kit, s.help_requests_per_ip_per_hour))
