"""Build the services the application runs on, from settings: the one place parts are put together."""

from __future__ import annotations

import datetime as dt
import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from idp.core.accounts.service import AccountService
from idp.core.authn.flow import AuthnFlow
from idp.core.authn.sessions import SessionPolicy
from idp.core.authn.throttle import ThrottlePolicy
from idp.core.clock import Clock, SystemClock
from idp.core.passwords.hashing import HashParameters, PasswordHasher
from idp.core.passwords.policy import PasswordPolicy
from idp.settings import Settings
from idp.storage.db import Database
from idp.storage.uow import SqlUnitOfWorkFactory

if TYPE_CHECKING:
    from idp.web.frontend import ProtocolFrontend


@dataclass
class Services:
    """Everything a request handler or a command needs, built once per process."""

    settings: Settings
    db: Database
    uow: SqlUnitOfWorkFactory
    clock: Clock
    hasher: PasswordHasher
    password_policy: PasswordPolicy
    flow: AuthnFlow
    accounts: AccountService
    frontends: dict[str, ProtocolFrontend] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


def hasher_for(settings: Settings) -> PasswordHasher:
    """The argon2id hasher with the configured parameters."""
    p = settings.passwords
    params = HashParameters(time_cost=p.argon2_time_cost, memory_kib=p.argon2_memory_kib,
                            parallelism=p.argon2_parallelism)
    return PasswordHasher(params, max_concurrent=p.max_concurrent_hashes)


def build_services(settings: Settings, *, clock: Clock | None = None, db: Database | None = None,
                   hasher: PasswordHasher | None = None) -> Services:
    """Build the services from settings; tests pass their own clock, database or hasher."""
    clock = clock or SystemClock()
    db = db or Database(settings)
    redis_throttle = None
    if settings.redis.url:
        from idp.storage.redis_store import RedisThrottleStore, connect

        redis_throttle = RedisThrottleStore(connect(settings.redis.url))
    uow = SqlUnitOfWorkFactory(db, redis_throttle)
    hasher = hasher or hasher_for(settings)
    s, t = settings.session, settings.throttle
    session_policy = SessionPolicy(idle=dt.timedelta(minutes=s.idle_minutes), absolute=dt.timedelta(hours=s.absolute_hours),
                                   touch_interval=dt.timedelta(seconds=s.touch_interval_seconds))
    throttle_policy = ThrottlePolicy(
        free_failures=t.account_free_failures, base_delay_seconds=t.account_base_delay_seconds,
        max_delay_seconds=t.account_max_delay_seconds, ip_max_failures=t.ip_max_failures,
        network_max_failures=t.network_max_failures, ip_window_seconds=t.ip_window_seconds,
    )
    flow = AuthnFlow(uow, hasher, clock, session_policy, throttle_policy,
                     dt.timedelta(minutes=settings.authn.request_ttl_minutes))
    policy = PasswordPolicy(min_length=settings.passwords.min_length, max_length=settings.passwords.max_length)
    accounts = AccountService(uow, hasher, policy, clock)
    services = Services(settings=settings, db=db, uow=uow, clock=clock, hasher=hasher, password_policy=policy,
                        flow=flow, accounts=accounts)
    install_protocols(services)
    return services


def install_protocols(services: Services) -> None:
    """Let each enabled protocol package (``idp.saml``, ``idp.oidc``, ``idp.cas``) plug itself in.

    Each package exposes ``install(services)``, which registers its ``ProtocolFrontend`` in
    ``services.frontends`` and may append single-logout hooks to ``services.extras["logout_hooks"]``.
    """
    services.extras.setdefault("logout_hooks", [])
    for name in services.settings.protocols.enabled:
        importlib.import_module(f"idp.{name}").install(services)
