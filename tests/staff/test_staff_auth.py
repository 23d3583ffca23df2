"""Staff accounts: invitation, enrolment (password then passkey or TOTP), login with both factors, short
sessions apart from the families', throttling, disabling; ``idp staff``."""

from __future__ import annotations

import base64
import dataclasses
import io
import os
import re
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import zxingcpp
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

from idp import create_app
from idp.core.clock import FrozenClock
from idp.core.staff.factors import totp_uri
from idp.settings import RedisSettings, Settings
from idp.storage.db import Database
from idp.storage.models import AuditEventRow
from idp.storage.staff_store import StaffMemberRow, StaffPasskeyRow
from idp.wiring import Services, build_services

from .staff_support import (
    SCHOOL_A,
    STAFF_PASSWORD,
    Authenticator,
    Register,
    csrf,
    enrol,
    invite,
    log_in,
    options_of,
    password_step,
)


def test_totp_enrolment_then_login_needs_both_factors(client: FlaskClient, services: Services,
                                                     register: Register) -> None:
    user = enrol(client, services, "ref@college.fr")
    assert client.get("/etablissement").status_code == 200
    log_in(client, services, user)
    assert client.get("/etablissement").status_code == 200
    # The secret is sealed in the database, never stored in clear.
    with services.uow() as uow:
        row = uow.session.scalar(select(StaffMemberRow).where(StaffMemberRow.email == "ref@college.fr"))
        assert row is not None and user.secret not in row.totp_sealed and row.password_hash.startswith("$argon2id$")
        assert row.enrol_token_hash is None


def test_totp_enrolment_shows_a_qr_code_that_reads_as_the_key_uri(client: FlaskClient, services: Services,
                                                                  register: Register) -> None:
    token = invite(services, "ref@college.fr")
    page = client.get(f"/etablissement/inscription/{token}")
    client.post(f"/etablissement/inscription/{token}", data={
        "csrf_token": csrf(page), "mot_de_passe": STAFF_PASSWORD, "confirmation": STAFF_PASSWORD})
    answer = client.get("/etablissement/second-facteur")
    text = answer.get_data(as_text=True)
    secret = re.search(r'id="cle-totp">([A-Z2-7]+)<', text).group(1)  # type: ignore[union-attr]
    png = re.search(r'id="qr-totp" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert png is not None and "img-src 'self' data:" in answer.headers["Content-Security-Policy"]
    decoded = zxingcpp.read_barcode(Image.open(io.BytesIO(base64.b64decode(png.group(1)))))
    assert decoded is not None and decoded.format == zxingcpp.BarcodeFormat.QRCode
    # The code carries the Key Uri Format address of this member's pending secret, named after the service.
    assert decoded.text == totp_uri(secret, "ref@college.fr", services.settings.server.product_name)
    uri = urlsplit(decoded.text)
    query = parse_qs(uri.query)
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp") and query["secret"] == [secret]
    assert query["issuer"] == [f"{services.settings.server.product_name} – Console établissement"]


def test_password_alone_opens_nothing(client: FlaskClient, services: Services, register: Register) -> None:
    user = enrol(client, services, "ref@college.fr")
    client.post("/etablissement/deconnexion", data={"csrf_token": csrf(client.get("/etablissement/connexion"))})
    assert password_step(client, user.email).status_code == 303
    for path in ("/etablissement", "/etablissement/recherche?q=Martin", "/etablissement/boite"):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["Location"].endswith("/etablissement/second-facteur")


def test_totp_code_is_not_replayed_and_wrong_codes_end_the_half_session(client: FlaskClient, services: Services,
                                                                         register: Register) -> None:
    user = enrol(client, services, "ref@college.fr")
    client.post("/etablissement/deconnexion", data={"csrf_token": csrf(client.get("/etablissement/connexion"))})
    password_step(client, user.email)
    page = client.get("/etablissement/second-facteur")
    replay = pyotp.TOTP(user.secret).at(services.clock.now())  # the enrolment's code, same time step
    answer = client.post("/etablissement/second-facteur/code", data={"csrf_token": csrf(page), "code": replay})
    assert answer.status_code == 400
    for _ in range(4):
        answer = client.post("/etablissement/second-facteur/code", data={"csrf_token": csrf(page), "code": "000000"})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/etablissement/connexion")
    assert client.get("/etablissement").headers["Location"].endswith("/etablissement/connexion")


def test_passkey_registration_and_login(client: FlaskClient, services: Services, register: Register,
                                        authenticator: Authenticator) -> None:
    user = enrol(client, services, "ref@college.fr", passkey=authenticator)
    assert client.get("/etablissement").status_code == 200
    log_in(client, services, user, passkey=authenticator)
    assert client.get("/etablissement").status_code == 200
    with services.uow() as uow:
        key = uow.session.scalar(select(StaffPasskeyRow))
        assert key is not None and key.sign_count == user.sign_count == 1


def test_passkey_from_another_origin_or_replayed_challenge_is_refused(client: FlaskClient, services: Services,
                                                                      register: Register,
                                                                      authenticator: Authenticator) -> None:
    user = enrol(client, services, "ref@college.fr", passkey=authenticator)
    client.post("/etablissement/deconnexion", data={"csrf_token": csrf(client.get("/etablissement/connexion"))})
    password_step(client, user.email)
    page = client.get("/etablissement/second-facteur")
    options = options_of(page)
    phished = authenticator.get(user, options, origin="https://idp-test.example")
    answer = client.post("/etablissement/second-facteur/cle", data={"csrf_token": csrf(page), "credential": phished})
    assert answer.status_code == 400
    # The challenge died with the failed attempt: the same options cannot be answered again.
    again = authenticator.get(user, options)
    answer = client.post("/etablissement/second-facteur/cle", data={"csrf_token": csrf(page), "credential": again})
    assert answer.status_code == 400
    assert client.get("/etablissement").status_code == 303


def test_enrolment_link_is_single_use_and_expires(client: FlaskClient, services: Services,
                                                  register: Register) -> None:
    token = invite(services, "sec@college.fr")
    clock = services.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(hours=73)
    assert client.get(f"/etablissement/inscription/{token}").status_code == 400
    token = invite(services, "sec@college.fr")  # a new invitation mails a new link
    page = client.get(f"/etablissement/inscription/{token}")
    client.post(f"/etablissement/inscription/{token}", data={"csrf_token": csrf(page), "mot_de_passe": STAFF_PASSWORD,
                                                           "confirmation": STAFF_PASSWORD})
    assert client.get(f"/etablissement/inscription/{token}").status_code == 400


def test_weak_enrolment_password_is_refused(client: FlaskClient, services: Services, register: Register) -> None:
    token = invite(services, "sec@college.fr")
    page = client.get(f"/etablissement/inscription/{token}")
    answer = client.post(f"/etablissement/inscription/{token}", data={
        "csrf_token": csrf(page), "mot_de_passe": "motdepasse", "confirmation": "motdepasse"})
    assert answer.status_code == 400
    assert client.get(f"/etablissement/inscription/{token}").status_code == 200  # the link still works


def test_idle_staff_session_ends_after_15_minutes(client: FlaskClient, services: Services,
                                                  register: Register) -> None:
    enrol(client, services, "ref@college.fr")
    clock = services.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(minutes=14)
    assert client.get("/etablissement").status_code == 200
    clock.advance(minutes=15, seconds=1)
    answer = client.get("/etablissement")
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/etablissement/connexion")


def test_staff_login_is_throttled_and_audited(client: FlaskClient, services: Services, register: Register) -> None:
    user = enrol(client, services, "ref@college.fr")
    for _ in range(5):
        assert password_step(client, user.email, "Faux-mot-de-passe-1!").status_code == 401
    assert password_step(client, user.email).status_code == 429  # the right password waits too
    with services.uow() as uow:
        events = uow.session.scalars(select(AuditEventRow.event)).all()
    assert events.count("staff.login_failed") == 5 and "staff.login" in events


def test_staff_session_is_not_a_family_session(client: FlaskClient, services: Services, register: Register) -> None:
    enrol(client, services, "ref@college.fr")
    assert client.get_cookie("idp_sso") is None and client.get_cookie("__Host-sso") is None
    answer = client.get("/services")
    assert answer.status_code == 303  # "Mes services" asks for a family login


def test_disabled_member_is_logged_out_at_once(client: FlaskClient, services: Services, register: Register,
                                               runner) -> None:  # noqa: ANN001
    enrol(client, services, "ref@college.fr")
    result = runner("staff", "disable", "ref@college.fr")
    assert result.exit_code == 0, result.output
    assert client.get("/etablissement").status_code == 303
    assert password_step(client, "ref@college.fr").status_code == 401


def test_staff_cli_add_and_list(runner, services: Services, register: Register) -> None:  # noqa: ANN001
    result = runner("staff", "add", "--uai", SCHOOL_A.lower(), "--role", "secretariat", "--email",
                    "Secretariat@College.fr", "--name", "Secrétariat Chappe")
    assert result.exit_code == 0, result.output
    assert "secretariat@college.fr : 0340011C (secretariat) ; état invited" in result.output
    listed = runner("staff", "list")
    assert "secretariat@college.fr" in listed.output and "0340011C:secretariat" in listed.output
    unknown = runner("staff", "add", "--uai", "9999999Z", "--email", "x@y.fr")
    assert unknown.exit_code == 1 and "absent du registre" in unknown.output


REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "")


@pytest.mark.skipif(not REDIS_URL, reason="set IDP_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15)")
def test_staff_login_throttle_counters_live_in_redis(settings: Settings, clean_db: Database, clock: FrozenClock,
                                                     register: Register) -> None:
    import redis

    for key in (r := redis.Redis.from_url(REDIS_URL)).scan_iter("idp:throttle:*"):
        r.delete(key)
    configured = dataclasses.replace(settings, redis=RedisSettings(url=REDIS_URL))
    services = build_services(configured, clock=clock, db=clean_db)
    app = create_app(configured, services)
    app.config["TESTING"] = True
    client = app.test_client()
    user = enrol(client, services, "ref@college.fr")
    for _ in range(5):
        assert password_step(client, user.email, "Faux-mot-de-passe-1!").status_code == 401
    assert password_step(client, user.email).status_code == 429
    assert any(True for _ in r.scan_iter("idp:throttle:id:*"))
    clock.advance(seconds=61)
    assert password_step(client, user.email).status_code == 303


def test_a_new_login_ends_the_session_the_browser_had(client: FlaskClient, services: Services,
                                                      register: Register) -> None:
    enrol(client, services, "ref@college.fr")
    before = client.get_cookie("__Host-staff").value
    assert password_step(client, "ref@college.fr").status_code == 303
    assert client.get_cookie("__Host-staff").value != before
    other = FlaskClient(client.application, use_cookies=True)
    other.set_cookie("__Host-staff", before, secure=True)
    assert other.get("/etablissement").status_code == 303  # the earlier full session is over
