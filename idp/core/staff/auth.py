"""Staff accounts: invitation by an operator, enrolment (password, then a second factor), login with both
factors, short sessions apart from the families' SSO sessions.

A staff session exists in two states: after the password (``second_factor_at`` empty: only the second-factor
pages answer) and after the second factor (the console). The second step always rotates the cookie. No
console page is ever served to a session without the second factor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, replace

from idp.core.activation.common import FlowKit
from idp.core.activation.model import Channel
from idp.core.audit import mask_email
from idp.core.authn import throttle
from idp.core.passwords.hashing import PasswordHasher
from idp.core.passwords.policy import MSG_MISMATCH, PasswordContext, PasswordPolicy, check_password
from idp.core.ports import UnitOfWork
from idp.core.staff import factors
from idp.core.staff.errors import (
    EnrolmentExpired,
    SecondFactorRequired,
    StaffCredentialsRejected,
    StaffLoginRequired,
)
from idp.core.staff.model import (
    Role,
    Scope,
    SecondFactor,
    StaffContext,
    StaffMember,
    StaffSession,
    StaffState,
)
from idp.core.staff.ports import StaffStore, StaffStores
from idp.errors import LoginThrottled, NotFound, PasswordRejected

#: Wrong second factors tolerated in one session before it ends (the password must then be typed again).
MAX_FACTOR_FAILURES = 5


def token_hash(token: str) -> str:
    """What is stored of an enrolment link or a session cookie."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StaffPolicy:
    """Lifetimes of the staff console (``[staff]`` settings)."""

    idle: dt.timedelta
    absolute: dt.timedelta
    enrolment_ttl: dt.timedelta
    base_url: str
    product: str


class StaffAuth:
    """Invite, enrol, log in and load staff members."""

    def __init__(self, kit: FlowKit, stores: StaffStores, hasher: PasswordHasher,
                 policy: PasswordPolicy, throttle_policy: throttle.ThrottlePolicy, sealer: factors.Sealer,
                 settings: StaffPolicy) -> None:
        self.kit = kit
        self.stores = stores
        self._hasher = hasher
        self._policy = policy
        self._throttle = throttle_policy
        self.sealer = sealer
        self.settings = settings
        self.rp = factors.RelyingParty.from_base_url(settings.base_url, settings.product)

    # --- invitation (operators, ``idp staff``) ------------------------------------------------------

    def invite(self, email: str, display_name: str, uai: str, role: Role, *, operator: bool = False,
               actor: str = "cli") -> StaffMember:
        """Create (or add a school to) a staff member and mail a fresh enrolment link when not yet enrolled."""
        email = email.strip().lower()
        if "@" not in email or len(email) > 254:
            raise NotFound("adresse électronique invalide")
        kit = self.kit
        with kit.uow() as uow:
            store = self.stores(uow)
            if uai and store.school_name(uai) is None:
                raise NotFound(f"établissement {uai} absent du registre")
            member = store.member_by_email(email)
            token = secrets.token_urlsafe(32)
            now = kit.clock.now()
            expires = now + self.settings.enrolment_ttl
            if member is None:
                staff_id = store.add_member(email, display_name or email, operator, now, token_hash(token), expires)
            else:
                staff_id = member.id
                if member.state is StaffState.INVITED:
                    store.set_enrolment(staff_id, token_hash(token), expires)
            if uai:
                store.add_membership(staff_id, uai, role)
            created = store.member(staff_id)
            assert created is not None
            if created.state is StaffState.INVITED:
                self._mail_link(uow, created, token)
            kit.audit(uow, "staff.invited", None, "", {"staff": staff_id, "email": mask_email(email), "uai": uai,
                                                       "role": role.value, "operator": operator, "actor": actor})
            uow.commit()
        kit.wake()
        return created

    def _mail_link(self, uow: UnitOfWork, member: StaffMember, token: str) -> None:
        link = f"{self.settings.base_url.rstrip('/')}/etablissement/inscription/{token}"
        hours = int(self.settings.enrolment_ttl.total_seconds() // 3600)
        text = (f"Bonjour,\n\nUn compte vous a été ouvert sur la console établissement de {self.settings.product}.\n"
                f"Pour choisir votre mot de passe et enregistrer votre second facteur (clé d'accès ou application "
                f"d'authentification), ouvrez ce lien dans les {hours} heures :\n\n{link}\n\n"
                "Si vous n'attendiez pas ce message, ignorez-le.\n")
        kit = self.kit
        kit.queue(uow, kit.stores(uow), Channel.MAIL, member.email, text, purpose="staff_enrolment",
                  subject=f"{self.settings.product} : votre accès à la console établissement", counted=False)

    def disable(self, email: str, actor: str = "cli") -> StaffMember:
        """Disable a staff member: sessions end at once, the enrolment link dies."""
        kit = self.kit
        with kit.uow() as uow:
            store = self.stores(uow)
            member = store.member_by_email(email.strip().lower())
            if member is None:
                raise NotFound(f"aucun membre du personnel avec l'adresse {email}")
            now = kit.clock.now()
            store.set_state(member.id, StaffState.DISABLED, now)
            store.end_sessions_of(member.id, now)
            kit.audit(uow, "staff.disabled", None, "", {"staff": member.id, "actor": actor})
            uow.commit()
            disabled = store.member(member.id)
        assert disabled is not None
        return disabled

    def members(self) -> list[StaffMember]:
        """Every staff member (``idp staff list``)."""
        with self.kit.uow() as uow:
            return list(self.stores(uow).list_members())

    # --- enrolment ----------------------------------------------------------------------------------

    def enrolment(self, token: str) -> StaffMember:
        """The invited member behind a live enrolment link, or ``EnrolmentExpired``."""
        with self.kit.uow() as uow:
            member = self.stores(uow).member_by_token(token_hash(token), self.kit.clock.now())
        if member is None:
            raise EnrolmentExpired()
        return member

    def set_password(self, token: str, password: str, confirmation: str, ip: str) -> str:
        """Step 1 of enrolment: the password (burns the link); returns a session cookie awaiting the factor."""
        member = self.enrolment(token)
        if password != confirmation:
            raise PasswordRejected([MSG_MISMATCH])  # the console is French: never translated
        context = PasswordContext(identifier=member.email.split("@")[0], names=tuple(member.display_name.split()))
        violations = check_password(password, self._policy, context)
        if violations:
            raise PasswordRejected([v.message for v in violations])
        hashed = self._hasher.hash(password)
        kit = self.kit
        with kit.uow() as uow:
            store = self.stores(uow)
            if not store.consume_enrolment(token_hash(token), hashed, kit.clock.now()):
                raise EnrolmentExpired()
            cookie = self._open(store, member.id, ip, None)
            kit.audit(uow, "staff.password_set", None, "", {"staff": member.id}, ip)
            uow.commit()
        return cookie

    # --- login --------------------------------------------------------------------------------------

    def login(self, email: str, password: str, ip: str, old: str | None = None) -> str:
        """Check e-mail and password (throttled like family logins); returns a cookie awaiting the factor.
        A session behind ``old`` (this browser's earlier cookie) ends: a login never continues another one."""
        email = email.strip().lower()[:254]
        keys = throttle.keys_for("staff:" + email, ip)
        kit = self.kit
        with kit.uow() as uow:
            wait = throttle.wait_seconds(uow.throttle.get_many([keys.identifier, keys.ip, keys.network]),
                                         kit.clock.now())
            member = self.stores(uow).member_by_email(email) if not wait else None
        if wait:
            raise LoginThrottled(wait)
        usable = member is not None and member.state is not StaffState.DISABLED and member.password_hash
        if not usable:
            self._hasher.dummy_verify(password)
        if not usable or not self._hasher.verify(member.password_hash if member else None, password[:1024]):
            with kit.uow() as uow:
                throttle.record_failure(keys, uow.throttle, self._throttle, kit.clock.now())
                kit.audit(uow, "staff.login_failed", None, "", {"email": mask_email(email)}, ip)
                uow.commit()
            raise StaffCredentialsRejected()
        assert member is not None
        with kit.uow() as uow:
            throttle.record_success(keys, uow.throttle)
            store = self.stores(uow)
            if old and len(old) <= 100:
                store.end_session(token_hash(old), kit.clock.now())
            cookie = self._open(store, member.id, ip, None)
            kit.audit(uow, "staff.password_ok", None, "", {"staff": member.id}, ip)
            uow.commit()
        return cookie

    def _open(self, store: StaffStore, staff_id: int, ip: str, factor: SecondFactor | None) -> str:
        now = self.kit.clock.now()
        cookie = secrets.token_urlsafe(32)
        store.add_session(StaffSession(id=token_hash(cookie), staff_id=staff_id, created_at=now, last_seen_at=now,
                                       second_factor=factor.value if factor else "",
                                       second_factor_at=now if factor else None), ip)
        return cookie

    def upgrade(self, uow: UnitOfWork, session: StaffSession, factor: SecondFactor, ip: str) -> str:
        """The second factor is proven: end the half session, open a full one under a new cookie."""
        store = self.stores(uow)
        now = self.kit.clock.now()
        store.end_session(session.id, now)
        store.activate(session.staff_id, now)
        store.record_login(session.staff_id, now)
        cookie = self._open(store, session.staff_id, ip, factor)
        self.kit.audit(uow, "staff.login", None, "", {"staff": session.staff_id, "factor": factor.value}, ip)
        return cookie

    def factor_failed(self, uow: UnitOfWork, session: StaffSession, ip: str) -> None:
        """Count a wrong second factor; past the limit the half session ends. Commits."""
        store = self.stores(uow)
        failures = store.add_failure(session.id)
        self.kit.audit(uow, "staff.second_factor_failed", None, "", {"staff": session.staff_id,
                                                                     "failures": failures}, ip)
        if failures >= MAX_FACTOR_FAILURES:
            store.end_session(session.id, self.kit.clock.now())
        uow.commit()

    # --- sessions -----------------------------------------------------------------------------------

    def half_session(self, cookie: str | None) -> tuple[StaffSession, StaffMember]:
        """A live session (with or without its second factor) and its member, or ``StaffLoginRequired``."""
        with self.kit.uow() as uow:
            found = self._live(uow, cookie)
            uow.commit()
        return found

    def _live(self, uow: UnitOfWork, cookie: str | None) -> tuple[StaffSession, StaffMember]:
        if not cookie or len(cookie) > 100:
            raise StaffLoginRequired()
        store = self.stores(uow)
        session = store.session(token_hash(cookie))
        now = self.kit.clock.now()
        if session is None or now - session.last_seen_at >= self.settings.idle \
                or now - session.created_at >= self.settings.absolute:
            raise StaffLoginRequired()
        member = store.member(session.staff_id)
        if member is None or member.state is StaffState.DISABLED:
            raise StaffLoginRequired()
        if now - session.last_seen_at >= dt.timedelta(seconds=30):
            store.touch_session(session.id, now)
            session = replace(session, last_seen_at=now)
        return session, member

    def context(self, cookie: str | None) -> StaffContext:
        """The console's caller: a live session WITH its second factor, the member and the scope."""
        with self.kit.uow() as uow:
            session, member = self._live(uow, cookie)
            uow.commit()
        if session.second_factor_at is None or not member.has_second_factor:
            raise SecondFactorRequired()
        scope = Scope(staff_id=member.id, uais=member.uais, everything=member.operator,
                      referent_uais=frozenset(m.uai for m in member.memberships if m.role is Role.REFERENT))
        return StaffContext(member=member, session=session, scope=scope)

    def logout(self, cookie: str | None, ip: str) -> None:
        """End the staff session behind the cookie (if any)."""
        if not cookie:
            return
        with self.kit.uow() as uow:
            store = self.stores(uow)
            session = store.session(token_hash(cookie))
            if session is not None:
                store.end_session(session.id, self.kit.clock.now())
                self.kit.audit(uow, "staff.logout", None, "", {"staff": session.staff_id}, ip)
            uow.commit()
