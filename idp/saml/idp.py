"""The SAML identity provider: turn a checked AuthnRequest into the common login, and an ``Assertion`` into
a signed answer posted to the ACS from metadata (SAML Profiles 4.1)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, url_for
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT
from saml2.samlp import (
    STATUS_INVALID_NAMEID_POLICY,
    STATUS_NO_AUTHN_CONTEXT,
    STATUS_REQUESTER,
    STATUS_RESPONDER,
)

from idp.core.authn.model import Assertion, AuthnRequest
from idp.core.identity import (
    DEFAULT_RELEASE,
    Attr,
    ReleasePolicy,
    load_identity,
    pairwise_id,
    release_attributes,
)
from idp.errors import ConfigurationError
from idp.keystore import KeyStoreError
from idp.saml.attributes import parse_attribute_list, saml_attributes
from idp.saml.authn_context import FRESH_LOGIN, session_class
from idp.saml.checks import AuthnRequestChecker, CheckedAuthnRequest
from idp.saml.config import SamlConfig
from idp.saml.crypto import XmlSecBackend
from idp.saml.errors import SamlReplay
from idp.saml.keys import SigningKeys
from idp.saml.metadata import MetadataPublisher
from idp.saml.registry import MetadataCache, MetadataRejected, SpMetadata, check_endpoint_urls
from idp.saml.responses import AnswerSpec, build_response, build_status_response, encode_post
from idp.storage.saml_store import SpRow, SqlSamlStore
from idp.wiring import Services

log = logging.getLogger("idp.saml")
NAMEID_FORMATS = {"persistent": NAMEID_FORMAT_PERSISTENT, "transient": NAMEID_FORMAT_TRANSIENT}


@dataclass(frozen=True)
class PostForm:
    """An HTTP-POST binding answer to render as the autopost page."""

    action: str
    field: str
    message: str
    relay_state: str | None
    sp_name: str

    @property
    def origin(self) -> str:
        """The scheme and host of the target, for the page's CSP ``form-action``."""
        parts = urlsplit(self.action)
        return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class Prepared:
    """An answer decided and recorded in a transaction, to sign once it is committed."""

    checked: CheckedAuthnRequest
    sp_name: str
    now: dt.datetime
    spec: AnswerSpec | None = None
    refusal: tuple[str, str | None, str] | None = None
    recorded: tuple[str, str, str] | None = None


class SamlIdp:
    """The ``ProtocolFrontend`` for SAML 2.0, and the services its views call."""

    name = "saml"

    def __init__(self, services: Services, config: SamlConfig | None = None) -> None:
        settings = services.settings
        self.services = services
        self.config = config or SamlConfig.from_settings(settings)
        self.backend = XmlSecBackend()
        try:
            self.keys = SigningKeys(settings.path(settings.keys.directory), self.config.key_check_interval_seconds)
        except (KeyStoreError, OSError, ValueError) as exc:
            raise ConfigurationError(f"SAML : {exc}") from None
        self.metadata_cache = MetadataCache(self.backend.keys)
        caches = services.caches  # lifetimes in ``[caches]`` (``idp.caches``)
        self._sp_rows = caches.saml_service_providers
        self._endpoints_ok: dict[str, bool] = {}  # per metadata hash: its ACS/SLO URLs pass the URL rule
        self._issued_ids: set[tuple[str, str]] = set()
        #: Attributes released per (session, SP, policy version): the register is read once per session and SP.
        self._released = caches.saml_released
        #: Session participants this worker has recorded (the same row is not written at every answer).
        self._recorded = caches.saml_participants
        self.publisher = MetadataPublisher(self.config, self.keys, self.backend)
        #: The autopost page pre-rendered per (script root, with RelayState): see ``views.render_post``.
        self.post_pages = caches.pages
        from idp.saml.slo import SingleLogout

        self.slo = SingleLogout(self)

    # --- ProtocolFrontend ----------------------------------------------------------------------------

    def blueprint(self) -> Blueprint:
        """The ``/saml/...`` routes."""
        from idp.saml.views import bp

        return bp

    def resume_url(self, request_id: str) -> str:
        """Back from the login page to ``/saml/resume/<id>``."""
        return url_for("saml.resume", request_id=request_id)

    def answer_targets(self, req: AuthnRequest) -> list[str]:
        """The ACS the response goes to, checked against the SP's metadata when the request was parsed
        (SAML Profiles 4.1.4.1)."""
        acs = req.payload.get("acs")
        return [acs] if isinstance(acs, str) and acs else []

    # --- service providers -------------------------------------------------------------------------

    def service_provider(self, store: SqlSamlStore | None, entity_id: str,
                         now: dt.datetime) -> tuple[SpRow, SpMetadata] | None:
        """A registered SP whose metadata is still valid (``validUntil`` enforced at use, not only at import).

        Rows are kept ``[caches] saml_service_providers_seconds`` per worker (a change made with ``idp sp``
        applies within that time); without a ``store``, a short transaction of its own reads the row when the
        cache has none.
        """
        found, row = self._sp_rows.lookup(entity_id)
        if not found:
            if store is None:
                with self.services.uow() as uow:
                    row = SqlSamlStore(uow.session).get_sp(entity_id)
            else:
                row = store.get_sp(entity_id)
            self._sp_rows.put(entity_id, row)
        if row is None:
            return None
        metadata = self.metadata_cache.get(row)
        if metadata.valid_until is not None and metadata.valid_until <= now:
            return None
        if not self._endpoints_allowed(row, metadata):
            return None
        return row, metadata

    def _endpoints_allowed(self, row: SpRow, metadata: SpMetadata) -> bool:
        """Metadata stored before the URL rule (an http ACS in production, a dot-segment) is not used: the rule of
        ``idp sp add`` is enforced at use too, like ``validUntil`` (SECURITY S29, C15); checked once per version."""
        allowed = self._endpoints_ok.get(row.metadata_hash)
        if allowed is None:
            try:
                check_endpoint_urls(metadata, development=self.services.settings.server.development)
                allowed = True
            except MetadataRejected as exc:
                log.warning("saml: stored metadata not used: %s", exc.description)
                allowed = False
            if len(self._endpoints_ok) > 10_000:
                self._endpoints_ok.clear()
            self._endpoints_ok[row.metadata_hash] = allowed
        return allowed

    def checker(self, store: SqlSamlStore | None, now: dt.datetime) -> AuthnRequestChecker:
        """An AuthnRequest checker bound to this transaction's SP lookups (the replay key is consumed later)."""

        def lookup(entity_id: str) -> SpMetadata | None:
            found = self.service_provider(store, entity_id, now)
            return found[1] if found else None

        def allows_unsigned(entity_id: str) -> bool:
            found = self.service_provider(store, entity_id, now)  # the row just read (per-worker cache)
            return found is not None and found[0].allow_unsigned_requests

        return AuthnRequestChecker(self.config, lookup, allows_unsigned=allows_unsigned)

    def consume(self, store: SqlSamlStore, checked: CheckedAuthnRequest, now: dt.datetime) -> None:
        """Record the request ID in the shared replay cache, or raise ``SamlReplay`` (SECURITY S14)."""
        if checked.replay_key and not store.consume_once(checked.replay_key, now + self.config.replay_ttl, now):
            raise SamlReplay()

    def _remember_issued(self, entity_id: str, name_id: str) -> None:
        """Persistent NameIDs known to be recorded, so the hot path skips rewriting them (bounded)."""
        if len(self._issued_ids) > 100_000:
            self._issued_ids.clear()
        self._issued_ids.add((entity_id, name_id))

    # --- answers ---------------------------------------------------------------------------------------

    def session_index(self, session_public_id: str, entity_id: str) -> str:
        """``SessionIndex``: the session's public id and a per-SP tag, resolvable for single logout."""
        tag = hmac.new(self.services.settings.secret_key.encode(), f"si\x00{entity_id}\x00{session_public_id}".encode(),
                       hashlib.sha256).hexdigest()[:16]
        return f"{session_public_id}.{tag}"

    def session_from_index(self, store: SqlSamlStore, index: str, entity_id: str) -> str | None:
        """The SSO session id a ``SessionIndex`` we issued to ``entity_id`` designates."""
        public_id, _, _tag = index.partition(".")
        if not hmac.compare_digest(self.session_index(public_id, entity_id), index):
            return None
        return store.session_id_by_public_id(public_id)

    def answer(self, assertion: Assertion, checked: CheckedAuthnRequest, *, consume: bool = False) -> PostForm:
        """The signed answer for a logged-in person; a SAML status when the NameID policy cannot be met.

        ``consume``: the request was answered at once from the SSO session, its ID is recorded here.
        Autocommit, as when ``AuthnFlow.begin`` answers from the session: the writes (replay record,
        persistent NameID, session participant) are single idempotent statements that need not commit
        together, and they are login state (no wait for the disk, no BEGIN/COMMIT round trips).
        """
        with self.services.uow.autocommit() as uow:
            prepared = self.prepare(uow, assertion, checked, consume=consume)
            uow.commit()
        return self.finish(prepared)

    def prepare(self, uow: Any, assertion: Assertion, checked: CheckedAuthnRequest, *, consume: bool) -> Prepared:
        """Everything the answer writes, inside the caller's transaction: the replay record, the persistent
        NameID, the session participant; ``finish`` signs after the commit (no lock held while signing)."""
        services, now = self.services, self.services.clock.now()
        # The ORM session only if something below needs it (not the usual answer from a live session).
        store = SqlSamlStore(lambda: uow.session)
        if consume:
            self.consume(store, checked, now)
        found = self.service_provider(store, checked.sp, now)
        if found is None:
            from idp.saml.errors import SamlUnknownServiceProvider

            raise SamlUnknownServiceProvider()
        row, metadata = found
        authn_class = session_class(assertion.session.auth_method)
        refusal = self._refusal(row, metadata, checked, authn_class)
        if refusal is not None:
            return Prepared(checked, row.name, now, refusal=refusal)
        fmt = checked.nameid_format or NAMEID_FORMATS.get(row.nameid_format, NAMEID_FORMAT_PERSISTENT)
        if fmt == NAMEID_FORMAT_PERSISTENT:
            name_id = pairwise_id(services.settings.pairwise_salt, row.entity_id, assertion.account.public_id)
            known = (row.entity_id, name_id) in self._issued_ids
            if not checked.allow_create and not known and not store.persistent_id_known(row.entity_id, name_id):
                return Prepared(checked, row.name, now,
                                refusal=(STATUS_REQUESTER, STATUS_INVALID_NAMEID_POLICY, ""))
            if not known:
                store.remember_persistent_id(row.entity_id, name_id, now)
                self._remember_issued(row.entity_id, name_id)
        else:
            name_id = "_" + secrets.token_hex(20)
        released = self._release(uow, assertion, row, now)
        index = self.session_index(assertion.session.public_id, row.entity_id)
        participant = {"name_id": name_id, "format": fmt, "session_index": index}
        recorded = (assertion.session.id, row.entity_id, json.dumps(participant, sort_keys=True))
        # A transient NameID is new at every answer: always recorded, so that logout names the latest one.
        if fmt != NAMEID_FORMAT_PERSISTENT or self._recorded.get(recorded) is None:
            uow.sessions.add_participant(assertion.session.id, "saml", row.entity_id, participant, now)
        encrypt = row.encrypt_assertion or row.require_encryption
        spec = AnswerSpec(
            sp_entity_id=row.entity_id, acs_url=checked.acs_url, in_response_to=checked.request_id or None,
            name_id=name_id, name_id_format=fmt, session_index=index,
            authn_instant=assertion.session.authn_instant, authn_class=authn_class,
            attributes=saml_attributes(released, row.compat_oid), sign_assertion=True,
            sign_response=row.sign_response,
            encryption_cert=metadata.encryption_certs[0] if metadata.encryption_certs and encrypt else None,
        )
        return Prepared(checked, row.name, now, spec=spec,
                        recorded=recorded if fmt == NAMEID_FORMAT_PERSISTENT else None)

    def finish(self, prepared: Prepared) -> PostForm:
        """After the commit of ``prepare``'s transaction: build and sign the answer (or the refusal)."""
        checked = prepared.checked
        if prepared.spec is None:
            status, sub_status, message = prepared.refusal or (STATUS_RESPONDER, None, "")
            return self.deny(checked, prepared.sp_name, status, sub_status, message)
        if prepared.recorded is not None:
            self._recorded.put(prepared.recorded, True)
        document = build_response(self.config, self.keys.current(), self.backend, prepared.spec, prepared.now)
        return PostForm(action=checked.acs_url, field="SAMLResponse", message=encode_post(document),
                        relay_state=checked.relay_state, sp_name=prepared.sp_name)

    def _refusal(self, row: SpRow, metadata: SpMetadata, checked: CheckedAuthnRequest,
                 authn_class: str) -> tuple[str, str | None, str] | None:
        """Why this SP must get a status instead of an assertion: an authentication context the session
        does not meet, or a policy requiring encryption with no encryption key to use (SECURITY S24)."""
        if checked.authn_classes and authn_class not in checked.authn_classes:
            log.info("saml answer refused: authentication context %s not requested by %s", authn_class, row.entity_id)
            return STATUS_RESPONDER, STATUS_NO_AUTHN_CONTEXT, "contexte d'authentification non satisfait"
        if row.require_encryption and not metadata.encryption_certs:
            log.warning("saml answer refused: %s requires encryption and publishes no encryption key", row.entity_id)
            return STATUS_RESPONDER, None, "chiffrement exigé mais aucune clé de chiffrement"
        return None

    def login_page_satisfies(self, checked: CheckedAuthnRequest) -> bool:
        """Whether a login on our page gives an authentication context the request accepts."""
        return not checked.authn_classes or FRESH_LOGIN in checked.authn_classes

    def needs_fresh_login(self, assertion: Assertion, checked: CheckedAuthnRequest) -> bool:
        """The SSO session's class does not satisfy the request but a password login on our page would."""
        return bool(checked.authn_classes) and not checked.passive \
            and session_class(assertion.session.auth_method) not in checked.authn_classes \
            and FRESH_LOGIN in checked.authn_classes

    def _release(self, uow: Any, assertion: Assertion, row: SpRow, now: dt.datetime) -> dict[Attr, list[str]]:
        """The attributes this SP may see, read from the register once per session, SP, policy version and
        account as read with the session: a change of the account's row (its verified e-mail, or the
        ``register_changed_at`` a register import sets when it changes what the account releases) reaches
        the next answer."""
        key = (assertion.session.id, row.entity_id, (row.updated_at, row.attributes, row.clear_ine),
               assertion.account)
        released = self._released.get(key)
        if released is None:
            identity = load_identity(uow, assertion.account, assertion.session)
            attributes = parse_attribute_list(",".join(row.attributes)) if row.attributes else DEFAULT_RELEASE
            released = release_attributes(identity, ReleasePolicy(sp_id=row.entity_id, attributes=attributes,
                                                                  clear_ine=row.clear_ine),
                                          secret=self.services.settings.pairwise_salt,
                                          logout_url=self.config.url("/logout"), now=now)
            self._released.put(key, released)
        return released

    def deny(self, checked: CheckedAuthnRequest, sp_name: str, status: str = STATUS_RESPONDER,
             sub_status: str | None = None, message: str = "") -> PostForm:
        """A signed error status for a trusted request, to the ACS taken from metadata."""
        document = build_status_response(self.config, self.keys.current(), self.backend, acs_url=checked.acs_url,
                                          in_response_to=checked.request_id or None, status=status,
                                          sub_status=sub_status, message=message, now=self.services.clock.now())
        return PostForm(action=checked.acs_url, field="SAMLResponse", message=encode_post(document),
                        relay_state=checked.relay_state, sp_name=sp_name)
