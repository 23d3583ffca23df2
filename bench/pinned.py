"""Run a benchmark with the local PostgreSQL server pinned to one core, then put it back.

    python bench/pinned.py --pg-core 1 -- python bench/cas/run.py --seconds 20

The benchmarks pin the one gunicorn worker to core 0 and their load generator to core 1; PostgreSQL is left
where the kernel puts it, so part of its work lands on the worker's core and is counted against the
identity provider. With ``--pg-core 1`` it shares the load generator's core instead, and the worker's core
is the worker's alone. Each benchmark prints PostgreSQL's CPU per operation beside the worker's either way.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PinnedPostgres  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-core", type=int, default=1)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the benchmark's command line")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    with PinnedPostgres(args.pg_core) as pinned:
        print(f"[{pinned.note}]", flush=True)
        status = subprocess.call(command)
    raise SystemExit(status)


if __name__ == "__main__":
    main()
