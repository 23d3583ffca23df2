"""One real topology for tests/cluster: three instances (``idp serve``) behind HAProxy, their own PostgreSQL
(initdb + pg_ctl in a temporary folder) and redis-server, and the demo's ENT (SAML), Pronote (CAS) and
téléservices (OIDC) through HAProxy — started by the same code as ``idp cluster``, so the tests can stop
PostgreSQL, kill Redis or SIGKILL an instance.

The tests share it and run in one pytest worker (xdist group ``cluster``), on one pass of ``./run test``
(the PostgreSQL one when there is one: ``IDP_TEST_E2E=elsewhere`` marks the SQLite pass that is followed by it).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from conftest import free_port_block
from sqlalchemy import select

from idp.cli.demo_stack import Operator, ServiceSpec, Stack, adapter_specs
from idp.cluster.demo import start_demo_services
from idp.cluster.topology import Cluster, ClusterSpec
from idp.settings import load_settings
from idp.storage.activation_store import SqlOutbox
from idp.storage.consistency import check_consistency
from idp.storage.models import RepresentativeRow, StudentLinkRow, StudentRow
from idp.wiring import Services, build_services
from tests.adapters.browser import Browser

PARENT, PARENT_PASSWORD = "s.dupuis1", "Cartable-Vert-74"
PUPIL, PUPIL_PASSWORD = "c.dupuis1", "Trousse-Bleue-58"
INSTANCES = 3
CODE_RE = re.compile(r"\b([2-9A-HJKMNP-Z]{6})\b")


def _missing() -> str:
    if not shutil.which("haproxy") and not os.path.exists("/usr/sbin/haproxy"):
        return "haproxy"
    if not shutil.which("redis-server"):
        return "redis-server"
    import glob

    return "" if glob.glob("/usr/lib/postgresql/*/bin/initdb") else "postgresql (initdb)"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/cluster/" in str(item.fspath):
            if os.environ.get("IDP_TEST_E2E") == "elsewhere":
                item.add_marker(pytest.mark.skip(reason="tests/cluster run once, on the PostgreSQL pass"))
            elif missing := _missing():
                item.add_marker(pytest.mark.skip(reason=f"{missing} is not installed (./run test installs it)"))


@dataclass
class Topology:
    """The running topology, the demo services' addresses, and the database as the tests read it."""

    cluster: Cluster
    adapters: Stack
    specs: dict[str, ServiceSpec]
    services: Services
    _used: set[int] = field(default_factory=set)

    @property
    def idp(self) -> str:
        return self.cluster.url

    def service(self, name: str) -> str:
        return self.specs[name].url

    def op(self, *args: str) -> str:
        return Operator(str(self.cluster.config))(*args)

    def sms_code(self, phone: str, after: int = 0, timeout: float = 20.0) -> tuple[str, int]:
        """The last SMS code sent to ``phone`` by any instance (their delivery threads fill the outbox)."""
        box = SqlOutbox(self.services.db.sessionmaker)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [(m, code) for m in box.messages(to=phone, after_id=after)
                     if (code := CODE_RE.search(m["body"].split(":", 1)[1]))]
            if found:
                message, code = found[-1]
                return code.group(1), int(message["id"])
            time.sleep(0.2)
        raise AssertionError(f"no SMS to {phone}")

    def family_to_activate(self) -> tuple[str, str, str, dict[str, dt.date]]:
        """A parent of the register with no account yet, a mobile and a name nobody else has: (family name, given
        name, mobile, the children's birth dates in the order the children's page lists them)."""
        with self.services.db.sessionmaker() as s:
            rows = s.execute(select(RepresentativeRow.id, RepresentativeRow.family_name,
                                    RepresentativeRow.given_names, RepresentativeRow.mobile_phone)
                             .where(RepresentativeRow.account_id.is_(None), RepresentativeRow.mobile_phone != "")
                             .order_by(RepresentativeRow.id)).all()
            names = Counter((r.family_name, r.given_names) for r in rows)
            for row in rows:
                if names[(row.family_name, row.given_names)] != 1 or row.id in self._used:
                    continue
                self._used.add(row.id)
                born = s.execute(select(StudentRow.given_names, StudentRow.birth_date).join(
                    StudentLinkRow, StudentLinkRow.student_id == StudentRow.id)
                    .where(StudentLinkRow.representative_id == row.id)).all()
                return row.family_name, row.given_names, row.mobile_phone, dict(born)
        raise AssertionError("no parent left to activate in the demo register")

    def wait_serving(self, timeout: float = 30.0) -> None:
        """After a fault: wait until every instance and HAProxy answer ``/readyz`` and ``/healthz`` again."""
        self.services.db.dispose()  # the tests' own pooled connections died with the server
        deadline = time.monotonic() + timeout
        urls = [f"{self.cluster.instance_url(i)}/readyz" for i in range(INSTANCES)] + [f"{self.idp}/healthz"]
        while urls and time.monotonic() < deadline:
            try:
                if requests.get(urls[0], timeout=3).status_code == 200:
                    urls.pop(0)
                    continue
            except requests.RequestException:
                pass
            time.sleep(0.3)
        assert not urls, f"not serving again: {urls}"

    def consistency(self) -> list[Any]:
        with self.services.db.sessionmaker() as session:
            return check_consistency(session)


@pytest.fixture(scope="session")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    root = tmp_path_factory.mktemp("cluster")
    port = free_port_block(4)
    specs = [s for s in adapter_specs("127.0.0.1", port + 1, f"http://127.0.0.1:{port}", root / "services")
             if s.name != "franceconnect"]
    spec = ClusterSpec(root=root, instances=INSTANCES, port=port, workers=1, overrides={
        "server": {"development": True, "product_name": "Compte scolaire"},
        "passwords": {"argon2_time_cost": 1, "argon2_memory_kib": 1024},
        "database": {"pool_timeout_seconds": 2}, "logging": {"level": "WARNING"},
        "delivery": {"background": True, "poll_seconds": 1},
        "protocols": {"enabled": ["saml", "oidc", "cas"]}})
    cluster = Cluster(spec)
    adapters = Stack(echo=lambda _line: None)
    services: Services | None = None
    try:
        cluster.start()
        start_demo_services(cluster, adapters, specs)
        services = build_services(load_settings(cluster.config, environ={}))
        yield Topology(cluster, adapters, {s.name: s for s in specs}, services)
    finally:
        if services is not None:
            services.db.dispose()
        adapters.stop()
        cluster.stop(discard=True)


class _PinnedSession(requests.Session):
    """Sends every request meant for the identity provider (HAProxy or any instance) to one chosen instance,
    or through HAProxy when none is chosen."""

    def __init__(self, cluster: Cluster) -> None:
        super().__init__()
        self.cluster = cluster
        self.pin: int | None = None

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if request.url:
            target = self.cluster.url if self.pin is None else self.cluster.instance_url(self.pin)
            for prefix in [self.cluster.url, *(self.cluster.instance_url(i) for i in range(INSTANCES))]:
                if request.url.startswith(prefix + "/"):
                    request.url = target + request.url[len(prefix):]
                    break
        return super().send(request, **kwargs)


class ClusterBrowser(Browser):
    """The adapters' test browser, whose requests to the identity provider go to the instance it is ``on``."""

    def __init__(self, topology: Topology) -> None:
        super().__init__()
        self.http = _PinnedSession(topology.cluster)
        self.topology = topology

    def on(self, index: int | None) -> ClusterBrowser:
        """Send the next requests to instance ``index`` (``None``: through HAProxy)."""
        self.http.pin = index  # type: ignore[attr-defined]
        return self


@pytest.fixture
def browser(topology: Topology) -> ClusterBrowser:
    return ClusterBrowser(topology)
