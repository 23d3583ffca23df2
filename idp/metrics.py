"""Every Prometheus metric of the identity provider, in one module, behind a small API.

Other code records with one line, e.g. ``metrics.LOGINS.labels(protocol="cas", route="password",
outcome="success").inc()``; a new counter is one line here: ``SMS_REFUSED = counter("idp_sms_refused_total",
"…", "reason")``.

Metrics are declared here but created on first use, so that ``prometheus_client`` is imported after ``idp
serve`` has set ``PROMETHEUS_MULTIPROC_DIR`` (the library picks its storage when it is first imported). With
that variable set (one directory per ``idp serve``, emptied at start; a dead worker's live gauges are
dropped at the next scrape, whatever server runs the workers), ``render()`` adds up every worker of the host,
as prometheus_client's multiprocess mode documents; without it (tests, ``flask run``), the metrics of this process.

This module imports nothing from ``idp``: the core records through it as it logs through ``logging``.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds; from a cached SSO answer (~1 ms) to a password login on a loaded host (~1 s).
LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_F = TypeVar("_F", bound=Callable[..., Any])


class LazyMetric:
    """A metric declared at import time and built at first use (see the module's docstring)."""

    _lock = threading.Lock()

    def __init__(self, kind: str, name: str, documentation: str, labelnames: tuple[str, ...],
                 **options: Any) -> None:
        self.kind, self.name, self.documentation = kind, name, documentation
        self.labelnames, self.options = labelnames, options
        self._metric: Any = None

    def _get(self) -> Any:
        if self._metric is None:
            with self._lock:
                if self._metric is None:
                    import prometheus_client

                    cls = getattr(prometheus_client, self.kind)
                    self._metric = cls(self.name, self.documentation, self.labelnames, **self.options)
        return self._metric

    def labels(self, **labels: str) -> Any:
        """The child for these label values (``.inc()``, ``.dec()``, ``.set()``, ``.observe()``)."""
        return self._get().labels(**labels)

    def inc(self, amount: float = 1) -> None:
        """Add to a metric without labels."""
        self._get().inc(amount)

    def dec(self, amount: float = 1) -> None:
        """Subtract from a gauge without labels."""
        self._get().dec(amount)

    def observe(self, value: float) -> None:
        """Record one value of a histogram without labels."""
        self._get().observe(value)


def counter(name: str, documentation: str, *labelnames: str) -> LazyMetric:
    """Declare a counter (its name ends in ``_total``)."""
    return LazyMetric("Counter", name.removesuffix("_total"), documentation, labelnames)


def gauge(name: str, documentation: str, *labelnames: str, mode: str = "livesum") -> LazyMetric:
    """Declare a gauge; under ``idp serve`` the value of the host is the sum over live workers (``livesum``)."""
    return LazyMetric("Gauge", name, documentation, labelnames, multiprocess_mode=mode)


def histogram(name: str, documentation: str, *labelnames: str,
              buckets: tuple[float, ...] = LATENCY_BUCKETS) -> LazyMetric:
    """Declare a histogram (latencies in seconds by default)."""
    return LazyMetric("Histogram", name, documentation, labelnames, buckets=buckets)


# --- the metrics ---------------------------------------------------------------------------------------------

LOGINS = counter("idp_logins_total", "Logins by protocol (saml, oidc, cas, portal), route (password, sso, "
                 "sms, provisional, federation) and outcome (success, failure, throttled, locked, unusable).",
                 "protocol", "route", "outcome")
ACTIVATIONS = counter("idp_activations_total", "Activation steps by route (sms, provisional), step and "
                      "outcome (ok or the refusal's code).", "route", "step", "outcome")
REQUEST_SECONDS = histogram("idp_request_duration_seconds", "Time to answer an HTTP request, by route and "
                            "status class.", "method", "route", "status")
HASHES_IN_FLIGHT = gauge("idp_argon2_hashes_in_flight", "argon2id hashes computing now.")
HASHES_WAITING = gauge("idp_argon2_hashes_waiting", "argon2id hashes waiting for a free slot.")
HASH_SECONDS = histogram("idp_argon2_hash_seconds", "Time of one argon2id hash or verification (CPU).",
                         buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0))
DB_CONNECTIONS_IN_USE = gauge("idp_db_connections_in_use", "Database connections checked out of the pools.",
                              "pool")
DB_POOL_CAPACITY = gauge("idp_db_pool_capacity", "Connections the pools may open (size + overflow).", "pool")
DB_UNAVAILABLE = counter("idp_db_unavailable_total", "Requests answered 503 because the database or Redis "
                         "did not answer.", "backend")
DELIVERIES = counter("idp_deliveries_total", "Messages handed to the SMS gateway or the mail server, by "
                     "channel and outcome (sent, retry, failed).", "channel", "outcome")
SENDS_REFUSED = counter("idp_sends_refused_total", "Codes and notices refused before sending (per-account, "
                        "per-destination, per-address limits and the SMS budgets), by audit event and reason.",
                        "event", "reason")
CLIENT_AUTH_FAILURES = counter("idp_oidc_client_auth_failures_total", "Failed OIDC client authentications, by "
                               "endpoint and whether the client id or address was already throttled.",
                               "endpoint", "throttled")


@contextmanager
def hashing() -> Iterator[None]:
    """Count one argon2 hash in flight and time it (used by ``PasswordHasher`` around the computation)."""
    HASHES_IN_FLIGHT.inc()
    start = time.perf_counter()
    try:
        yield
    finally:
        HASH_SECONDS.observe(time.perf_counter() - start)
        HASHES_IN_FLIGHT.dec()


@contextmanager
def waiting_for_hash() -> Iterator[None]:
    """Count one hash waiting for a slot of the hasher's semaphore."""
    HASHES_WAITING.inc()
    try:
        yield
    finally:
        HASHES_WAITING.dec()


def activation_step(route: str, step: str) -> Callable[[_F], _F]:
    """Decorate an activation step: counts ``ok`` when it returns, the error's ``code`` when it raises."""
    def wrap(function: _F) -> _F:
        @functools.wraps(function)
        def counted(*args: Any, **kwargs: Any) -> Any:
            try:
                result = function(*args, **kwargs)
            except Exception as exc:
                ACTIVATIONS.labels(route=route, step=step, outcome=getattr(exc, "code", type(exc).__name__)).inc()
                raise
            ACTIVATIONS.labels(route=route, step=step, outcome="ok").inc()
            return result
        return counted  # type: ignore[return-value]
    return wrap


# --- exposition ----------------------------------------------------------------------------------------------

def multiprocess() -> bool:
    """Whether this process writes its metrics to the shared directory (a worker of ``idp serve``)."""
    return bool(os.environ.get(MULTIPROC_ENV))


def render(extra: list[Any] | None = None) -> tuple[bytes, str]:
    """The text exposition (body, content type): the host's workers in multiprocess mode, plus ``extra``
    collectors (e.g. queue depths read from the database at scrape time)."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    if multiprocess():
        from prometheus_client import multiprocess as mp

        forget_dead_workers()
        registry = CollectorRegistry()
        mp.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Forward(REGISTRY))
    for collector in extra or ():
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Forward:
    """Exposes another registry's metrics inside a per-scrape registry (without re-registering them)."""

    def __init__(self, registry: Any) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Any]:
        yield from self._registry.collect()


def prepare_multiprocess() -> str:
    """Before the server starts its workers: give them one directory for their metric files (``PROMETHEUS_MULTIPROC_DIR``
    as set by the operator, emptied of a previous run's files, else a new temporary one); returns it, or "" when
    ``prometheus_client`` is already loaded in this process (each worker then exposes only its own metrics)."""
    import sys
    import tempfile
    from pathlib import Path

    if "prometheus_client" in sys.modules and not multiprocess():
        return ""
    directory = os.environ.get(MULTIPROC_ENV) or tempfile.mkdtemp(prefix="idp-metrics-")
    Path(directory).mkdir(parents=True, exist_ok=True)
    for stale in Path(directory).glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = directory
    return directory


def forget_dead_workers() -> None:
    """Drop the live gauges (``livesum``, ``liveall``…) of workers that are no longer running, as
    prometheus_client's ``mark_process_dead`` documents, at scrape time: the server that started them (Granian,
    or gunicorn run by hand) needs no hook. Counters and histograms of dead workers keep counting, as they must."""
    from pathlib import Path

    from prometheus_client import multiprocess as mp

    pids = {path.stem.rsplit("_", 1)[-1] for path in Path(os.environ[MULTIPROC_ENV]).glob("gauge_live*_*.db")}
    for pid in pids:
        if pid.isdigit() and not _alive(int(pid)):
            mp.mark_process_dead(int(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def gauge_family(name: str, documentation: str, label: str, values: dict[str, float]) -> Any:
    """A gauge computed at scrape time (one sample per label value), for ``render(extra=…)``."""
    from prometheus_client.core import GaugeMetricFamily

    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value_label, value in sorted(values.items()):
        family.add_metric([value_label], value)
    return family
