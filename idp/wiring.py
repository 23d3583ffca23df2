"""Build the services the application runs on, from settings: the one place parts are put together."""

from __future__ import annotations

import datetime as dt
import functools
import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from idp.caches import ProcessCaches
from idp.core.accounts.service import AccountService
from idp.core.activation.common import FlowKit, Limits
from idp.core.activation.enrolment import ParentEnrolment
from idp.core.activation.provisional import ProvisionalCredentials
from idp.core.authn.flow import AuthnFlow
from idp.core.authn.sessions import LogoutHooks, SessionPolicy
from idp.core.authn.throttle import ThrottlePolicy
from idp.core.clock import Clock, SystemClock
from idp.core.passwords.hashing import HashParameters, PasswordHasher
from idp.core.passwords.policy import PasswordPolicy
from idp.core.recovery.account import AccountSettings
from idp.core.recovery.service import RecoveryService, notify_lockout
from idp.delivery.worker import DeliveryWorker
from idp.settings import CacheSettings, Settings
from idp.storage.db import Database
from idp.storage.uow import SqlUnitOfWork, SqlUnitOfWorkFactory

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
    delivery: DeliveryWorker
    enrolment: ParentEnrolment
    provisional: ProvisionalCredentials
    recovery: RecoveryService
    account_settings: AccountSettings
    frontends: dict[str, ProtocolFrontend] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    #: The process's in-memory caches, lifetimes from ``[caches]`` (``idp.caches``).
    caches: ProcessCaches = field(default_factory=lambda: ProcessCaches(CacheSettings()))


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
    caches = ProcessCaches(settings.caches)
    uow = SqlUnitOfWorkFactory(db, redis_throttle, caches.catalogue)
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
    # One list of single-logout hooks for every way a session ends (the protocols append theirs).
    logout_hooks = LogoutHooks()
    accounts = AccountService(uow, hasher, policy, clock, logout_hooks)
    delivery, kit = build_activation_kit(settings, db, uow, clock)
    flow.on_lock = functools.partial(notify_lockout, kit)  # SECURITY A22
    kit.logout_hooks = logout_hooks
    services = Services(settings=settings, db=db, uow=uow, clock=clock, hasher=hasher, password_policy=policy,
                        flow=flow, accounts=accounts, delivery=delivery,
                        enrolment=ParentEnrolment(kit, accounts, hasher, flow),
                        provisional=ProvisionalCredentials(kit, accounts, hasher, flow, settings.server.base_url),
                        recovery=RecoveryService(kit, accounts, hasher),
                        account_settings=AccountSettings(kit, accounts, hasher, flow),
                        extras={"logout_hooks": logout_hooks}, caches=caches)
    install_staff(services, kit, throttle_policy)
    install_protocols(services)
    if settings.federation.enabled:
        from idp.federation import install as install_federation

        install_federation(services)
    return services


def build_activation_kit(settings: Settings, db: Database, uow: SqlUnitOfWorkFactory,
                         clock: Clock) -> tuple[DeliveryWorker, FlowKit]:
    """The delivery worker (adapters chosen by ``[mail]``/``[sms]``) and the machinery of the code-based flows."""
    from idp.delivery import build_mailer, build_sms_sender
    from idp.storage.activation_store import PayloadCipher, SqlActivationStore, SqlDeliveryQueue
    from idp.web.catalogues import CompiledCatalogues

    cipher = PayloadCipher(settings.secret_key or "development-only")
    worker = DeliveryWorker(SqlDeliveryQueue(db.sessionmaker, cipher), build_mailer(settings, db.sessionmaker, clock),
                            build_sms_sender(settings, db.sessionmaker, clock), clock,
                            background=settings.delivery.background, poll_seconds=settings.delivery.poll_seconds,
                            max_attempts=settings.delivery.max_attempts,
                            retry_seconds=settings.delivery.retry_seconds)
    a, sms = settings.activation, settings.sms
    limits = Limits(
        code_ttl=dt.timedelta(minutes=a.code_ttl_minutes), email_code_ttl=dt.timedelta(minutes=a.email_code_ttl_minutes),
        code_attempts=a.code_attempts, sends_per_transaction=a.sends_per_transaction,
        resend_cooldown=dt.timedelta(seconds=a.resend_cooldown_seconds),
        per_recipient_per_day=a.messages_per_recipient_per_day, starts_per_ip_per_hour=a.starts_per_ip_per_hour,
        sms_hourly_budget=sms.hourly_budget, account_sms_hourly_budget=sms.account_hourly_budget,
        contact_codes_per_account_per_day=a.contact_codes_per_account_per_day, transaction_ttl=dt.timedelta(minutes=a.transaction_ttl_minutes),
        birthdate_failures=a.birthdate_failures, provisional_valid=dt.timedelta(days=a.provisional_valid_days),
        email_link_ttl=dt.timedelta(hours=a.email_link_ttl_hours), allowed_regions=sms.allowed_regions,
        default_region=sms.default_region,
    )
    # The factory's units of work are SqlUnitOfWork: the activation store works on their ORM session.
    kit = FlowKit(uow=uow, stores=lambda u: SqlActivationStore(cast(SqlUnitOfWork, u).session, cipher),
                  clock=clock, limits=limits, secret=settings.secret_key or "development-only",
                  product=settings.server.product_name, waker=worker,
                  catalogues=CompiledCatalogues(settings.i18n.languages))
    return worker, kit


def install_staff(services: Services, kit: FlowKit, throttle_policy: ThrottlePolicy) -> None:
    """The school staff console's services (``services.extras["staff"]``) and the forced password change."""
    from idp.core.accounts.forced_change import ForcedPasswordChange
    from idp.staff_wiring import build_staff

    services.extras["staff"] = build_staff(services, kit, throttle_policy)
    services.extras["forced_password_change"] = ForcedPasswordChange(
        services.uow, services.accounts, services.hasher, services.flow, services.clock,
        services.extras["logout_hooks"])


def install_protocols(services: Services) -> None:
    """Let each enabled protocol package (``idp.saml``, ``idp.oidc``, ``idp.cas``) plug itself in.

    Each package exposes ``install(services)``, which registers its ``ProtocolFrontend`` in
    ``services.frontends`` and may append single-logout hooks to ``services.extras["logout_hooks"]``.
    """
    services.extras.setdefault("logout_hooks", LogoutHooks())
    for name in services.settings.protocols.enabled:
        importlib.import_module(f"idp.{name}").install(services)
