"""The demo's register, accounts and service providers on a running topology, registered through the shared
database exactly as ``idp demo`` registers them (``idp.cli.demo_stack``), every service pointed at HAProxy."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from idp.cli.demo_stack import Operator, ServiceSpec, Stack, register_after_start, register_before_start
from idp.cluster.topology import Cluster
from idp.demo_register import write_demo_register
from idp.settings import load_settings
from idp.storage.demo import DemoAccount, create_demo_accounts
from idp.wiring import build_services


def start_demo_services(topology: Cluster, adapters: Stack, specs: list[ServiceSpec]) -> list[DemoAccount]:
    """Import the demo register, create its accounts, start and register the demo's service providers."""
    op = Operator(str(topology.config))
    with tempfile.TemporaryDirectory(prefix="idp-cluster-") as tmp:
        featured = write_demo_register(Path(tmp))
        op("import", "csv", tmp)
    services = build_services(load_settings(topology.config))
    try:
        accounts = create_demo_accounts(services, featured)
    finally:
        services.db.dispose()
    envs = register_before_start(op, specs)
    for spec in specs:
        adapters.start(spec.name, [sys.executable, "-m", spec.module, *spec.args],
                       spec.env | envs.get(spec.name, {}))
    for spec in specs:
        adapters.wait_ready(spec.name, f"{spec.url}/")
    register_after_start(op, specs, topology.root)
    return accounts
