"""CPU cost of the SSO-session lookup (``find_session_with_account`` in ``uow_factory.autocommit()``), in process.

Method: a fresh database (PostgreSQL by default), one account and one live SSO session, then ``--rounds``
lookups, each a whole unit of work (built, one SELECT joined to the account, released), timed with the CPU
time of this thread; medians. The same lookup is also timed on the ORM session path (``SqlUnitOfWork`` on the
autocommit sessionmaker, what ``autocommit()`` returned before ``idp.storage.fastsql``), interleaved so that
the machine's load weighs the same on both; and one bare statement of each kind for scale.

    python bench/login/session_lookup.py [--rounds 2000] [--database-url postgresql://…]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import Instance  # noqa: E402


def cpu_us(fn: Any) -> float:
    start = time.thread_time()
    fn()
    return (time.thread_time() - start) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--database-url", default=os.environ.get(
        "IDP_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    with Instance(args.database_url, name=f"session_lookup_{os.getpid()}") as instance:
        instance.create_accounts(1, "Velo-Rouge-Garonne-42")
        from idp.core.authn.model import AuthMethod
        from idp.core.authn.sessions import find_session_with_account, new_session
        from idp.storage.sessions import _SESSION_WITH_ACCOUNT
        from idp.storage.uow import SqlUnitOfWork

        services = instance.services()
        policy, clock, factory = services.flow.session_policy, services.clock, services.uow
        token, session = new_session(1, AuthMethod.PASSWORD, policy, clock.now(), "127.0.0.1", "bench")
        with factory.login_state() as uow:
            uow.sessions.add(session)
            uow.commit()
        db = services.db

        def fast() -> None:
            with factory.autocommit() as uow:
                assert find_session_with_account(uow, token, policy, clock) is not None

        def orm() -> None:
            with SqlUnitOfWork(db, None, db.autocommit_sessionmaker) as uow:
                assert find_session_with_account(uow, token, policy, clock) is not None

        def fast_statement() -> None:
            with factory.autocommit() as uow:
                uow.executor.execute(_SESSION_WITH_ACCOUNT, {"sid": session.id}).first()

        def orm_statement() -> None:
            with SqlUnitOfWork(db, None, db.autocommit_sessionmaker) as uow:
                uow.session.execute(_SESSION_WITH_ACCOUNT, {"sid": session.id}).first()

        kinds = {"find_session_with_account, fast path": fast, "find_session_with_account, ORM session": orm,
                 "the bare SELECT, fast path": fast_statement, "the bare SELECT, ORM session": orm_statement}
        if db.dialect != "postgresql":
            kinds = {"find_session_with_account, ORM session (SQLite)": orm}
        times: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(50):  # warm up: compile caches, pool, psycopg's prepared statements
            for fn in kinds.values():
                fn()
        for _ in range(args.rounds):
            for name, fn in kinds.items():
                times[name].append(cpu_us(fn))
        services.db.dispose()
        print(f"database {db.dialect}, {args.rounds} rounds, median CPU of this thread per unit of work")
        for name, values in times.items():
            print(f"  {name:48s} {statistics.median(values):7.1f} µs")


if __name__ == "__main__":
    main()
