"""Shared fixtures: settings, a real database (SQLite, or PostgreSQL with IDP_TEST_DATABASE_URL), the app.

Every test that touches the database gets empty tables. Keys and secrets are generated here, never read
from ``keys/``. The clock is injected (``clock.advance(minutes=31)``), nothing sleeps.
"""

from __future__ import annotations

import functools
import html
import os
import re
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from idp import create_app
from idp.core.accounts.identifiers import identifier_base
from idp.core.accounts.model import Account, AccountState, NewAccount, Profile
from idp.core.clock import FrozenClock
from idp.settings import Settings, load_settings
from idp.storage import schema
from idp.storage.db import Database
from idp.storage.models import Base
from idp.wiring import Services, build_services

PG_URL = os.environ.get("IDP_TEST_DATABASE_URL", "")
DEFAULT_PASSWORD = "Velo-Rouge-Garonne-42"

pytest_plugins: list[str] = ["e2e.plugin"]  # the browser tests' session hooks (tests/e2e/)


def _backend() -> str:
    return "postgresql" if PG_URL else "sqlite"


def pytest_report_header(config: pytest.Config) -> str:
    return f"idp database: {_backend()}"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Say which database the suite ran on (CI checks this line for the PostgreSQL run)."""
    terminalreporter.write_line(f"idp database: {_backend()}")


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("IDP_TEST_REQUIRE_POSTGRESQL") and not PG_URL.startswith("postgresql"):
        raise pytest.UsageError("IDP_TEST_REQUIRE_POSTGRESQL is set but IDP_TEST_DATABASE_URL is not a PostgreSQL URL")


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _pg_database_for_worker(admin_url: str, purpose: str = "") -> str:
    """One database per xdist worker (and purpose), created afresh, so parallel workers never share rows."""
    base, _, dbname = admin_url.rpartition("/")
    dbname = dbname.split("?")[0] or "postgres"
    # IDP_TEST_DB_TAG keeps suites run side by side (several work trees) out of each other's databases.
    tag = re.sub(r"[^a-z0-9_]", "", os.environ.get("IDP_TEST_DB_TAG", "").lower())
    worker_db = f"{dbname}_idp_{tag + '_' if tag else ''}{purpose + '_' if purpose else ''}{_worker()}"
    plain = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{worker_db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{worker_db}"')
    return f"{base}/{worker_db}"


def fresh_database_url(sqlite_dir: Path, purpose: str) -> str:
    """For a whole instance run as processes (the demo): a SQLite file in ``sqlite_dir``, or a fresh PostgreSQL
    database of its own when IDP_TEST_DATABASE_URL is set."""
    if not PG_URL:
        return f"sqlite:///{sqlite_dir / 'idp.sqlite3'}"
    return _pg_database_for_worker(PG_URL, purpose)


def free_port_block(count: int) -> int:
    """A first port such that ``count`` consecutive ports are free on 127.0.0.1."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = int(probe.getsockname()[1])
        if first + count >= 65535:
            continue
        taken: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                taken.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in taken:
                sock.close()
    raise RuntimeError("no block of free ports on 127.0.0.1")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    if PG_URL:
        return _pg_database_for_worker(PG_URL)
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'idp.sqlite3'}"


@pytest.fixture(scope="session")
def instance_dir(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Path:
    """A directory with a config.toml and keys/, as ``idp init`` would leave it."""
    root = tmp_path_factory.mktemp("instance")
    (root / "keys").mkdir(mode=0o700)
    secret = root / "keys" / "secret.key"
    secret.write_text(secrets.token_urlsafe(48))
    secret.chmod(0o600)
    (root / "keys" / "pairwise.key").write_text(secrets.token_urlsafe(48))
    (root / "config.toml").write_text(
        "[server]\nbase_url = \"https://idp.test\"\ndevelopment = true\n\n"
        f"[database]\nurl = \"{database_url}\"\n\n"
        "[passwords]\nargon2_time_cost = 1\nargon2_memory_kib = 1024\n\n"
        "[logging]\nlevel = \"WARNING\"\n"
    )
    return root


@pytest.fixture(scope="session")
def oidc_keys_dir(instance_dir: Path) -> Path:
    """The OIDC signing keys in the instance's ``keys/``, as ``idp init`` makes them."""
    from idp.oidc.keyset import ensure_oidc_keys

    directory = instance_dir / "keys"
    ensure_oidc_keys(directory)
    return directory


@pytest.fixture(scope="session")
def base_settings(instance_dir: Path) -> Settings:
    return load_settings(instance_dir / "config.toml", environ={})


@pytest.fixture(scope="session")
def db(base_settings: Settings) -> Iterator[Database]:
    database = Database(base_settings)
    assert database.dialect == _backend(), f"tests asked for {_backend()} but got {database.dialect}"
    schema.upgrade(database)
    # Tables whose migration is not written yet still exist for the tests; test_migrations.py fails
    # until the migration matches the models.
    Base.metadata.create_all(database.engine)
    add_missing_columns(database)
    yield database
    database.dispose()


def add_missing_columns(database: Database) -> None:
    """Columns added to existing models before their migration is written (as ``create_all`` does for tables)."""
    from alembic.autogenerate import compare_metadata
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    with database.engine.begin() as conn:
        context = MigrationContext.configure(conn)
        operations = Operations(context)
        for diff in compare_metadata(context, Base.metadata):
            if isinstance(diff, tuple) and diff[0] == "add_column":
                _, schema_name, table, column = diff
                operations.add_column(table, column._copy(), schema=schema_name)


def clean(database: Database) -> None:
    """Empty every table (fast on both databases), and forget the cached service catalogue."""
    from idp.storage import catalogue

    catalogue.changed()
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with database.engine.begin() as conn:
        if database.dialect == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))  # noqa: S608 - names from our metadata


@pytest.fixture
def clean_db(db: Database) -> Database:
    clean(db)
    return db


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    return base_settings


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def services(settings: Settings, clean_db: Database, clock: FrozenClock) -> Services:
    return build_services(settings, clock=clock, db=clean_db)


@pytest.fixture
def app(settings: Settings, services: Services) -> Flask:
    application = create_app(settings, services)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class AccountFactory:
    """Create accounts directly through the repository (what the register import and activation will do)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def __call__(self, given_names: str = "Marie", family_name: str = "Dupont", *,
                 password: str | None = DEFAULT_PASSWORD, profile: Profile = Profile.PARENT,
                 state: AccountState = AccountState.ACTIVE, **extra: Any) -> Account:
        hashed = self.services.hasher.hash(password) if password else None
        new = NewAccount(profile=profile, family_name=family_name, given_names=given_names, state=state,
                         password_hash=hashed, **extra)
        with self.services.uow() as uow:
            account = uow.accounts.add(new, identifier_base(given_names, family_name), self.services.clock.now())
            uow.commit()
        return account


@pytest.fixture
def account_factory(services: Services) -> AccountFactory:
    return AccountFactory(services)


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


@functools.cache
def _catalogue(lang: str) -> Any:
    from idp.web import catalogues

    return catalogues.read(lang)


def translated(lang: str, text: str) -> str:
    """``text`` (a French catalogue key) as the ``lang`` catalogue has it: what a page in ``lang`` must show."""
    if lang == "fr":
        return text
    message = _catalogue(lang).get(text)
    assert message is not None and message.string, f"not in the {lang} catalogue: {text}"
    return str(message.string)


def page_in(response: Any, lang: str, *texts: str) -> str:
    """The page's text once checked to be in ``lang``: ``lang``/``dir`` on ``<html>``, the language switch, each of
    ``texts`` (French catalogue keys) translated, and for another language than French not left in French."""
    page = html.unescape(response.get_data(as_text=True))
    direction = "rtl" if lang == "ar" else "ltr"
    assert f'<html lang="{lang}" dir="{direction}">' in page
    assert 'hreflang="fr"' in page and 'hreflang="ar"' in page, "no language switch"
    for french in texts:
        assert translated(lang, french) in page, french
        assert lang == "fr" or french not in page, f"left in French: {french}"
    return page


LOGIN_URL_RE = re.compile(r"/login/[A-Za-z0-9_-]{20,}")
FORM_ACTION_RE = re.compile(r'<form method="post" action="([^"]+)"')


def form_url_of(response: Any) -> str:
    """The login screen's own address from the answer that started a login: the redirect of a protocol
    front-end (``/login/<id>``), or, for the screen the portal's ``GET /login`` shows at once, the address its
    form posts to (``/login?profil=…``: the portal stores no request) — ``/login`` on its profile choice."""
    if response.status_code in (302, 303):
        return str(response.headers["Location"])
    assert response.status_code == 200, response.status_code
    page = response.get_data(as_text=True)
    if match := FORM_ACTION_RE.search(page):
        return html.unescape(match.group(1))
    if match := LOGIN_URL_RE.search(page):
        return match.group(0)
    assert 'href="/login?profil=' in page, "no login screen in the answer"
    return "/login"


def stored_login_url(client: FlaskClient, services: Services, profile: str = "parent") -> str:
    """A login begun the way a protocol front-end begins one: a request stored for this browser, whose screen
    is ``/login/<id>`` (made with the portal's client, so a successful login completes it and shows "Mes
    services"). The portal's own ``GET /login`` stores nothing; tests of request binding, expiry and of the
    detours that carry a request (activation, recovery, FranceConnect) start here."""
    from idp.web.portal import PORTAL
    from idp.web.security import browser_cookie_name

    name = browser_cookie_name(services.settings)
    if client.get_cookie(name) is None:
        client.get("/login")  # the browser cookie, as a first visit sets it
    cookie = client.get_cookie(name)
    assert cookie is not None
    request = services.flow.begin(PORTAL, {}, cookie.value, None, profile_hint=profile)
    return f"/login/{request.id}"


def profile_of(services: Services, identifier: str) -> str:
    """The login screen's word for the profile of the account behind ``identifier`` (``parent`` when unknown):
    the profile a person picks before typing their own identifier, as a browser test would pick it."""
    from idp.core.accounts.identifiers import normalise_login_input

    with services.uow() as uow:
        account = uow.accounts.by_identifier(normalise_login_input(identifier))
    return account.profile.choice if account is not None else "parent"


class LoginHelper:
    """Drive the login screens like a browser: start, pick a profile, post the form."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def start(self, path: str = "/login?profil=parent") -> str:
        """Follow the start of a login to the form page; return the form's URL."""
        return form_url_of(self.client.get(path))

    def submit(self, form_url: str, identifier: str, password: str) -> Any:
        page = self.client.get(form_url)
        assert page.status_code == 200, page.status_code
        return self.client.post(form_url, data={"identifiant": identifier, "mot_de_passe": password,
                                                "csrf_token": csrf_from(page.get_data(as_text=True))})

    def __call__(self, identifier: str, password: str = DEFAULT_PASSWORD, path: str = "/login?profil=parent") -> Any:
        return self.submit(self.start(path), identifier, password)


@pytest.fixture
def login(client: FlaskClient) -> LoginHelper:
    return LoginHelper(client)


class Runner:
    """Run ``idp`` commands in-process against the test instance's config.toml."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None) -> Result:
        from idp.cli.main import cli

        return self.runner.invoke(cli, ["--config", str(self.config), *args], input=input, catch_exceptions=False)


@pytest.fixture
def runner(instance_dir: Path, clean_db: Database) -> Runner:
    return Runner(instance_dir / "config.toml")
