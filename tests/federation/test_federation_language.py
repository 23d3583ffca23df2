"""FranceConnect records the page's language on the account (issue 19): at the link made inside the flow, and
at each later login straight through, like a password login."""

from __future__ import annotations

import sys
from pathlib import Path

from flask.testing import FlaskClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fc_support import FcBrowser, Upstream, link_karim, settings, upstream  # noqa: E402,F401 - fixtures

from idp.wiring import Services  # noqa: E402


def _language(services: Services, identifier: str) -> str | None:
    with services.uow() as uow:
        account = uow.accounts.by_identifier(identifier)
    assert account is not None
    return account.language


def test_franceconnect_records_the_page_language(client: FlaskClient, services: Services, upstream: Upstream,
                                                 account_factory) -> None:  # noqa: ANN001
    client.set_cookie("idp_lang", "ar")
    karim = link_karim(client, services, upstream, account_factory)
    assert _language(services, karim.identifier) == "ar"  # the link opened a session: recorded there
    other = client.application.test_client()
    other.set_cookie("idp_lang", "tr")
    assert FcBrowser(other, upstream).login("karim").status_code == 303  # straight through, no code
    assert _language(services, karim.identifier) == "tr"
