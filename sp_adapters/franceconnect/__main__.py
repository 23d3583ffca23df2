"""``python -m sp_adapters.franceconnect --port 5004 --client-id … --client-secret … --redirect-uri …``"""

from __future__ import annotations

import argparse
import os

from werkzeug.serving import run_simple

from sp_adapters.franceconnect.app import ProviderConfig, create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sp_adapters.franceconnect",
                                     description="FranceConnect-style OpenID provider for development.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5004)
    parser.add_argument("--issuer", default="", help="default: http://HOST:PORT/api/v2")
    parser.add_argument("--client-id", default="compte-scolaire-dev")
    parser.add_argument("--client-secret", default=os.environ.get("FC_CLIENT_SECRET", ""),
                        help="or FC_CLIENT_SECRET in the environment")
    parser.add_argument("--redirect-uri", action="append", default=[],
                        help="registered callback (repeatable); default http://127.0.0.1:5000/franceconnect/retour")
    parser.add_argument("--post-logout-redirect-uri", action="append", default=[],
                        help="default http://127.0.0.1:5000/franceconnect/deconnexion")
    parser.add_argument("--data-dir", default="var/franceconnect", help="where the ES256 signing key is kept")
    args = parser.parse_args(argv)
    if len(args.client_secret) < 16:
        parser.error("--client-secret (or FC_CLIENT_SECRET) of at least 16 characters is required")
    issuer = args.issuer or f"http://{args.host}:{args.port}/api/v2"
    config = ProviderConfig(
        issuer=issuer, client_id=args.client_id, client_secret=args.client_secret,
        redirect_uris=tuple(args.redirect_uri or ["http://127.0.0.1:5000/franceconnect/retour"]),
        post_logout_redirect_uris=tuple(args.post_logout_redirect_uri
                                        or ["http://127.0.0.1:5000/franceconnect/deconnexion"]),
        data_dir=args.data_dir)
    print(f"FranceConnect (test) : {issuer}  (client {args.client_id})", flush=True)
    run_simple(args.host, args.port, create_app(config), threaded=True)


if __name__ == "__main__":
    main()
