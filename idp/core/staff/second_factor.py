"""The second step of a staff login or enrolment: register or prove a passkey (WebAuthn) or a TOTP code.

Registration is only offered to a member who has no second factor yet (just after the enrolment password);
proof only to a member who has one. Every success rotates the session cookie (``StaffAuth.upgrade``).
"""

from __future__ import annotations

from idp.core.staff import factors
from idp.core.staff.auth import StaffAuth
from idp.core.staff.errors import SecondFactorRejected, StaffLoginRequired
from idp.core.staff.model import SecondFactor, StaffMember, StaffSession


class StaffFactors:
    """TOTP and passkey ceremonies on top of a half session."""

    def __init__(self, auth: StaffAuth) -> None:
        self.auth = auth
        self.kit = auth.kit

    def _half(self, cookie: str | None, *, enrolling: bool) -> tuple[StaffSession, StaffMember]:
        session, member = self.auth.half_session(cookie)
        if session.second_factor_at is not None or member.has_second_factor is enrolling:
            raise StaffLoginRequired()
        return session, member

    # --- TOTP ---------------------------------------------------------------------------------------

    def totp_setup(self, cookie: str | None) -> tuple[str, str]:
        """A new secret for the member's authenticator app (kept sealed until a code confirms it)."""
        session, member = self._half(cookie, enrolling=True)
        with self.kit.uow() as uow:
            store = self.auth.stores(uow)
            _, pending, _ = store.totp_secrets(member.id)
            secret = self.auth.sealer.open(pending)["s"] if pending else factors.new_totp_secret()
            if not pending:
                store.set_totp_pending(member.id, self.auth.sealer.seal({"s": secret}))
            uow.commit()
        return secret, factors.totp_uri(secret, member.email, self.auth.settings.product)

    def totp_confirm(self, cookie: str | None, code: str, ip: str) -> str:
        """Enrolment: the first code from the app proves it holds the secret; returns the full session's cookie."""
        session, member = self._half(cookie, enrolling=True)
        with self.kit.uow() as uow:
            store = self.auth.stores(uow)
            _, pending, _ = store.totp_secrets(member.id)
            step = factors.totp_step(self.auth.sealer.open(pending)["s"], code,
                                     self.kit.clock.now().timestamp()) if pending else None
            if step is None:
                self.auth.factor_failed(uow, session, ip)
                raise SecondFactorRejected()
            store.confirm_totp(member.id, pending, step)
            self.kit.audit(uow, "staff.totp_registered", None, "", {"staff": member.id}, ip)
            cookie = self.auth.upgrade(uow, session, SecondFactor.TOTP, ip)
            uow.commit()
        return cookie

    def totp_login(self, cookie: str | None, code: str, ip: str) -> str:
        """Login: a code of the registered secret, each time step accepted once (no replay)."""
        session, member = self._half(cookie, enrolling=False)
        with self.kit.uow() as uow:
            store = self.auth.stores(uow)
            sealed, _, _ = store.totp_secrets(member.id)
            step = factors.totp_step(self.auth.sealer.open(sealed)["s"], code,
                                     self.kit.clock.now().timestamp()) if sealed else None
            if step is None or not store.use_totp_step(member.id, step):
                self.auth.factor_failed(uow, session, ip)
                raise SecondFactorRejected()
            cookie = self.auth.upgrade(uow, session, SecondFactor.TOTP, ip)
            uow.commit()
        return cookie

    # --- passkeys -----------------------------------------------------------------------------------

    def passkey_options(self, cookie: str | None, *, enrolling: bool) -> str:
        """The options the browser's ``navigator.credentials`` call needs; the challenge is kept server-side."""
        session, member = self._half(cookie, enrolling=enrolling)
        with self.kit.uow() as uow:
            store = self.auth.stores(uow)
            existing = [c for c, _, _ in store.passkeys(member.id)]
            if enrolling:
                options, challenge = factors.registration_options(self.auth.rp, member.id, member.email,
                                                                  member.display_name, existing)
            else:
                options, challenge = factors.authentication_options(self.auth.rp, existing)
            store.set_challenge(session.id, challenge)
            uow.commit()
        return options

    def passkey_register(self, cookie: str | None, credential: str, ip: str) -> str:
        """Enrolment: verify the new passkey's attestation against the kept challenge and store its key."""
        session, member = self._half(cookie, enrolling=True)
        with self.kit.uow() as uow:
            store = self.auth.stores(uow)
            challenge = store.take_challenge(session.id)
            try:
                if not challenge:
                    raise SecondFactorRejected()
                credential_id, public_key, count = factors.verify_registration(self.auth.rp, credential, challenge)
            except SecondFactorRejected:
                self.auth.factor_failed(uow, session, ip)
                raise
            store.add_passkey(member.id, credential_id, public_key, count, self.kit.clock.now())
            self.kit.audit(uow, "staff.passkey_registered", None, "", {"staff": member.id}, ip)
            cookie = self.auth.upgrade(uow, session, SecondFactor.WEBAUTHN, ip)
            uow.commit()
        return cookie

    def passkey_login(self, cookie: str | None, credential: str, ip: str) -> str:
        """Login: verify the assertion with the stored public key; the signature counter must not go back."""
        session, member = self._half(cookie, enrolling=False)
        with self.kit.uow() as uow:
            store = self.auth.stores(uow)
            challenge = store.take_challenge(session.id)
            keys = {c: (k, n) for c, k, n in store.passkeys(member.id)}
            try:
                credential_id = factors.credential_id_of(credential)
                if not challenge or credential_id not in keys:
                    raise SecondFactorRejected()
                public_key, count = keys[credential_id]
                new_count = factors.verify_authentication(self.auth.rp, credential, challenge, public_key, count)
            except SecondFactorRejected:
                self.auth.factor_failed(uow, session, ip)
                raise
            store.use_passkey(credential_id, new_count, self.kit.clock.now())
            cookie = self.auth.upgrade(uow, session, SecondFactor.WEBAUTHN, ip)
            uow.commit()
        return cookie
