"""The demo as real HTTP servers for the browser tests: ``idp demo`` (the identity provider, the ENT, Pronote,
the téléservices and the FranceConnect-style provider, registered with one another as an operator would) in a
subprocess on free ports.

The instance directory gets a ``config.toml`` of its own; the database is SQLite in that directory, or a
PostgreSQL database of its own when ``IDP_TEST_DATABASE_URL`` is set. SMS and e-mails go to the development
outbox; tests read them with ``idp outbox``, as an operator would.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from conftest import free_port_block, fresh_database_url

START_TIMEOUT_SECONDS = 180
READY_LINE = "Ctrl-C arrête tout."
SERVICES = ("idp", "ent", "pronote", "teleservices", "franceconnect")
CODE_RE = re.compile(r"code[^0-9]*?\b([2-9A-HJKMNP-Z]{6})\b")


def _config(base_url: str, database_url: str) -> str:
    return (
        f'[server]\nbase_url = "{base_url}"\ndevelopment = true\n\n'
        f'[database]\nurl = "{database_url}"\n\n'
        '[keys]\ndirectory = "keys"\nrsa_bits = 2048\n\n'
        # Cheap hashes: the browser tests check screens, not the cost of argon2.
        "[passwords]\nargon2_time_cost = 1\nargon2_memory_kib = 1024\n\n"
        '[protocols]\nenabled = ["saml", "oidc", "cas"]\n\n'
        '[mail]\nbackend = "outbox"\n\n[sms]\nbackend = "outbox"\n\n'
        "[delivery]\nbackground = true\npoll_seconds = 1\n\n"
        '[logging]\nlevel = "WARNING"\n'
    )


@dataclass
class DemoStack:
    """One ``idp demo`` process (it starts and stops the servers) and the instance it serves."""

    instance: Path
    log_path: Path
    first_port: int = field(default_factory=lambda: free_port_block(len(SERVICES)))
    process: subprocess.Popen[bytes] | None = None
    demo_output: str = ""

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.first_port + SERVICES.index(service)}"

    @property
    def base_url(self) -> str:
        return self.url("idp")

    @property
    def config(self) -> Path:
        return self.instance / "config.toml"

    def idp(self, *args: str, timeout: float = 120) -> str:
        """Run an ``idp`` command against this instance (what an operator types); return its output."""
        done = subprocess.run([sys.executable, "-m", "idp", "--config", str(self.config), *args],
                              capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise AssertionError(f"idp {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start(self) -> None:
        self.instance.mkdir(parents=True, exist_ok=True)
        self.config.write_text(_config(self.base_url, fresh_database_url(self.instance, "e2e")), encoding="utf-8")
        self.idp("init")
        self._create_missing_tables()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "idp", "--config", str(self.config), "demo", "--port", str(self.first_port)],
                stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while READY_LINE not in (output := self.log_path.read_text(encoding="utf-8", errors="replace")):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"idp demo did not start (see {self.log_path}):\n{output[-3000:]}")
            time.sleep(0.3)
        self.demo_output = output[output.index("Démo prête"):]

    def _create_missing_tables(self) -> None:
        """Tables whose migration is not written yet (the lead writes them when merging), as the other test
        fixtures do; once the migration exists, ``idp init`` has created them and nothing is left to do."""
        from idp.settings import load_settings
        from idp.storage.models import Base
        from idp.wiring import build_services

        services = build_services(load_settings(self.config, environ={}))
        try:
            Base.metadata.create_all(services.db.engine)
        finally:
            services.db.dispose()

    def stop(self) -> None:
        """Ctrl-C, as a person stops the demo: it stops every server it started."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def demo_accounts(self) -> dict[str, tuple[str, str]]:
        """The ready accounts ``idp demo`` printed: role line → (identifier, password)."""
        found = re.findall(r"^  (\S.*)\n    identifiant (\S+)   mot de passe (\S+)$", self.demo_output, re.MULTILINE)
        assert len(found) >= 3, self.demo_output
        return {role: (identifier, password) for role, identifier, password in found}

    def demo_account(self, role_starts: str) -> tuple[str, str]:
        return next(v for role, v in self.demo_accounts().items() if role.startswith(role_starts))

    def not_activated_parent(self) -> tuple[str, str, str]:
        """(given name, family name, mobile) of the parent the demo left without an account."""
        match = re.search(r"pas encore activé : (\S+) (.+?), portable (\+\d+)", self.demo_output)
        assert match, self.demo_output
        return match.group(1), match.group(2), match.group(3)

    def birth_dates(self, family_name: str) -> dict[str, dt.date]:
        """Birth dates of the pupils of that family in the register (what their parent knows by heart)."""
        from sqlalchemy import select

        from idp.settings import load_settings
        from idp.storage.db import Database
        from idp.storage.models import StudentRow

        database = Database(load_settings(self.config, environ={}))
        try:
            with database.sessionmaker() as session:
                rows = session.execute(select(StudentRow.given_names, StudentRow.birth_date)
                                       .where(StudentRow.family_name == family_name)).all()
        finally:
            database.dispose()
        return {str(given): born for given, born in rows}

    def last_code(self, to: str = "") -> str:
        """The security code of the last message to ``to`` in the development outbox (``idp outbox --to``)."""
        deadline = time.monotonic() + 15
        while True:
            blocks = [b for b in self.idp("outbox", *(("--to", to) if to else ())).split("\n[") if b.strip()]
            if blocks:
                match = CODE_RE.search(blocks[-1].split("\n", 1)[-1])
                if match:
                    return match.group(1)
            if time.monotonic() > deadline:
                raise AssertionError(f"no code for {to} in the outbox:\n" + "\n".join(blocks))
            time.sleep(0.5)
