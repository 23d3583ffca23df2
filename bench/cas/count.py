"""Instructions per CAS request counted by valgrind (load-independent): ``/cas/login`` with SSO, round trip.

Method: this script runs itself under ``valgrind --tool=callgrind`` twice per figure, with A then B requests
after the same setup (``inprocess.py``'s instance: fresh PostgreSQL database, a pupil, the Pronote
registration, an SSO session, 50 unmeasured warm-up requests); the difference of the instructions counted in
this process (not PostgreSQL's, not Redis's) divided by B - A is the cost of one request. Slow (valgrind runs
Python ≈ 50× slower): a few minutes.

    python bench/cas/count.py [--a 20] [--b 220] [--what login|round] [--redis URL] [--pg URL]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(what: str, rounds: int, pg: str, redis_url: str) -> None:
    """The counted run: set up, warm up, then ``rounds`` requests of ``what``."""
    sys.path.insert(0, str(HERE))
    from inprocess import call, logins, validation_env
    from run import drop_instance, make_instance, seed

    from idp import create_app

    folder = Path(tempfile.mkdtemp(prefix="bench-cas-count-"))
    config, _ = make_instance(pg, folder, redis_url=redis_url, name=f"idp_bench_cas_count_{os.getpid()}")
    services, _, token = seed(config)
    app = create_app(services=services)
    try:
        issued: list[str] = []
        login = logins(app, token, issued)
        for i in range(50):
            login(i)
            call(app, validation_env(issued[-1]))
        for i in range(rounds):
            login(i)
            if what == "round":
                status, _, body = call(app, validation_env(issued[-1]))
                assert status.startswith("200") and b"authenticationSuccess" in body
    finally:
        drop_instance(services, pg, folder)


def instructions(what: str, rounds: int, pg: str, redis_url: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__,
                        "--child", "--what", what, "--rounds", str(rounds), "--pg", pg, "--redis", redis_url],
                       check=True, capture_output=True)
        match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(errors="replace"), re.M)
        assert match, "no totals in the callgrind output"
        return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=int, default=20)
    parser.add_argument("--b", type=int, default=220)
    parser.add_argument("--what", choices=["login", "round"], default="login")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.what, args.rounds, args.pg, args.redis)
        return
    a = instructions(args.what, args.a, args.pg, args.redis)
    b = instructions(args.what, args.b, args.pg, args.redis)
    print(f"{args.what}: {(b - a) / (args.b - args.a) / 1e6:.2f} M instructions per request "
          f"(tickets in {'Redis' if args.redis else 'PostgreSQL'})")


if __name__ == "__main__":
    main()
