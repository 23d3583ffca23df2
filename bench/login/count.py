"""Instructions per login besides the hash, and per SSO-session GET, counted by valgrind (load-independent).

Method: ``inprocess.py --stub-hash`` (argon2 replaced by a comparison: its cost is measured apart) runs
under ``valgrind --tool=callgrind`` three times: A logins, B logins, then A logins each followed by
``--sso-gets`` pairs of SSO-session GETs (``/services`` and ``/login`` answered by the session). Differences
of the instructions counted in this process (not PostgreSQL's) give the cost of one complete login besides
the hash, and of one pair of SSO GETs. Slow (valgrind runs Python ≈ 50× slower): several minutes.

    python bench/login/count.py [--a 2] [--b 12] [--sso-gets 3] [--database-url postgresql://…]
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
WARMUP = 10  # inprocess.py runs 10 unmeasured rounds first; they count here too


def instructions(rounds: int, sso_gets: int, database_url: str) -> int:
    """Total instructions of one ``inprocess.py --stub-hash`` run under callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
                        str(HERE / "inprocess.py"), "--stub-hash", "--rounds", str(rounds), "--sso-gets",
                        str(sso_gets), "--database-url", database_url], check=True, capture_output=True)
        match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(errors="replace"), re.M)
        assert match, "no totals in the callgrind output"
        return int(match.group(1))


def argon2_instructions() -> float:
    """Instructions of one argon2id verify with the default parameters (m=19 MiB, t=2, p=1)."""
    code = ("import sys;from argon2 import PasswordHasher as P;h=P(time_cost=2,memory_cost=19456,parallelism=1);"
            "x=h.hash('a');[h.verify(x,'a') for _ in range(int(sys.argv[1]))]")
    totals = []
    for n in (1, 4):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "callgrind.out"
            subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c",
                            code, str(n)], check=True, capture_output=True)
            match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(errors="replace"), re.M)
            assert match, "no totals in the callgrind output"
            totals.append(int(match.group(1)))
    return (totals[1] - totals[0]) / 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=int, default=2)
    parser.add_argument("--b", type=int, default=12)
    parser.add_argument("--sso-gets", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get(
        "IDP_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    a = instructions(args.a, 0, args.database_url)
    b = instructions(args.b, 0, args.database_url)
    sso = instructions(args.a, args.sso_gets, args.database_url)
    login = (b - a) / (args.b - args.a)
    pair = (sso - a) / ((args.a + WARMUP) * args.sso_gets)
    argon2 = argon2_instructions()
    print(f"instructions per complete login, besides the hash  {login / 1e6:6.2f} M")
    print(f"instructions per SSO GET /services + GET /login     {pair / 1e6:6.2f} M")
    print(f"instructions per argon2id verify                    {argon2 / 1e6:6.2f} M"
          f"  -> share of a login in the hash {argon2 / (argon2 + login) * 100:.1f} %")


if __name__ == "__main__":
    main()
