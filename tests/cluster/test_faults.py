"""Faults on the running topology, for real: PostgreSQL stopped during a login and during an activation's last
step, Redis killed, an instance SIGKILLed between two steps of a login. Each ends with the database's
consistency check (``idp check``)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from idp.storage.models import AccountRow, RepresentativeRow
from tests.cluster import activation
from tests.cluster.conftest import PARENT, PARENT_PASSWORD, PUPIL, PUPIL_PASSWORD, ClusterBrowser, Topology

#: One pytest worker runs tests/cluster (./run test uses --dist loadgroup): one topology, started once.
pytestmark = [pytest.mark.xdist_group("cluster"), pytest.mark.slow]

UNAVAILABLE = "Service momentanément indisponible"


def _form(browser: ClusterBrowser, topology: Topology, profile: str = "parent"):
    page = browser.get(f"{topology.idp}/login?profil={profile}")
    assert 'name="mot_de_passe"' in page.text
    return page


def _submit_login(browser: ClusterBrowser, page, identifier: str, password: str):
    return browser.submit(page, "mot_de_passe", {"identifiant": identifier, "mot_de_passe": password})


def _as_a_person_retries(step, attempts: int = 3):
    """Run ``step`` again while it answers the French 503 page (« Réessayez… »), as its reader would. After a
    database restart an instance answers at most one such page per worker thread (its held connection, found
    dead at its next statement; the pools are checked by ``DisconnectWatch``): measured 0 or 1 here."""
    for _ in range(attempts):
        page = step()
        if page.status != 503:
            return page
        assert UNAVAILABLE in page and page.response.headers["Retry-After"]
    raise AssertionError(f"still 503 after {attempts} attempts")


def test_postgresql_stopped_during_a_login(topology: Topology) -> None:
    browser = ClusterBrowser(topology).on(0)
    page = _form(browser, topology)
    topology.cluster.postgres.stop("immediate")  # a crash, not a polite shutdown
    try:
        refused = _submit_login(browser, page, PARENT, PARENT_PASSWORD)
        assert refused.status == 503 and refused.response.headers["Retry-After"] == "30"
        assert UNAVAILABLE in refused and "Traceback" not in refused.text and "psycopg" not in refused.text
        # Through HAProxy, once its checks (/healthz) find no instance reaching the database: the French page.
        deadline = time.monotonic() + 10
        while (through := requests.get(f"{topology.idp}/login?profil=parent", timeout=10)).status_code != 503:
            assert time.monotonic() < deadline, "HAProxy still sends requests to instances without a database"
            time.sleep(0.3)
        assert through.headers["Retry-After"] == "30" and UNAVAILABLE in through.text
    finally:
        topology.cluster.postgres.start()
    topology.wait_serving()
    again = ClusterBrowser(topology).on(1)
    done = _as_a_person_retries(lambda: _submit_login(again, _form(again, topology), PARENT, PARENT_PASSWORD))
    assert "Mes services" in done, done.text[:800]
    assert topology.consistency() == []


def test_postgresql_stopped_at_an_activations_last_step(topology: Topology) -> None:
    family, given, phone, born = topology.family_to_activate()
    browser = ClusterBrowser(topology).on(1)
    page = activation.start(browser, topology, family, given, phone)
    code, _ = topology.sms_code(phone)
    page = browser.submit(page, "code", {"code": code})
    page = browser.submit(page, "lien_0", activation.children_answers(page, born))
    assert page.url.endswith("/creer-mon-compte/mot-de-passe")
    choice = {"mot_de_passe": activation.GOOD_PASSWORD, "confirmation": activation.GOOD_PASSWORD}
    topology.cluster.postgres.stop("immediate")
    try:
        refused = browser.submit(page, "mot_de_passe", choice)
        assert refused.status == 503 and refused.response.headers["Retry-After"] == "30"
        assert UNAVAILABLE in refused
    finally:
        topology.cluster.postgres.start()
    topology.wait_serving()
    with topology.services.db.sessionmaker() as s:  # nothing half-written: no account, no link
        assert s.scalar(select(RepresentativeRow.account_id).where(RepresentativeRow.mobile_phone == phone,
                                                                   RepresentativeRow.family_name == family)) is None
        assert s.scalar(select(AccountRow.id).where(AccountRow.family_name == family,
                                                    AccountRow.given_names == given)) is None
    assert topology.consistency() == []
    # The same transaction (its SMS code was accepted before the outage) is finished on another instance.
    done = _as_a_person_retries(lambda: browser.on(2).submit(page, "mot_de_passe", choice))
    assert "Votre compte a été activé avec succès" in done, done.text[:1500]
    assert topology.consistency() == []


def test_redis_killed_refuses_logins_and_validations_then_recovers(topology: Topology) -> None:
    service = f"{topology.service('pronote')}/"
    holder = ClusterBrowser(topology).on(0)
    assert "Mes services" in _submit_login(holder, _form(holder, topology), PARENT, PARENT_PASSWORD)
    issued = holder.http.get(f"{topology.cluster.instance_url(0)}/cas/login", params={"service": service},
                             allow_redirects=False, timeout=10)
    ticket = parse_qs(urlsplit(issued.headers["Location"]).query)["ticket"][0]
    browser = ClusterBrowser(topology).on(2)
    page = _form(browser, topology, "eleve")
    topology.cluster.redis.kill()
    try:
        refused = _submit_login(browser, page, PUPIL, PUPIL_PASSWORD)  # never let through unthrottled
        assert refused.status == 503 and UNAVAILABLE in refused and refused.response.headers["Retry-After"]
        validation = requests.get(f"{topology.cluster.instance_url(1)}/cas/p3/serviceValidate", timeout=10,
                                  params={"service": service, "ticket": ticket})
        assert validation.status_code == 503, validation.text[:500]
        ready = requests.get(f"{topology.cluster.instance_url(1)}/readyz", timeout=10)
        assert ready.status_code == 503 and ready.json()["redis"] == "down"
    finally:
        topology.cluster.redis.start()  # the instances are not restarted
    topology.wait_serving()
    done = _as_a_person_retries(lambda: _submit_login(browser, _form(browser, topology, "eleve"), PUPIL,
                                                      PUPIL_PASSWORD))
    assert "Mes services" in done, done.text[:800]
    issued = holder.http.get(f"{topology.cluster.instance_url(2)}/cas/login", params={"service": service},
                             allow_redirects=False, timeout=10)
    ticket = parse_qs(urlsplit(issued.headers["Location"]).query)["ticket"][0]
    validation = requests.get(f"{topology.cluster.instance_url(1)}/cas/p3/serviceValidate", timeout=10,
                              params={"service": service, "ticket": ticket})
    assert "<cas:authenticationSuccess>" in validation.text
    assert topology.consistency() == []


def test_an_instance_killed_in_the_middle_of_a_login(topology: Topology) -> None:
    browser = ClusterBrowser(topology).on(0)
    page = _form(browser, topology)  # the form came from instance 1 …
    topology.cluster.kill_instance(0)  # … which dies (SIGKILL) before the password is sent
    try:
        done = _as_a_person_retries(lambda: _submit_login(browser.on(None), page, PARENT, PARENT_PASSWORD))
        assert done.status == 200 and "Mes services" in done, done.text[:800]
        for _ in range(6):  # and HAProxy keeps sending everyone to the living instances
            assert requests.get(f"{topology.idp}/login?profil=parent", timeout=10).status_code == 200
    finally:
        topology.cluster.start_instance(0)
        topology.cluster.wait_instance(0)
    topology.wait_serving()
    assert topology.consistency() == []


def _scrape(topology: Topology, index: int) -> str:
    return requests.get(f"{topology.cluster.instance_url(index)}/metrics", timeout=10,
                        headers={"Authorization": f"Bearer {topology.cluster.metrics_token}"}).text


def _durable_capacity(text: str) -> float:
    return next(float(line.split()[-1]) for line in text.splitlines()
                if line.startswith('idp_db_pool_capacity{pool="durable"}'))


def test_a_worker_that_dies_is_started_again_and_stops_counting_in_the_gauges(topology: Topology) -> None:
    server = topology.cluster.supervisor.children["idp2"].pid  # idp serve's main process (Granian)
    before = _durable_capacity(_scrape(topology, 1))  # one worker per instance here: its own pools
    (worker,) = _children(server)
    os.kill(worker, signal.SIGKILL)  # a worker lost in the middle of its work (out of memory, a crash)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if [pid for pid in _children(server) if pid != worker] and _ready(topology, 1):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the dead worker was not replaced")
    # The new worker's pools count; the dead one's live gauges are dropped at the scrape, not added to them.
    assert _durable_capacity(_scrape(topology, 1)) == before
    topology.wait_serving()
    assert topology.consistency() == []


def _ready(topology: Topology, index: int) -> bool:
    try:  # while its only worker is replaced, the instance may refuse the connection
        return requests.get(f"{topology.cluster.instance_url(index)}/readyz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
