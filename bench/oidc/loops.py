"""The relying party and the three timed loops shared by ``run.py`` (our server) and ``node_reference/run.py``.

Each load-generating thread owns one ``Rp`` (one keep-alive connection, ``bench/common.py``'s ``Http``). A
``Meter`` (the server's CPU, read from /proc by the runner) is started when the threads start and reports the
CPU per operation. Any unexpected answer raises in its thread, which ends that connection's run and is
counted as an error: a figure with errors is not a figure.
"""

from __future__ import annotations

import base64
import json
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/
import reference  # noqa: E402
from common import Http, header_values  # noqa: E402

REDIRECT = "https://ent.bench.example.fr/oidc/callback"


class Meter(Protocol):
    def start(self) -> None: ...

    def report(self, done: int) -> str: ...


@dataclass(frozen=True)
class Endpoints:
    """Where the server answers (ours by default; node-oidc-provider: /auth, /token, /me)."""

    authorize: str = "/oidc/authorize"
    token: str = "/oidc/token"
    userinfo: str = "/oidc/userinfo"


def location(headers: str) -> str:
    values = header_values(headers, "location")
    return values[0] if values else ""


class Rp:
    """What each load-generating thread does, on its own connection."""

    def __init__(self, port: int, client_id: str, secret: str, cookie: str, *, scope: str = "openid profile fr_edu",
                 endpoints: Endpoints = Endpoints()) -> None:
        self.http = Http(port)
        self.client_id = client_id
        self.basic = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        self.cookie = cookie
        self.scope = scope
        self.endpoints = endpoints

    def authorize(self) -> str:
        query = urlencode({"response_type": "code", "client_id": self.client_id, "redirect_uri": REDIRECT,
                           "scope": self.scope, "state": secrets.token_urlsafe(8),
                           "nonce": secrets.token_urlsafe(8)})
        status, headers, _ = self.http.request("GET", f"{self.endpoints.authorize}?{query}", {"Cookie": self.cookie})
        code = parse_qs(urlsplit(location(headers)).query).get("code", [""])[0]
        if status not in (302, 303) or not code:  # ours redirects with 302, node-oidc-provider with 303
            raise RuntimeError(f"authorize answered {status}: {location(headers)}")
        return code

    def post_token(self, form: dict[str, str]) -> tuple[int, bytes]:
        status, _, body = self.http.request("POST", self.endpoints.token, {"Authorization": self.basic},
                                            urlencode(form).encode())
        return status, body

    def token(self, form: dict[str, str]) -> dict[str, str]:
        status, body = self.post_token(form)
        answer = json.loads(body)
        if status != 200 or "id_token" not in answer:
            raise RuntimeError(f"token answered {status}: {answer}")
        return answer  # type: ignore[no-any-return]

    def exchange(self, code: str) -> dict[str, str]:
        return self.token({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT})

    def userinfo(self, access_token: str) -> None:
        status, _, body = self.http.request("GET", self.endpoints.userinfo,
                                            {"Authorization": f"Bearer {access_token}"})
        if status != 200 or b'"sub"' not in body:
            raise RuntimeError(f"userinfo answered {status}")


def run_threads(count: int, work: Callable[[int, float], int], seconds: float,
                meter: Meter | None = None) -> tuple[int, float, list[str]]:
    """Run ``work(index, deadline)`` in ``count`` threads; return (operations done, elapsed, errors)."""
    done = [0] * count
    errors: list[str] = []
    start = time.perf_counter()
    deadline = start + seconds

    def target(i: int) -> None:
        try:
            done[i] = work(i, deadline)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc)[:200])

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    if meter is not None:
        meter.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done), time.perf_counter() - start, errors


def _report(label: str, done: int, elapsed: float, target: str, detail: str, errors: list[str],
            meter: Meter | None) -> None:
    rate = done / elapsed
    cpu = meter.report(done) if meter is not None else ""
    print(f"{label:<66}{rate:7.1f} /s per core{reference.scaled(rate)}{target} — {detail}; errors {len(errors)}{cpu}")
    for error in errors[:3]:
        print("   ", error)


def bench_flows(rps: list[Rp], seconds: float, meter: Meter | None = None, target: str = "") -> None:
    """Complete flows: authorize (SSO session) → token → userinfo, with the median latency of each step."""
    steps: dict[str, list[float]] = {"authorize": [], "token": [], "userinfo": []}
    lock = threading.Lock()

    def work(i: int, deadline: float) -> int:
        rp, count = rps[i], 0
        local: dict[str, list[float]] = {k: [] for k in steps}
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            code = rp.authorize()
            t1 = time.perf_counter()
            tokens = rp.exchange(code)
            t2 = time.perf_counter()
            rp.userinfo(tokens["access_token"])
            t3 = time.perf_counter()
            local["authorize"].append(t1 - t0)
            local["token"].append(t2 - t1)
            local["userinfo"].append(t3 - t2)
            count += 1
        with lock:
            for key, values in local.items():
                steps[key].extend(values)
        return count

    done, elapsed, errors = run_threads(len(rps), work, seconds, meter)
    medians = ", ".join(f"{k} {statistics.median(v) * 1000:.2f} ms" for k, v in steps.items() if v)
    _report("complete code flows (authorize → token → userinfo, SSO session):", done, elapsed, target,
            f"{done} in {elapsed:.1f} s, {len(rps)} clients; median {medians}", errors, meter)


def bench_exchanges(rps: list[Rp], seconds: float, meter: Meter | None = None, target: str = "") -> None:
    """Code exchanges, for codes issued (untimed) just before the window; codes live 60 s."""
    per_thread = 150
    codes: list[list[str]] = [[] for _ in rps]

    def issue(i: int) -> None:
        codes[i] = [rps[i].authorize() for _ in range(per_thread)]

    issuers = [threading.Thread(target=issue, args=(i,)) for i in range(len(rps))]
    for thread in issuers:
        thread.start()
    for thread in issuers:
        thread.join()
    latencies: list[float] = []
    lock = threading.Lock()

    def work(i: int, deadline: float) -> int:
        count, local = 0, []
        for code in codes[i]:
            if time.perf_counter() >= deadline:
                break
            t0 = time.perf_counter()
            rps[i].exchange(code)
            local.append(time.perf_counter() - t0)
            count += 1
        with lock:
            latencies.extend(local)
        return count

    done, elapsed, errors = run_threads(len(rps), work, seconds, meter)
    median = f"{statistics.median(latencies) * 1000:.2f} ms" if latencies else "-"
    _report(f"code exchanges (POST {rps[0].endpoints.token}, RS256 ID token):", done, elapsed, target,
            f"{done} in {elapsed:.1f} s; median {median}", errors, meter)


class RefreshCheck:
    """The sample check of a refresh answer (on the generator's time, not counted): a new refresh token, an ID
    token for the client whose RS256 signature verifies with the server's published keys."""

    def __init__(self, http: Http, jwks_path: str, client_id: str) -> None:
        from joserfc.jwk import KeySet

        self.keys = KeySet.import_key_set(json.loads(http.request("GET", jwks_path)[2]))
        self.client_id = client_id

    def __call__(self, previous: str, answer: dict[str, str]) -> None:
        from joserfc import jwt

        if not answer.get("refresh_token") or answer["refresh_token"] == previous:
            raise RuntimeError("the refresh token was not rotated")
        token = jwt.decode(answer["id_token"], self.keys, algorithms=["RS256"])  # verifies the signature
        if token.header.get("alg") != "RS256" or token.claims.get("aud") != self.client_id:
            raise RuntimeError(f"unexpected ID token: {token.header} {token.claims}")


def bench_refresh(rps: list[Rp], seconds: float, meter: Meter, target: str, check: RefreshCheck) -> str:
    """Refresh grants, each on the token the previous answer rotated, a sample of the answers checked; returns
    a used refresh token ("" if none was checked) for a reuse check after the timing."""
    chains = [rp.exchange(rp.authorize())["refresh_token"] for rp in rps]  # not timed
    latencies: list[float] = []
    lock = threading.Lock()
    checked, used = [0], [""]

    def work(i: int, deadline: float) -> int:
        count, local, token = 0, [], chains[i]
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            answer = rps[i].token({"grant_type": "refresh_token", "refresh_token": token})
            local.append(time.perf_counter() - t0)
            if i == 0 and count % 500 == 0:
                check(token, answer)
                checked[0] += 1
                used[0] = token
            token = answer["refresh_token"]
            count += 1
        with lock:
            latencies.extend(local)
        return count

    done, elapsed, errors = run_threads(len(rps), work, seconds, meter)
    median = f"{statistics.median(latencies) * 1000:.2f} ms" if latencies else "-"
    _report("refresh grants (rotated RT + new AT + new RS256 ID token):", done, elapsed, target,
            f"{done} in {elapsed:.1f} s; median {median}", errors, meter)
    print(f"    {checked[0]} answers checked (RS256 signature verified, RT rotated)")
    return used[0]


def check_reuse(rp: Rp, used: str) -> None:
    """After timing: a refresh token already used is refused (rotation is real). Revokes the grant: run it last."""
    status, body = rp.post_token({"grant_type": "refresh_token", "refresh_token": used})
    verdict = "refused" if status == 400 and b"invalid_grant" in body else "ACCEPTED (rotation broken)"
    print(f"a used refresh token sent again: {status} {body.decode()[:80]} → {verdict}")


def run_figures(rps: list[Rp], seconds: float, meter: Meter, only: str | None, check: RefreshCheck,
                targets: dict[str, str] | None = None) -> None:
    """The three figures in order (``only``: one of them), then the reuse check of a sampled refresh token."""
    targets = targets or {}
    if only in (None, "flows"):
        bench_flows(rps, seconds, meter, targets.get("flows", ""))
    if only in (None, "exchanges"):
        bench_exchanges(rps, seconds, meter, targets.get("exchanges", ""))
    if only in (None, "refresh"):
        used = bench_refresh(rps, seconds, meter, targets.get("refresh", ""), check)
        if used:
            check_reuse(rps[0], used)
