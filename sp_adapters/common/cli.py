"""``python -m sp_adapters.<name> --host --port --idp-url --data-dir [--public-url] [--link name=URL]``."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from pathlib import Path

from flask import Flask

from sp_adapters.common.app import AdapterConfig


def parser(description: str) -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(description=description)
    parse.add_argument("--host", default="127.0.0.1", help="adresse d'écoute (défaut 127.0.0.1)")
    parse.add_argument("--port", type=int, required=True, help="port d'écoute")
    parse.add_argument("--idp-url", required=True, help="adresse du fournisseur d'identité, ex. http://127.0.0.1:5000")
    parse.add_argument("--data-dir", required=True, type=Path, help="dossier des données (base SQLite, clés)")
    parse.add_argument("--public-url", default="", help="adresse publique (défaut http://HOST:PORT)")
    parse.add_argument("--link", action="append", default=[], metavar="NOM=URL",
                       help="lien vers un autre service de la démo (répétable), ex. pronote=http://127.0.0.1:5002/")
    return parse


def config_from(args: argparse.Namespace, **extra: object) -> AdapterConfig:
    links = {}
    for item in args.link:
        key, sep, url = item.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise SystemExit(f"--link attend NOM=URL : {item!r}")
        links[key] = url
    return AdapterConfig(public_url=args.public_url or f"http://{args.host}:{args.port}", idp_url=args.idp_url,
                         data_dir=args.data_dir, links=links, extra=dict(extra))


def serve(app: Flask, host: str, port: int) -> None:
    """A threaded werkzeug server (a demo service provider, not a production deployment)."""
    from werkzeug.serving import run_simple

    logging.basicConfig(level=os.environ.get("SP_LOG_LEVEL", "WARNING"), format="%(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(os.environ.get("SP_LOG_LEVEL", "WARNING"))
    run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)


def main(description: str, build: Callable[[argparse.Namespace], Flask],
         extend: Callable[[argparse.ArgumentParser], None] | None = None) -> None:
    parse = parser(description)
    if extend:
        extend(parse)
    args = parse.parse_args()
    serve(build(args), args.host, args.port)
