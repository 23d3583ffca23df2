"""``python -m sp_adapters.teleservices --port 5003 --idp-url http://127.0.0.1:5000 --data-dir DIR
--client-id teleservices`` (the client secret from the environment: TELESERVICES_CLIENT_SECRET)."""

import argparse

from sp_adapters.common.cli import config_from, main
from sp_adapters.teleservices import create_app


def _extend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--client-id", default="teleservices", help="identifiant du client OpenID Connect")


if __name__ == "__main__":
    main("Téléservices de démonstration (client OpenID Connect)",
         lambda args: create_app(config_from(args, client_id=args.client_id)), _extend)
