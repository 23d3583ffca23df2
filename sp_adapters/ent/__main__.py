"""``python -m sp_adapters.ent --port 5001 --idp-url http://127.0.0.1:5000 --data-dir var/demo/ent
[--link pronote=URL --link teleservices=URL]``."""

from sp_adapters.common.cli import config_from, main
from sp_adapters.ent import create_app

if __name__ == "__main__":
    main("ENT de démonstration (fournisseur de service SAML)", lambda args: create_app(config_from(args)))
