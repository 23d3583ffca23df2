"""Login throttling: progressive, temporary, keyed so that unknown and known identifiers behave the same.

Per identifier: the first ``free_failures`` failures cost nothing, then each further failure locks the
identifier for ``base_delay`` doubling up to ``max_delay`` (1, 2, 4, 8, 15 minutes by default). A lock
never outlives ``max_delay`` after the last failure, so an attacker cannot make it permanent (SECURITY W07,
W08). Per IP and per /24 (or /64) network: too many failures in a window refuse further attempts from that
address until the window ends; successes are never counted.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from idp.core.ports import ThrottleCounter, ThrottleStore


@dataclass(frozen=True)
class ThrottlePolicy:
    """The numbers behind throttling (settings ``[throttle]``)."""

    free_failures: int = 5
    base_delay_seconds: int = 60
    max_delay_seconds: int = 900
    ip_max_failures: int = 30
    network_max_failures: int = 100
    ip_window_seconds: int = 600


@dataclass(frozen=True)
class ThrottleKeys:
    """The counters one login attempt touches."""

    identifier: str
    ip: str
    network: str


def keys_for(identifier: str, ip: str) -> ThrottleKeys:
    """Build the counter keys; the identifier is hashed so the table never lists who was attacked."""
    ident = hashlib.sha256(identifier.encode("utf-8")).hexdigest()[:40]
    return ThrottleKeys(identifier=f"id:{ident}", ip=f"ip:{ip}", network=f"net:{_network_of(ip)}")


def client_keys(client_id: str, ip: str) -> ThrottleKeys:
    """The counters of OAuth client authentication failures (SECURITY O28): a namespace of their own, so a
    failing client never delays families' logins from the same address; the client id hashed like an
    identifier (an unknown one is counted too)."""
    ident = hashlib.sha256(client_id.encode("utf-8", "replace")).hexdigest()[:40]
    return ThrottleKeys(identifier=f"client:{ident}", ip=f"client-ip:{ip}", network=f"client-net:{_network_of(ip)}")


@functools.lru_cache(maxsize=4096)  # the same few addresses log in again and again (a school's NAT)
def _network_of(ip: str) -> str:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return "unknown"
    prefix = 24 if addr.version == 4 else 64
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


def wait_seconds(counters: Mapping[str, ThrottleCounter], now: dt.datetime) -> int:
    """Seconds to wait before this attempt may be checked (0 when it may go ahead), from the counters read."""
    waits = [0]
    for counter in counters.values():
        if counter.locked_until and counter.locked_until > now:
            waits.append(int((counter.locked_until - now).total_seconds()) + 1)
    return max(waits)


@dataclass(frozen=True)
class Failure:
    """What one failed login did to the identifier: the lock it started (seconds, 0 for none) and how many
    more failures are free before one locks. The same for a known and an unknown identifier."""

    lock_seconds: int
    tries_left: int

    @property
    def locked(self) -> bool:
        """True when this failure starts a lock of the identifier."""
        return self.lock_seconds > 0


def record_failure(keys: ThrottleKeys, store: ThrottleStore, policy: ThrottlePolicy, now: dt.datetime) -> Failure:
    """Count a failure on every key; say whether it starts a lock of the identifier and what is left."""
    window = dt.timedelta(seconds=policy.ip_window_seconds)
    ident = store.record_failure(keys.identifier, now, dt.timedelta(days=1))
    lock_seconds = _lock_identifier(ident, store, policy, now)
    for key, limit in ((keys.ip, policy.ip_max_failures), (keys.network, policy.network_max_failures)):
        counter = store.record_failure(key, now, window)
        if counter.failures >= limit:
            store.set_lock(key, counter.window_started_at + window)
    return Failure(lock_seconds=lock_seconds, tries_left=max(policy.free_failures - ident.failures, 0))


def _lock_identifier(counter: ThrottleCounter, store: ThrottleStore, policy: ThrottlePolicy, now: dt.datetime) -> int:
    over = counter.failures - policy.free_failures
    if over < 0:
        return 0
    delay: int = min(policy.base_delay_seconds * 2 ** min(over, 20), policy.max_delay_seconds)
    store.set_lock(counter.key, now + dt.timedelta(seconds=delay))
    return delay


def record_client_failure(keys: ThrottleKeys, store: ThrottleStore, policy: ThrottlePolicy,
                          now: dt.datetime) -> tuple[int, int]:
    """Count a client authentication failure like a login failure; returns the seconds to wait on its keys
    before and after it (after > 0: the client id or the address is throttled)."""
    names = [keys.identifier, keys.ip, keys.network]
    before = wait_seconds(store.get_many(names), now)
    record_failure(keys, store, policy, now)
    return before, wait_seconds(store.get_many(names), now)


def record_success(keys: ThrottleKeys, store: ThrottleStore) -> None:
    """A successful login clears the identifier's counter (the IP counters keep their window)."""
    store.reset(keys.identifier)
