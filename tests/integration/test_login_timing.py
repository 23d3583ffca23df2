"""W06: an unknown identifier costs the same time as a wrong password (one real argon2 verification each)."""

from __future__ import annotations

import contextlib
import statistics
import time

from idp.core.authn.flow import Client
from idp.errors import InvalidCredentials
from idp.wiring import Services, hasher_for


def test_unknown_identifier_and_wrong_password_take_the_same_time(services: Services, settings,
                                                                  account_factory) -> None:
    import dataclasses

    real = hasher_for(dataclasses.replace(settings, passwords=type(settings.passwords)()))  # default argon2 cost
    services.flow._hasher = real  # the flow under test uses the production parameters
    services.hasher = real
    account = account_factory()

    def attempt(identifier: str) -> float:
        request = services.flow.begin(Client("portal"), {}, "browser", None)
        start = time.perf_counter()
        with contextlib.suppress(InvalidCredentials):
            services.flow.login(request.id, "browser", identifier, "Mauvais-Mot-2!", profile=account.profile,
                                ip=f"10.9.{len(identifier)}.1")
        return time.perf_counter() - start

    known, unknown = [], []
    for n in range(8):
        known.append(attempt(account.identifier))
        unknown.append(attempt(f"z.inconnu{n}"))
        services.accounts.unlock(account.identifier)  # stay under the lock threshold
    k, u = statistics.median(known), statistics.median(unknown)
    assert abs(k - u) < 0.25 * max(k, u), (k, u)
    assert min(known + unknown) > 0.005  # a real hash ran in both cases
