"""Complete SP-initiated SAML logins per second on one core (SECURITY R15).

One worker of idp serve's server (Granian, 4 threads) pinned to core 0 (``taskset -c 0``) on PostgreSQL, the load generator pinned to core 1.
Two scenarios, each with our in-process signing and with the ``xmlsec1`` program (pysaml2's stock backend):
- existing SSO session: GET /saml/sso/redirect?SAMLRequest=… → 200 autopost page with the signed Response;
- password login: new browser, SSO request → login page → POST identifier + password → resume → Response
  (argon2id m=19 MiB t=2 p=1; the argon2 ceiling on one core is printed beside it).

Requests are made by python3-saml ahead of the timed phase; a sample of responses is validated by it after.
Bounded: ``--seconds`` per run (default 8). Needs PostgreSQL at ``--database`` (default local, db created).
Run: ``python bench/saml/bench_logins.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from idp.keystore import RSA_CERT_FILE, RSA_KEY_FILE, self_signed_certificate  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "bench" / "login"))
import hash_probe  # noqa: E402
import reference  # noqa: E402
from common import server_command  # noqa: E402

PASSWORD = "Velo-Rouge-Garonne-42"
INPUT_RE = re.compile(r'name="SAMLResponse" value="([^"]+)"')
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keypair(bits: int, name: str) -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return pem, self_signed_certificate(key, name)


def prepare(instance: Path, database: str, port: int, bits: int) -> tuple[object, str]:
    """An instance directory, a fresh database, one SP (python3-saml) and one account."""
    if database.startswith("postgresql"):
        _, _, name = database.rpartition("/")
        with psycopg.connect(database.replace(f"/{name}", "/postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    keys = instance / "keys"
    keys.mkdir(mode=0o700)
    (keys / "secret.key").write_text(secrets.token_urlsafe(48))
    (keys / "pairwise.key").write_text(secrets.token_urlsafe(48))
    key, cert = keypair(bits, "bench-idp")
    (keys / RSA_KEY_FILE).write_bytes(key)
    (keys / RSA_CERT_FILE).write_bytes(cert)
    (instance / "config.toml").write_text(
        f'[server]\nbase_url = "http://127.0.0.1:{port}"\n\n[database]\nurl = "{database}"\npool_size = 4\n\n'
        '[protocols]\nenabled = ["saml"]\n\n[logging]\nlevel = "WARNING"\n')
    from idp.settings import load_settings
    from idp.storage import schema
    from idp.storage.models import Base
    from idp.wiring import build_services

    settings = load_settings(instance / "config.toml", environ={})
    services = build_services(settings)
    schema.upgrade(services.db)
    Base.metadata.create_all(services.db.engine)
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))  # the SAML fixtures import the suite's conftest as pytest does
    from tests.conftest import add_missing_columns
    from tests.protocols.saml.conftest import OneLoginSp

    add_missing_columns(services.db)  # columns whose migration is not written yet

    sp_key, sp_cert = keypair(2048, "bench-sp")
    sp = OneLoginSp("sp1", (sp_key, sp_cert), cert, sign_requests=False)
    sp.data["idp"]["singleSignOnService"]["url"] = f"http://127.0.0.1:{port}/saml/sso/redirect"
    sp.data["idp"]["entityId"] = f"http://127.0.0.1:{port}/saml/metadata"
    (instance / "sp.xml").write_text(sp.metadata())
    from idp.core.accounts.identifiers import identifier_base
    from idp.core.accounts.model import AccountState, NewAccount, Profile
    from idp.saml import admin as saml_admin

    # The bench's SP sends unsigned requests (the cheaper case it measures): exempted as an operator would.
    saml_admin.register(services, str(instance / "sp.xml"), name="Bench SP", allow_unsigned_requests=True)
    with services.uow() as uow:
        account = uow.accounts.add(NewAccount(profile=Profile.PARENT, family_name="Dupont", given_names="Marie",
                                              state=AccountState.ACTIVE, password_hash=services.hasher.hash(PASSWORD)),
                                   identifier_base("Marie", "Dupont"), services.clock.now())
        uow.commit()
    services.db.dispose()
    return sp, account.identifier


def hash_ceiling() -> float:
    """argon2id verifications per second on one core with the production parameters."""
    from idp.core.passwords.hashing import HashParameters, PasswordHasher

    hasher = PasswordHasher(HashParameters(time_cost=2, memory_kib=19456, parallelism=1), max_concurrent=1)
    hashed = hasher.hash(PASSWORD)
    started = time.perf_counter()
    for _ in range(10):
        hasher.verify(hashed, PASSWORD)
    return 10 / (time.perf_counter() - started)


def start_server(instance: Path, port: int, signer: str, threads: int) -> subprocess.Popen[bytes]:
    """idp serve's server pinned to core 0, with the login bench's probe counting the argon2 CPU inside the
    worker, around this bench's app (``wsgi_app``: the normal app, or the one signing through xmlsec1)."""
    env = {**os.environ, "IDP_CONFIG": str(instance / "config.toml"), "BENCH_SAML_SIGNER": signer,
           "PYTHONPATH": f"{ROOT}:{ROOT / 'bench' / 'saml'}:{ROOT / 'bench' / 'login'}",
           "IDP_BENCH_APP": "wsgi_app:app", "IDP_BENCH_HASH_STATS": str(hash_stats(instance))}
    log = (instance / f"server-{signer}.log").open("wb")
    process = subprocess.Popen(server_command(0, port, threads, target="hash_probe:app"), env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code < 500:
                return process
        except requests.RequestException:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start")


def hash_stats(instance: Path) -> Path:
    """Where the worker's argon2 counters are (``bench/login/hash_probe.py``)."""
    return instance / "hash_stats.bin"


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (the server's main process and its worker), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15]) / tick  # utime, stime, and reaped children (xmlsec1)
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        pending.extend(int(c) for c in children)
    return total


def stop_server(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


@dataclasses.dataclass
class Result:
    done: int = 0
    failed: int = 0
    samples: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def run_load(base: str, urls: list[tuple[str, str]], seconds: float, threads: int, identifier: str | None,
             cookies: dict[str, str]) -> tuple[float, Result]:
    """Each thread takes prepared request URLs until the time is up; returns logins/s and the outcome."""
    result = Result()
    lock = threading.Lock()
    position = iter(range(len(urls)))
    stop_at = time.monotonic() + seconds

    def worker() -> None:
        with requests.Session() as session:
            session.cookies.update(cookies)
            while time.monotonic() < stop_at:
                with lock:
                    index = next(position, None)
                if index is None:
                    return
                url, request_id = urls[index]
                ok, body = (login_with_password(base, url, identifier) if identifier else sso(session, base, url))
                with lock:
                    result.done += ok
                    result.failed += not ok
                    if ok and len(result.samples) < 3:
                        result.samples.append((body, request_id))

    started = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return result.done / (time.monotonic() - started), result


def sso(session: requests.Session, base: str, url: str) -> tuple[bool, str]:
    response = session.get(base + url, allow_redirects=False)
    match = INPUT_RE.search(response.text) if response.status_code == 200 else None
    return bool(match), match.group(1) if match else ""


def login_with_password(base: str, url: str, identifier: str | None) -> tuple[bool, str]:
    with requests.Session() as browser:
        first = browser.get(base + url, allow_redirects=False)
        if first.status_code != 303:
            return False, ""
        form_url = base + first.headers["Location"] + "?profil=parent"
        form = browser.get(form_url)
        csrf = CSRF_RE.search(form.text)
        if not csrf:
            return False, ""
        posted = browser.post(form_url, data={"identifiant": identifier, "mot_de_passe": PASSWORD,
                                              "csrf_token": csrf.group(1)}, allow_redirects=False)
        if posted.status_code != 303:
            return False, ""
        return sso(browser, base, posted.headers["Location"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/idp_bench_saml")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--bits", type=int, default=2048)
    parser.add_argument("--server-threads", type=int, default=4,
                        help="application threads of the one worker: they overlap database round trips")
    parser.add_argument("--signers", default="inprocess,xmlsec1")
    args = parser.parse_args()
    if shutil.which("taskset") is None:
        raise SystemExit("taskset is required (util-linux)")
    os.sched_setaffinity(0, {1})
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="idp-bench-saml-") as tmp:
        instance = Path(tmp)
        sp, identifier = prepare(instance, args.database, port, args.bits)
        base = f"http://127.0.0.1:{port}"
        ceiling = hash_ceiling()
        print(f"IdP signing key RSA-{args.bits}; 1 Granian worker ({args.server_threads} threads) on core 0, "
              f"PostgreSQL, load on core 1 ({args.threads} client threads), {args.seconds:.0f} s per run")
        reference.calibrate()
        print()
        for signer in args.signers.split(","):
            server = start_server(instance, port, signer, args.server_threads)
            try:
                cookies = login_cookies(base, sp, identifier)
                for label, password in (("existing SSO session", False), ("password login", True)):
                    count = int((2000 if not password else 150) * args.seconds / 8) + 50
                    urls = []
                    for _ in range(count):
                        url, request_id = sp.login_url()  # type: ignore[attr-defined]
                        parts = urlsplit(url)
                        urls.append((parts.path + "?" + parts.query, request_id))
                    cpu_before, hashed_before = cpu_seconds(server.pid), hash_probe.read(hash_stats(instance))
                    rate, result = run_load(base, urls, args.seconds, args.threads,
                                            identifier if password else None, cookies)
                    cpu_ms = (cpu_seconds(server.pid) - cpu_before) * 1000 / max(result.done, 1)
                    hashed = hash_probe.read(hash_stats(instance))
                    hash_ms = (hashed["cpu_seconds"] - hashed_before["cpu_seconds"]) * 1000 / max(result.done, 1)
                    valid = sum(validate(sp, body, request_id) for body, request_id in result.samples)
                    print(f"  {signer:<9} {label:<22} {rate:7.1f} logins/s measured{reference.scaled(rate)}; "
                          f"worker CPU {cpu_ms:6.2f} ms/login "
                          f"= {1000 / cpu_ms:6.1f} logins/s per core   ({result.done} ok, {result.failed} failed, "
                          f"{valid}/{len(result.samples)} sampled responses valid for python3-saml)")
                    if password:
                        print(f"  {'':<9} {'':<22} in the worker: argon2 {hash_ms:.1f} ms/login, the rest "
                              f"{cpu_ms - hash_ms:.1f} ms (4 requests: HTTP server, Flask, SAML, statements)")
            finally:
                stop_server(server)
        print(f"\n  argon2id m=19 MiB t=2 p=1 ceiling on one core: {ceiling:.1f} verifications/s; "
              f"load average {os.getloadavg()[0]:.1f} (2 cores shared with other work)")


def login_cookies(base: str, sp: object, identifier: str) -> dict[str, str]:
    """A browser with an SSO session (one password login), as cookies."""
    with requests.Session() as browser:
        url, _ = sp.login_url()  # type: ignore[attr-defined]
        parts = urlsplit(url)
        first = browser.get(base + parts.path + "?" + parts.query, allow_redirects=False)
        form_url = base + first.headers["Location"] + "?profil=parent"
        csrf = CSRF_RE.search(browser.get(form_url).text)
        assert csrf
        browser.post(form_url, data={"identifiant": identifier, "mot_de_passe": PASSWORD,
                                     "csrf_token": csrf.group(1)}, allow_redirects=True)
        return browser.cookies.get_dict()


def validate(sp: object, body: str, request_id: str) -> bool:
    page = f'<form method="post" action="{sp.acs}"><input type="hidden" name="SAMLResponse" value="{body}">'  # type: ignore[attr-defined]
    auth = sp.consume(page, request_id)  # type: ignore[attr-defined]
    return bool(auth.is_authenticated())


if __name__ == "__main__":
    main()
