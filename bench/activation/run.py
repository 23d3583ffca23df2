"""Activation figures: complete parent SMS activations per second per core, and the provisional letters of a
2,000-pupil school.

1. SMS self-enrolment, through the real HTTP stack: a fresh PostgreSQL database (or SQLite with
   --database-url sqlite:///…) with N parents in the register (one child each, distinct mobile numbers), ONE
   worker of idp serve's server (Granian, 4 threads) pinned to core 0 (its delivery thread writes the SMS to the outbox table), this load
   generator pinned to core 1 with a few concurrent browsers. One activation = GET the form → POST name and
   phone → GET "code sent" → read the code from the outbox table → POST the code → GET the children → POST the
   birth date → GET the password page → POST the password (argon2id hash with the default parameters) → GET
   the success page (9 requests). Per-IP limits are raised for the run (every browser is 127.0.0.1).
2. Provisional credentials: 2,000 pupils in one school; time ``issue`` (accounts, argon2 hashes on the
   instance's hashing threads, register links) and the PDF letters + CSV, in this process.

    python bench/activation/run.py [--seconds 20] [--browsers 4] [--parents 600] [--pupils 2000]
                                   [--database-url postgresql://…]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import Instance, pin_self  # noqa: E402

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CODE = re.compile(r"est ([2-9A-HJKMNP-Z]{6})")
PASSWORD = "Tartine-Beurre-93!"  # noqa: S105 - benchmark accounts only
EXTRA = ("[activation]\nstarts_per_ip_per_hour = 1000000\n\n[sms]\nhourly_budget = 1000000\n\n"
         "[delivery]\nbackground = true\npoll_seconds = 1\n")


def populate(services: Any, parents: int, pupils: int) -> None:
    """Schools, pupils with one parent each (mobile +3361xxxxxxx), and a 2,000-pupil school for letters."""
    from sqlalchemy import insert

    from idp.storage.models import Base, RepresentativeRow, SchoolRow, StudentLinkRow, StudentRow

    Base.metadata.create_all(services.db.engine)
    now = dt.datetime.now(dt.UTC)
    with services.db.engine.begin() as conn:
        conn.execute(insert(SchoolRow), [
            {"uai": "0301234A", "name": "Collège Claude Chappe", "kind": "college", "academie": "Montpellier",
             "updated_at": now},
            {"uai": "0690026D", "name": "Lycée du Parc", "kind": "lycee", "academie": "Lyon", "updated_at": now}])
        conn.execute(insert(StudentRow), [
            {"id": i + 1, "ine": f"1{i:09d}A", "uai": "0301234A", "external_id": str(i), "family_name": f"Banc{i}",
             "given_names": "Jules", "birth_date": dt.date(2012, 1, 1 + i % 28), "class_code": "5A",
             "fingerprint": "x", "updated_at": now} for i in range(parents)])
        conn.execute(insert(RepresentativeRow), [
            {"id": i + 1, "uai": "0301234A", "external_id": f"R{i}", "family_name": f"Banc{i}",
             "given_names": "Anne", "mobile_phone": f"+3361{i:07d}", "fingerprint": "x", "updated_at": now}
            for i in range(parents)])
        conn.execute(insert(StudentLinkRow), [
            {"student_id": i + 1, "representative_id": i + 1, "relationship": "mere", "legal_responsibility": True,
             "fingerprint": "x", "updated_at": now} for i in range(parents)])
        if pupils:
            conn.execute(insert(StudentRow), [
                {"id": parents + i + 1, "ine": f"2{i:09d}B", "uai": "0690026D", "external_id": f"L{i}",
                 "family_name": family, "given_names": given, "birth_date": dt.date(2009, 1 + i % 12, 1),
                 "class_code": f"2{chr(65 + i % 20)}", "fingerprint": "x", "updated_at": now}
                for i, (family, given) in enumerate(school_names(pupils))])


def school_names(count: int) -> list[tuple[str, str]]:
    """Realistic name collisions: ~800 family names from syllables, 40 given names (seeded)."""
    rng = random.Random(2026)
    first = ["Ber", "Mar", "Du", "Le", "Ro", "Fa", "Gi", "Ca", "Mo", "Lam", "Bou", "Pe", "Ri", "Cha", "Vi", "Gar",
             "Lo", "Da", "Fou", "Sal"]
    second = ["nard", "tin", "pont", "roux", "bert", "ure", "rard", "mus", "reau", "bert", "chet", "tier", "vier",
              "lin", "rand", "sson", "cq", "ault", "cher", "nier", "guet", "lot", "ret", "mond", "ssat", "din", "lier",
              "ron", "zet", "gnac", "det", "beau", "ffre", "raud", "llet", "quin", "del", "ral", "than", "dieu"]
    given = ["Inès", "Noé", "Léa", "Hugo", "Chloé", "Louis", "Emma", "Jules", "Zoé", "Adam", "Manon", "Lucas",
             "Jade", "Nathan", "Camille", "Théo", "Sarah", "Enzo", "Lina", "Tom", "Anaïs", "Mathis", "Clara", "Yanis",
             "Lou", "Gabriel", "Maëlys", "Raphaël", "Eva", "Arthur", "Léna", "Paul", "Alice", "Sacha", "Romane",
             "Ethan", "Océane", "Mohamed", "Nina", "Timéo"]
    return [(rng.choice(first) + rng.choice(second), rng.choice(given)) for _ in range(count)]


class Outbox:
    """Reads codes from the outbox table, as the people's phones would receive them."""

    def __init__(self, url: str) -> None:
        self._url = url.replace("postgresql+psycopg://", "postgresql://")
        self._local = threading.local()

    def code_for(self, phone: str, timeout: float = 10) -> str:
        if not hasattr(self._local, "conn"):
            self._local.conn = psycopg.connect(self._url, autocommit=True)
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            row = self._local.conn.execute("SELECT body FROM outbox_messages WHERE recipient = %s ORDER BY id DESC "
                                           "LIMIT 1", (phone,)).fetchone()
            if row:
                return CODE.search(row[0]).group(1)  # type: ignore[union-attr]
            time.sleep(0.002)
        raise RuntimeError(f"no SMS for {phone}")


def _post(browser: requests.Session, url: str, data: dict[str, str]) -> requests.Response:
    token = CSRF.search(browser.get(url).text).group(1)  # type: ignore[union-attr]
    return browser.post(url, data={**data, "csrf_token": token}, allow_redirects=False)


def one_activation(base: str, outbox: Outbox, i: int) -> None:
    """Run one complete parent activation in a new browser; raise on any unexpected answer."""
    with requests.Session() as browser:
        page = browser.get(f"{base}/creer-mon-compte")
        token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        started = browser.post(f"{base}/creer-mon-compte", allow_redirects=False, data={
            "nom": f"Banc{i}", "prenom": "Anne", "telephone": f"061{i:07d}", "csrf_token": token})
        if started.status_code != 303:
            raise RuntimeError(f"start answered {started.status_code}")
        browser.get(f"{base}/creer-mon-compte/code")
        code = outbox.code_for(f"+3361{i:07d}")
        checked = browser.post(f"{base}/creer-mon-compte/code", data={"code": code, "csrf_token": token},
                               allow_redirects=False)
        if checked.headers.get("Location") != "/creer-mon-compte/eleves":
            raise RuntimeError(f"code answered {checked.status_code}")
        kids = _post(browser, f"{base}/creer-mon-compte/eleves", {
            "lien_0": "oui", "naissance_0_jour": f"{1 + i % 28:02d}", "naissance_0_mois": "01",
            "naissance_0_annee": "2012"})
        if kids.headers.get("Location") != "/creer-mon-compte/mot-de-passe":
            raise RuntimeError(f"children answered {kids.status_code}")
        done = _post(browser, f"{base}/creer-mon-compte/mot-de-passe",
                     {"mot_de_passe": PASSWORD, "confirmation": PASSWORD})
        if done.status_code != 303:
            raise RuntimeError(f"password answered {done.status_code}")
        if "activé avec succès" not in browser.get(f"{base}/creer-mon-compte/termine").text:
            raise RuntimeError("no success page")


def load(base: str, outbox: Outbox, parents: int, seconds: float, browsers: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    counter = iter(range(parents))
    deadline = time.perf_counter() + seconds

    def loop() -> None:
        while time.perf_counter() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            started = time.perf_counter()
            try:
                one_activation(base, outbox, i)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                with lock:
                    errors[0] += 1
                    if errors[0] <= 3:
                        print(f"  error: {exc}", file=sys.stderr)
                continue
            with lock:
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=loop) for _ in range(browsers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0]


def provisional_run(instance: Instance, pupils: int) -> None:
    from idp.delivery.letters import write_csv, write_letters

    services = instance.services()
    started = time.perf_counter()
    report = services.provisional.issue("0690026D", actor="bench")
    issued = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        write_letters(Path(out) / "l.pdf", report.issued, product="Compte scolaire", login_url=instance.base)
        write_csv(Path(out) / "l.csv", report.issued)
        size = (Path(out) / "l.pdf").stat().st_size
    written = time.perf_counter()
    print(f"provisional credentials, {len(report.issued)} pupils of one school ({instance.dialect}): "
          f"issue {issued - started:.1f} s (accounts, register links, argon2id t=1 m=8 MiB on 2 threads), "
          f"letters PDF ({size // 1024} KiB, {len(report.issued)} pages) + CSV {written - issued:.1f} s, "
          f"total {written - started:.1f} s")
    services.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--browsers", type=int, default=4)
    parser.add_argument("--parents", type=int, default=600)
    parser.add_argument("--pupils", type=int, default=2000)
    parser.add_argument("--database-url", default=os.environ.get("IDP_BENCH_DATABASE_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    with Instance(args.database_url, "activation", extra_config=EXTRA) as instance:
        services = instance.services()
        populate(services, args.parents, args.pupils)
        services.db.dispose()
        instance.start_server(core=0)
        pin_self(1)
        outbox = Outbox(instance.url)
        one_activation(instance.base, outbox, args.parents - 1)  # warm-up (not counted)
        started = time.perf_counter()
        latencies, errors = load(instance.base, outbox, args.parents - 1, args.seconds, args.browsers)
        elapsed = time.perf_counter() - started
        done = len(latencies)
        ms = sorted(x * 1000 for x in latencies) or [0.0]
        print(f"parent SMS activations ({instance.dialect}, 1 Granian worker on core 0, {args.browsers} browsers "
              f"on core 1, argon2id defaults): {done / elapsed:.1f} activations/s per core "
              f"({done} in {elapsed:.1f} s, {errors} errors); latency per activation (9 requests) "
              f"p50 {statistics.median(ms):.0f} ms, p95 {ms[int(0.95 * (len(ms) - 1))]:.0f} ms")
        instance.server.terminate()  # type: ignore[union-attr]
        instance.server.wait(10)  # type: ignore[union-attr]
        os.sched_setaffinity(0, {0, 1})
        provisional_run(instance, args.pupils)


if __name__ == "__main__":
    main()
