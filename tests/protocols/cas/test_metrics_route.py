"""Back-channel requests (here the CAS validations, WSGI handlers routed by ``idp.web.edge``, with no Flask rule)
are timed in ``idp_request_duration_seconds`` under their path, not as "unmatched"."""

from __future__ import annotations

import dataclasses
import re

from idp import create_app
from idp.settings import Settings
from idp.wiring import Services

TOKEN = "scraper-token-for-tests-0123456789"


def _count(text: str, route: str) -> float:
    pattern = rf'^idp_request_duration_seconds_count\{{(?=[^}}]*route="{re.escape(route)}")[^}}]*\}} (\S+)$'
    return sum(float(value) for value in re.findall(pattern, text, re.MULTILINE))


def test_validations_are_timed_under_their_path(settings: Settings, services: Services) -> None:
    scraped = dataclasses.replace(settings, metrics_token=TOKEN)
    services.settings = scraped
    client = create_app(scraped, services).test_client()

    def scrape() -> str:
        return client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True)

    before = scrape()
    for path in ("/cas/serviceValidate", "/cas/p3/serviceValidate", "/cas/validate"):
        assert client.get(path).status_code == 200  # a failure answer (no ticket), timed all the same
    after = scrape()
    for path in ("/cas/serviceValidate", "/cas/p3/serviceValidate", "/cas/validate"):
        assert _count(after, path) == _count(before, path) + 1
    assert _count(after, "unmatched") == _count(before, "unmatched")
