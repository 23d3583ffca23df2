"""``python -m sp_adapters.pronote --port 5002 --idp-url http://127.0.0.1:5000 --data-dir var/demo/pronote``."""

from sp_adapters.common.cli import config_from, main
from sp_adapters.pronote import create_app

if __name__ == "__main__":
    main("Pronote de démonstration (client CAS)", lambda args: create_app(config_from(args)))
