"""``idp sp …`` as an operator uses it: files, URLs (signed, fresh), the metadata/ directory, policies."""

from __future__ import annotations

import datetime as dt
import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from idp.storage.saml_store import SqlSamlStore
from tests.conftest import DEFAULT_PASSWORD
from tests.protocols.saml.conftest import OneLoginSp, make_keypair


@pytest.fixture
def sp_file(sp_keypairs: Any, idp_cert: bytes, tmp_path: Path) -> tuple[OneLoginSp, Path]:
    sp = OneLoginSp("sp1", sp_keypairs["sp1"], idp_cert)
    path = tmp_path / "sp1.xml"
    path.write_text(sp.metadata())
    return sp, path


def test_add_list_set_remove(runner: Any, services: Any, sp_file: tuple[OneLoginSp, Path]) -> None:
    sp, path = sp_file
    added = runner("sp", "add", str(path), "--attributes", "sn,givenName,FrEduCtEleveINE", "--nameid", "transient",
                   "--compat-oid", "--clear-ine", "--name", "ENT Occitanie", "--home-url", "https://sp1.test/")
    assert added.exit_code == 0, added.output
    assert f"ajouté : {sp.entity_id}" in added.output
    listed = runner("sp", "list")
    assert "ENT Occitanie" in listed.output and "nameid=transient" in listed.output and "noms=oid" in listed.output
    with services.uow() as uow:
        entries = uow.services.list_enabled()
    assert [(e.protocol, e.client_id, e.name, e.url) for e in entries] == \
        [("saml", sp.entity_id, "ENT Occitanie", "https://sp1.test/")]
    changed = runner("sp", "set", sp.entity_id, "--nameid", "persistent", "--basic-names", "--allow-idp-initiated")
    assert changed.exit_code == 0, changed.output
    with services.uow() as uow:
        row = SqlSamlStore(uow.session).get_sp(sp.entity_id)
    assert row.nameid_format == "persistent" and not row.compat_oid and row.allow_idp_initiated and row.clear_ine
    assert row.attributes == ("FrEduCtEleveINE", "givenName", "sn")
    assert runner("sp", "remove", sp.entity_id).exit_code == 0
    assert "aucun service" in runner("sp", "list").output
    with services.uow() as uow:
        assert uow.services.list_enabled() == []


def test_signed_requests_policy(runner: Any, services: Any, sp_file: tuple[OneLoginSp, Path], sp_keypairs: Any,
                                idp_cert: bytes, tmp_path: Path) -> None:
    """Signed AuthnRequests by default; ``--allow-unsigned-requests`` / back for an SP that cannot sign, refused
    for an SP whose metadata promises signed requests; a warning when requests would all be refused."""
    signer, signer_path = sp_file
    assert runner("sp", "add", str(signer_path)).exit_code == 0
    assert "requêtes=signées" in runner("sp", "list").output
    refused = runner("sp", "set", signer.entity_id, "--allow-unsigned-requests")
    assert refused.exit_code == 1 and "AuthnRequestsSigned" in refused.output
    legacy = OneLoginSp("sp2", sp_keypairs["sp2"], idp_cert, sign_requests=False)
    legacy.data["sp"].pop("x509cert")  # a legacy SP that publishes no key at all
    legacy.data["sp"].pop("privateKey")
    legacy.data["security"].update(logoutRequestSigned=False, logoutResponseSigned=False)
    from onelogin.saml2.settings import OneLogin_Saml2_Settings

    legacy_path = tmp_path / "legacy.xml"
    metadata = OneLogin_Saml2_Settings(legacy.data, sp_validation_only=True).get_sp_metadata()
    legacy_path.write_text(metadata if isinstance(metadata, str) else metadata.decode())
    added = runner("sp", "add", str(legacy_path))
    assert added.exit_code == 0 and "attention" in added.output and "--allow-unsigned-requests" in added.output
    assert runner("sp", "set", legacy.entity_id, "--allow-unsigned-requests").exit_code == 0
    assert runner("sp", "add", str(legacy_path)).output.count("attention") == 0  # the exemption is kept
    with services.uow() as uow:
        assert SqlSamlStore(uow.session).get_sp(legacy.entity_id).allow_unsigned_requests
    assert "requêtes=non-signées-acceptées" in runner("sp", "list").output
    assert runner("sp", "set", legacy.entity_id, "--require-signed-requests").exit_code == 0
    with services.uow() as uow:
        assert not SqlSamlStore(uow.session).get_sp(legacy.entity_id).allow_unsigned_requests


def test_errors_are_one_french_line(runner: Any, sp_file: tuple[OneLoginSp, Path], tmp_path: Path) -> None:
    _, path = sp_file
    unknown = runner("sp", "add", str(path), "--attributes", "sn,motDePasse")
    assert unknown.exit_code == 1 and "attribut inconnu : motDePasse" in unknown.output
    assert runner("sp", "remove", "https://nobody.test/").exit_code == 1
    (tmp_path / "doctype.xml").write_text('<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')
    refused = runner("sp", "add", str(tmp_path / "doctype.xml"))
    assert refused.exit_code == 1 and "illisibles" in refused.output
    url_without_cert = runner("sp", "add", "https://sp.example/metadata")
    assert url_without_cert.exit_code == 1 and "--cert" in url_without_cert.output


def test_expired_metadata_refused(runner: Any, sp_file: tuple[OneLoginSp, Path]) -> None:
    _, path = sp_file
    text = re.sub(r'validUntil="[^"]+"', 'validUntil="2020-01-01T00:00:00Z"', path.read_text(), count=1)
    path.write_text(text)
    refused = runner("sp", "add", str(path))
    assert refused.exit_code == 1 and "expirées" in refused.output


@pytest.fixture
def dropped(instance_dir: Path, sp_file: tuple[OneLoginSp, Path]) -> Iterator[Path]:
    """sp1's metadata dropped in the instance's metadata/ directory (removed afterwards)."""
    directory = instance_dir / "metadata"
    directory.mkdir(exist_ok=True)
    target = directory / "sp1.xml"
    target.write_bytes(sp_file[1].read_bytes())
    yield target
    target.unlink()


def test_metadata_directory_loaded_by_refresh(runner: Any, dropped: Path, sp_file: tuple[OneLoginSp, Path]) -> None:
    sp, _ = sp_file
    result = runner("sp", "refresh")
    assert result.exit_code == 0, result.output
    assert f"ajouté : {sp.entity_id}" in result.output
    assert f"à jour : {sp.entity_id}" in runner("sp", "refresh").output


class _Handler(http.server.BaseHTTPRequestHandler):
    documents: dict[str, bytes] = {}

    def do_GET(self) -> None:  # noqa: N802
        body = self.documents.get(self.path)
        self.send_response(200 if body else 404)
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def metadata_server() -> Iterator[tuple[str, dict[str, bytes]]]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Handler.documents
    server.shutdown()
    server.server_close()


def _signed_metadata(sp: OneLoginSp, key: bytes, cert: bytes, valid_until: dt.datetime) -> bytes:
    text = sp.metadata()
    text = text.replace(' validUntil="', ' data-old="', 1)
    text = text.replace("<md:EntityDescriptor ", f'<md:EntityDescriptor validUntil="{valid_until:%Y-%m-%dT%H:%M:%SZ}" ', 1)
    signed = OneLogin_Saml2_Utils.add_sign(text, key.decode(), cert.decode(),
                                           sign_algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                                           digest_algorithm="http://www.w3.org/2001/04/xmlenc#sha256")
    return signed if isinstance(signed, bytes) else signed.encode()


def _federation_signer(tmp_path: Path) -> tuple[bytes, bytes, tuple[str, str], dt.datetime]:
    """The federation's metadata signer: key, certificate, the ``--cert`` option, a ``validUntil`` in 10 days."""
    key, cert = make_keypair("federation")
    (tmp_path / "federation.crt").write_bytes(cert)
    return key, cert, ("--cert", str(tmp_path / "federation.crt")), dt.datetime.now(dt.UTC) + dt.timedelta(days=10)


def test_url_registration_checks_signature_and_refreshes(runner: Any, services: Any, clock: Any, tmp_path: Path,
                                                         sp_file: tuple[OneLoginSp, Path],
                                                         metadata_server: tuple[str, dict[str, bytes]]) -> None:
    sp, _ = sp_file
    base, documents = metadata_server
    key, cert, cert_arg, later = _federation_signer(tmp_path)
    documents["/md.xml"] = _signed_metadata(sp, key, cert, later)
    documents["/tampered.xml"] = documents["/md.xml"].replace(b"https://sp1.test/acs", b"https://evil.test/acs")
    documents["/unsigned.xml"] = sp.metadata().encode()
    other_key, _ = make_keypair("other")
    documents["/other.xml"] = _signed_metadata(sp, other_key, cert, later)
    for bad in ("/tampered.xml", "/unsigned.xml", "/other.xml"):
        refused = runner("sp", "add", base + bad, *cert_arg)
        assert refused.exit_code == 1 and "signature" in refused.output, (bad, refused.output)
    added = runner("sp", "add", base + "/md.xml", *cert_arg, "--name", "Fédéré")
    assert added.exit_code == 0, added.output
    with services.uow() as uow:
        row = SqlSamlStore(uow.session).get_sp(sp.entity_id)
    assert row.refresh_url == base + "/md.xml" and row.valid_until is not None
    documents["/md.xml"] = _signed_metadata(sp, key, cert, later + dt.timedelta(days=30))
    refreshed = runner("sp", "refresh")
    assert refreshed.exit_code == 0 and f"à jour : {sp.entity_id}" in refreshed.output
    with services.uow() as uow:
        row2 = SqlSamlStore(uow.session).get_sp(sp.entity_id)
    assert row2.valid_until > row.valid_until and row2.name == "Fédéré"
    documents["/md.xml"] = documents["/tampered.xml"]
    failed = runner("sp", "refresh")
    assert failed.exit_code == 1 and "signature" in failed.output
    with services.uow() as uow:
        assert SqlSamlStore(uow.session).get_sp(sp.entity_id).metadata_hash == row2.metadata_hash


def test_registered_sp_shows_in_my_services(runner: Any, client: Any, login: Any, account_factory: Any,
                                            sp_file: tuple[OneLoginSp, Path]) -> None:
    _, path = sp_file
    runner("sp", "add", str(path), "--name", "ENT Occitanie", "--home-url", "https://sp1.test/")
    account = account_factory()
    login(account.identifier, DEFAULT_PASSWORD)
    page = client.get("/services").get_data(as_text=True)
    assert "ENT Occitanie" in page


# --- issue 21 items 7 and 4: every URL an SP registers (S29, C15) --------------------------------------------


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> None:
    """``development = false`` with the instance's https base_url."""
    monkeypatch.setenv("IDP_SERVER__DEVELOPMENT", "false")


def _variant(sp: OneLoginSp, tmp_path: Path, old: str, new: str) -> Path:
    path = tmp_path / "variant.xml"
    text = sp.metadata()
    assert old in text
    path.write_text(text.replace(old, new))
    return path


@pytest.mark.parametrize(("old", "new"), [("https://sp1.test/acs", "http://sp1.test/acs"),
                                          ("https://sp1.test/sls", "http://sp1.test/sls"),
                                          ("https://sp1.test/acs", "http://10.1.2.3:8080/acs")])
def test_production_refuses_http_endpoints_naming_them(runner: Any, services: Any, production: None, tmp_path: Path,
                                                       sp_file: tuple[OneLoginSp, Path], old: str, new: str) -> None:
    sp, _ = sp_file
    refused = runner("sp", "add", str(_variant(sp, tmp_path, old, new)))
    assert refused.exit_code == 1 and refused.output.startswith("erreur :"), refused.output
    assert new in refused.output and "https" in refused.output
    with services.uow() as uow:
        assert SqlSamlStore(uow.session).get_sp(sp.entity_id) is None


def test_production_accepts_https_and_loopback_http(runner: Any, production: None, tmp_path: Path,
                                                    sp_file: tuple[OneLoginSp, Path]) -> None:
    sp, path = sp_file
    assert runner("sp", "add", str(path)).exit_code == 0
    loopback = _variant(sp, tmp_path, "https://sp1.test/acs", "http://127.0.0.1:5001/acs")
    added = runner("sp", "add", str(loopback))
    assert added.exit_code == 0, added.output


def test_development_accepts_http(runner: Any, tmp_path: Path, sp_file: tuple[OneLoginSp, Path]) -> None:
    sp, _ = sp_file
    added = runner("sp", "add", str(_variant(sp, tmp_path, "https://sp1.test/acs", "http://sp1.test/acs")))
    assert added.exit_code == 0, added.output


@pytest.mark.parametrize("new", ["https://sp1.test/app/../acs", "https://sp1.test/app/%2e%2e/acs",
                                 "https://sp1.test/app/..%2Facs", "https://user@sp1.test/acs"])
def test_unsafe_endpoint_urls_refused_in_any_mode(runner: Any, tmp_path: Path, sp_file: tuple[OneLoginSp, Path],
                                                  new: str) -> None:
    sp, _ = sp_file
    for old in ("https://sp1.test/acs", "https://sp1.test/sls"):
        refused = runner("sp", "add", str(_variant(sp, tmp_path, old, new)))
        assert refused.exit_code == 1 and new in refused.output, refused.output


def test_refresh_refuses_an_http_endpoint_and_keeps_the_stored_metadata(
        runner: Any, services: Any, dropped: Path, production: None, tmp_path: Path,
        sp_file: tuple[OneLoginSp, Path]) -> None:
    sp, _ = sp_file
    assert runner("sp", "refresh").exit_code == 0
    with services.uow() as uow:
        before = SqlSamlStore(uow.session).get_sp(sp.entity_id).metadata_hash
    dropped.write_bytes(_variant(sp, tmp_path, "https://sp1.test/acs", "http://sp1.test/acs").read_bytes())
    failed = runner("sp", "refresh")
    assert failed.exit_code == 1 and "http://sp1.test/acs" in failed.output, failed.output
    with services.uow() as uow:
        assert SqlSamlStore(uow.session).get_sp(sp.entity_id).metadata_hash == before


def test_metadata_fetched_from_a_url_is_checked_too(runner: Any, services: Any, production: None, tmp_path: Path,
                                                   sp_file: tuple[OneLoginSp, Path],
                                                   metadata_server: tuple[str, dict[str, bytes]]) -> None:
    sp, _ = sp_file
    base, documents = metadata_server
    key, cert, cert_arg, later = _federation_signer(tmp_path)
    clear = OneLoginSp("sp1", (sp.key, sp.cert), sp.cert)
    clear.data["sp"]["assertionConsumerService"]["url"] = "http://sp1.test/acs"
    documents["/clear.xml"] = _signed_metadata(clear, key, cert, later)
    refused = runner("sp", "add", base + "/clear.xml", *cert_arg)
    assert refused.exit_code == 1 and "http://sp1.test/acs" in refused.output, refused.output
    with services.uow() as uow:
        assert SqlSamlStore(uow.session).get_sp(sp.entity_id) is None
