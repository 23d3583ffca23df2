"""Instructions per SP-initiated SAML login with an SSO session, counted by valgrind (load-independent).

Method: this script runs itself twice under ``valgrind --tool=callgrind``: set-up as ``bench_logins.prepare``
(fresh database, one SP on python3-saml, one account), one password login, 20 warm-up SSO logins, then A
(default 10) or B (default 40) SSO logins through Flask's test client (the WSGI app as gunicorn calls it, plus
the test client's own work). The difference of the totals divided by B - A is the cost of one login in this
process (PostgreSQL's work is not counted). Run it on a quiet machine: the set-up's database waits (psycopg
polls) vary with the load and can swamp the difference. Slow (Python ≈ 50× slower under valgrind).

    python bench/saml/count.py [--a 10] [--b 40] [--database postgresql://…]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + "?" + parts.query


def inner(logins: int, database: str) -> None:
    """The measured process: set-up, one password login, 20 warm-up SSO logins, then ``logins`` more."""
    import bench_logins

    from idp import create_app
    from idp.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="idp-bench-saml-count-") as tmp:
        instance = Path(tmp)
        sp, identifier = bench_logins.prepare(instance, database, 5000, 2048)
        app = create_app(load_settings(instance / "config.toml", environ={}))
        # Under valgrind a login takes ~1 s: without this the 5 s SP-row cache and the 10 s key-file check
        # would expire during the measured loop (once per ~1,500 logins at full speed), and the count would
        # depend on the machine's load.
        saml = app.extensions["idp"].frontends["saml"]
        saml._sp_rows.ttl = 1e9  # the SP row stays cached (idp.caches)
        saml.keys._interval = 1e9
        client = app.test_client()
        first = client.get(_path(sp.login_url()[0]))  # type: ignore[attr-defined]
        form_url = first.headers["Location"] + "?profil=parent"
        csrf = bench_logins.CSRF_RE.search(client.get(form_url).get_data(as_text=True))
        assert csrf, "no login form"
        response = client.post(form_url, data={"identifiant": identifier, "mot_de_passe": bench_logins.PASSWORD,
                                               "csrf_token": csrf.group(1)})
        while response.status_code in (302, 303):
            response = client.get(response.headers["Location"])
        assert b"SAMLResponse" in response.data
        urls = [_path(sp.login_url()[0]) for _ in range(20 + logins)]  # type: ignore[attr-defined]
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200 and b"SAMLResponse" in response.data, response.status_code
        app.extensions["idp"].db.dispose()


def instructions(logins: int, database: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__,
                        "--inner", str(logins), "--database", database], check=True, capture_output=True)
        match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(errors="replace"), re.M)
        assert match, "no totals in the callgrind output"
        return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=int, default=10)
    parser.add_argument("--b", type=int, default=40)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/idp_bench_saml_count")
    parser.add_argument("--inner", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner is not None:
        inner(args.inner, args.database)
        return
    a, b = instructions(args.a, args.database), instructions(args.b, args.database)
    print(f"instructions per SSO-session login (this process): {(b - a) / (args.b - args.a) / 1e6:.2f} M")


if __name__ == "__main__":
    main()
