"""SQLAlchemy 2 rows: the school register, accounts, SSO sessions, authentication requests, audit.

Rows stay here; repositories turn them into the core's frozen values. Times are stored as naive UTC and
handed back as aware UTC (``UtcDateTime``) so SQLite and PostgreSQL behave the same.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in Python, naive UTC in the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


#: What a repository sends its Core statements through: the ORM ``Session`` of a unit of work's transaction, or
#: the pooled ``Connection`` itself in an autocommit unit of work (``idp.storage.uow``).
Executor = Session | Connection


def table_of(model: type[Base]) -> Table:
    """A mapped class's table, typed as the ``Table`` it is (SQLAlchemy types ``__table__`` as a ``FromClause``),
    for the Core statements the hot paths compile once."""
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


# --- the school register -------------------------------------------------------------------------


class SchoolRow(Base):
    __tablename__ = "schools"

    uai: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # ecole, college, lycee, lp, cite_scolaire
    academie: Mapped[str] = mapped_column(String(80))
    city: Mapped[str] = mapped_column(String(120), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class StudentRow(Base):
    __tablename__ = "students"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ine: Mapped[str] = mapped_column(String(11), unique=True)
    uai: Mapped[str] = mapped_column(ForeignKey("schools.uai"), index=True)
    external_id: Mapped[str] = mapped_column(String(40), default="")
    family_name: Mapped[str] = mapped_column(String(100))
    given_names: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[dt.date] = mapped_column(Date)
    class_code: Mapped[str] = mapped_column(String(40), default="")
    level: Mapped[str] = mapped_column(String(40), default="")
    postal_code: Mapped[str] = mapped_column(String(10), default="")
    status: Mapped[str] = mapped_column(String(10), default="present")  # present, leaving, purged
    left_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    fingerprint: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), unique=True, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class RepresentativeRow(Base):
    __tablename__ = "representatives"
    __table_args__ = (UniqueConstraint("uai", "external_id", name="uq_representatives_uai_external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uai: Mapped[str] = mapped_column(ForeignKey("schools.uai"))
    external_id: Mapped[str] = mapped_column(String(40))
    family_name: Mapped[str] = mapped_column(String(100))
    given_names: Mapped[str] = mapped_column(String(200))
    mobile_phone: Mapped[str] = mapped_column(String(20), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    postal_code: Mapped[str] = mapped_column(String(10), default="")
    status: Mapped[str] = mapped_column(String(10), default="present")
    left_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    fingerprint: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), nullable=True, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class StudentLinkRow(Base):
    """A legal representative's link to a pupil, as the register states it."""

    __tablename__ = "student_links"
    __table_args__ = (UniqueConstraint("student_id", "representative_id", name="uq_student_links_pair"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id"), index=True)
    representative_id: Mapped[int] = mapped_column(ForeignKey("representatives.id"), index=True)
    relationship: Mapped[str] = mapped_column(String(20), default="")
    legal_responsibility: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(10), default="present")
    fingerprint: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


# --- accounts and sessions -----------------------------------------------------------------------


class AccountRow(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    identifier: Mapped[str] = mapped_column(String(64), unique=True)
    profile: Mapped[str] = mapped_column(String(10))  # parent, student
    state: Mapped[str] = mapped_column(String(12))  # provisional, active, locked, closed
    family_name: Mapped[str] = mapped_column(String(100))
    given_names: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    provisional_expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    email: Mapped[str] = mapped_column(String(254), default="")
    email_verified_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    phone: Mapped[str] = mapped_column(String(20), default="")
    phone_verified_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # When a register import last changed what this account's answers release (cached copies before it are stale).
    register_changed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # The language the family reads the screens in (``[i18n] languages``): staff-triggered messages go out in it.
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)


class SsoSessionRow(Base):
    __tablename__ = "sso_sessions"

    # SHA-256 of the cookie value: a database dump does not hand out live sessions.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    auth_method: Mapped[str] = mapped_column(String(20))
    authn_instant: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    ip: Mapped[str] = mapped_column(String(45), default="")
    user_agent: Mapped[str] = mapped_column(String(200), default="")


class SessionParticipantRow(Base):
    """A service provider that received an answer within an SSO session (for single logout)."""

    __tablename__ = "sso_session_participants"
    __table_args__ = (Index("ix_participants_session", "session_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sso_sessions.id", ondelete="CASCADE"))
    protocol: Mapped[str] = mapped_column(String(10))
    client_id: Mapped[str] = mapped_column(String(400))
    data: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class AuthnRequestRow(Base):
    """An authentication request waiting for the person to log in (and any detour) before it is answered."""

    __tablename__ = "authn_requests"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    protocol: Mapped[str] = mapped_column(String(10))
    client_id: Mapped[str] = mapped_column(String(400), default="")
    client_name: Mapped[str] = mapped_column(String(200), default="")
    payload: Mapped[str] = mapped_column(Text, default="{}")
    force_authn: Mapped[bool] = mapped_column(Boolean, default=False)
    passive: Mapped[bool] = mapped_column(Boolean, default=False)
    profile_hint: Mapped[str] = mapped_column(String(10), default="")
    browser_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    session_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    authenticated_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class ThrottleRow(Base):
    """Failure counters behind login throttling, keyed by a hashed identifier, an IP or a network."""

    __tablename__ = "throttle_counters"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    locked_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)


class AuditEventRow(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_account", "account_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    event: Mapped[str] = mapped_column(String(60))
    account_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    subject: Mapped[str] = mapped_column(String(120), default="")
    ip: Mapped[str] = mapped_column(String(45), default="")
    details: Mapped[str] = mapped_column(Text, default="{}")


class ServiceProviderRow(Base):
    """A registered service provider, whatever its protocol; each protocol keeps its own details beside it."""

    __tablename__ = "service_providers"
    __table_args__ = (UniqueConstraint("protocol", "client_id", name="uq_service_providers_protocol_client"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    protocol: Mapped[str] = mapped_column(String(10))
    client_id: Mapped[str] = mapped_column(String(400))
    name: Mapped[str] = mapped_column(String(200))
    home_url: Mapped[str] = mapped_column(String(400), default="")
    description: Mapped[str] = mapped_column(String(400), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


# Protocol tables live beside their repositories; importing them here registers them on Base.metadata
# (migrations and tests see every table as soon as ``idp.storage.models`` is imported).
from idp.storage import (  # noqa: E402,F401
    activation_store,
    cas_store,
    federation_store,  # noqa: E402,F401
    oidc_store,
    saml_store,
    staff_console_store,
    staff_inbox_store,
    staff_store,
)
