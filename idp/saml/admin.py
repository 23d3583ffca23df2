"""Registering SAML service providers (used by ``idp sp …``): from a file, a URL, or the ``metadata/``
directory, with the release policy chosen by the operator; refreshing URL and directory registrations."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from idp.saml import registry
from idp.storage.saml_store import SpRow, SqlSamlStore
from idp.wiring import Services

METADATA_DIRECTORY = "metadata"


@dataclass(frozen=True)
class Registered:
    """One SP written to the database."""

    entity_id: str
    created: bool
    #: What the operator should know (e.g. requests that will be refused), in French.
    warnings: tuple[str, ...] = ()


def _read_source(source: str, cert: bytes | None) -> tuple[bytes, str, str]:
    """The metadata bytes, the stored source, and the refresh URL (for URLs)."""
    if source.startswith(("https://", "http://")):
        if cert is None:
            raise registry.MetadataRejected("une adresse de métadonnées exige --cert (certificat de signature)")
        return registry.fetch(source), source, source
    path = Path(source)
    return path.read_bytes(), str(path.resolve()), ""


def check_encryption_policy(entity: registry.SpMetadata, require: bool, encrypt: bool) -> None:
    """An SP that must only get encrypted assertions needs an encryption key and encryption on (S24)."""
    if not require:
        return
    if not encrypt:
        raise registry.MetadataRejected(f"{entity.entity_id} : --require-encryption et --no-encrypt sont contradictoires")
    if not entity.encryption_certs:
        raise registry.MetadataRejected(
            f"{entity.entity_id} : le chiffrement des assertions est exigé mais les métadonnées ne publient aucune "
            "clé de chiffrement (KeyDescriptor use=\"encryption\")")


def check_signing_policy(entity: registry.SpMetadata, policy: dict[str, Any],
                         existing: SpRow | None) -> tuple[str, ...]:
    """Refuse an exemption from signed requests that the SP's own metadata contradicts; otherwise return the
    warnings the operator should read (an exemption that no longer applies, requests that will be refused)."""
    requested = policy.get("allow_unsigned_requests")
    allow = bool(existing.allow_unsigned_requests if requested is None and existing else requested)
    if allow and entity.authn_requests_signed:
        message = (f"{entity.entity_id} : ses métadonnées annoncent des requêtes signées "
                   "(AuthnRequestsSigned=\"true\") ; une requête non signée en son nom reste refusée")
        if requested:
            raise registry.MetadataRejected(message + ", --allow-unsigned-requests ne s'applique pas")
        return (message + " malgré l'exception enregistrée",)
    if not allow and not entity.signing_certs:
        return (f"{entity.entity_id} : aucune clé de signature dans ses métadonnées ; ses requêtes seront refusées "
                "(signature exigée). Pour un service qui ne sait pas signer : idp sp set "
                f"{entity.entity_id} --allow-unsigned-requests",)
    return ()


def _effective(policy: dict[str, Any], existing: SpRow | None) -> tuple[bool, bool]:
    require = policy.get("require_encryption")
    encrypt = policy.get("encrypt_assertion")
    if require is None:
        require = existing.require_encryption if existing else False
    if encrypt is None:
        encrypt = existing.encrypt_assertion if existing else True
    return bool(require), bool(encrypt)


def register(services: Services, source: str, *, cert: bytes | None = None, home_url: str | None = None,
             **policy: Any) -> list[Registered]:
    """Register (or update) every SP in the metadata at ``source``; the signature is checked when ``cert``.

    The one path of ``idp sp add`` (file or URL) and ``idp sp refresh``: every ACS and SLO URL is checked here
    (``registry.check_endpoint_urls``), so nothing unsafe is stored whichever way the metadata came."""
    now = services.clock.now()
    data, stored_source, refresh_url = _read_source(source, cert)
    entities = registry.parse_metadata(data, now=now, trusted_cert=cert)
    for entity in entities:
        registry.check_endpoint_urls(entity, development=services.settings.server.development)
    if len(entities) > 1 and policy.get("name"):
        raise registry.MetadataRejected("--name ne s'applique qu'à des métadonnées d'un seul service")
    out = []
    with services.uow() as uow:
        store = SqlSamlStore(uow.session)
        for entity in entities:
            existing = store.get_sp(entity.entity_id)
            check_encryption_policy(entity, *_effective(policy, existing))
            warnings = check_signing_policy(entity, policy, existing)
            xml = registry.entity_xml(data, entity.entity_id)
            extra = {"refresh_url": refresh_url, "refresh_cert": cert.decode("ascii")} if refresh_url and cert else {}
            created = store.save_sp(entity.entity_id, xml, registry.digest(xml), entity.valid_until, stored_source,
                                    now, home_url=home_url, **policy, **extra)
            out.append(Registered(entity.entity_id, created, warnings))
        uow.commit()
    return out


def set_policy(services: Services, entity_id: str, *, home_url: str | None = None, **policy: Any) -> bool:
    """Change the release policy of a registered SP (False if unknown); an encryption requirement and an
    exemption from signed requests are checked against its stored metadata first."""
    with services.uow() as uow:
        store = SqlSamlStore(uow.session)
        row = store.get_sp(entity_id)
        if row is None:
            return False
        entities = registry.parse_metadata(row.metadata_xml.encode("utf-8"), now=dt.datetime.min.replace(tzinfo=dt.UTC))
        entity = next((e for e in entities if e.entity_id == entity_id), entities[0])
        check_encryption_policy(entity, *_effective(policy, row))
        check_signing_policy(entity, policy, row)
        store.set_policy(entity_id, services.clock.now(), home_url=home_url, **policy)
        uow.commit()
    return True


def refresh(services: Services, metadata_dir: Path) -> tuple[list[Registered], list[str]]:
    """Re-fetch URL registrations and (re)load the files of ``metadata_dir``; returns successes and failures.

    A failed refresh keeps the stored metadata (it stays usable until its own ``validUntil``).
    """
    done: list[Registered] = []
    failed: list[str] = []
    with services.uow() as uow:
        rows = SqlSamlStore(uow.session).list_sps()
    for row in rows:
        if row.refresh_url:
            try:
                done += register(services, row.refresh_url, cert=row.refresh_cert.encode("ascii"))
            except registry.MetadataRejected as exc:
                failed.append(f"{row.entity_id} : {exc.description}")
    for path in sorted(metadata_dir.glob("*.xml")) if metadata_dir.is_dir() else []:
        try:
            done += register(services, str(path))
        except (registry.MetadataRejected, OSError) as exc:
            failed.append(f"{path.name} : {getattr(exc, 'description', exc)}")
    return done, failed


def expiring(services: Services, within: dt.timedelta) -> list[str]:
    """Entity ids whose metadata expires within ``within`` (for ``idp sp list``)."""
    now = services.clock.now()
    with services.uow() as uow:
        rows = SqlSamlStore(uow.session).list_sps()
    return [r.entity_id for r in rows if r.valid_until is not None and r.valid_until <= now + within]
