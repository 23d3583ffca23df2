"""The SMS gateway answering 500, or hanging, during an activation (issue 20): the page says the SMS is delayed,
the delivery queue tries again later with the same idempotency key, and the parent receives the code once."""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from test_activation_support import PHONE, Browser, flow_settings, make_family, text_of

from idp.core.clock import FrozenClock
from idp.settings import Settings
from idp.storage.activation_store import DeliveryRow
from idp.wiring import Services

DELAYED = "L'envoi du SMS prend du retard"


class DedupGateway:
    """An SMS gateway that delivers each ``Idempotency-Key`` once, answering from a script: ``fail`` (500 without
    delivering), ``hang`` (delivers, then answers too late for the client), ``ok``."""

    def __init__(self, script: list[str]) -> None:
        self.script, self.calls, self.delivered = script, [], {}
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's hook
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers.get("Idempotency-Key", "")
                gateway.calls.append(key)
                action = gateway.script[min(len(gateway.calls), len(gateway.script)) - 1]
                if action != "fail":
                    gateway.delivered.setdefault(key, body)
                if action == "hang":
                    time.sleep(1.6)
                self.send_response(500 if action == "fail" else 200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # the client stopped waiting (the hanging case)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(params=["fail", "hang"])
def gateway(request: pytest.FixtureRequest) -> Iterator[DedupGateway]:
    gw = DedupGateway([request.param, "ok"])
    yield gw
    gw.close()


@pytest.fixture
def settings(base_settings: Settings, gateway: DedupGateway) -> Settings:
    flow = flow_settings(base_settings)
    return dataclasses.replace(flow, sms=dataclasses.replace(flow.sms, backend="http", url=gateway.url, retries=0,
                                                             timeout_seconds=1))


def test_a_failing_or_hanging_gateway_delays_the_sms_which_arrives_once(
        client: FlaskClient, services: Services, clock: FrozenClock, gateway: DedupGateway) -> None:
    make_family(services)
    browser = Browser(client)
    browser.start_activation()
    services.delivery.run_pending()  # the gateway fails (500) or takes the message but answers too late
    page = text_of(client.get("/creer-mon-compte/code"))
    assert DELAYED in page and "impossible" not in page
    services.delivery.run_pending()
    assert len(gateway.calls) == 1  # not before its time
    clock.advance(seconds=services.delivery.retry_seconds + 1)
    services.delivery.run_pending()
    assert len(gateway.calls) == 2 and gateway.calls[0] == gateway.calls[1] != ""  # the same message, same key
    assert [m["to"] for m in gateway.delivered.values()] == [PHONE]  # delivered once, never twice
    assert DELAYED not in text_of(client.get("/creer-mon-compte/code"))
    with services.uow() as uow:
        rows = uow.session.execute(select(DeliveryRow.status, DeliveryRow.attempts, DeliveryRow.payload)).all()
    assert [(r.status, r.attempts, r.payload) for r in rows] == [("sent", 2, "")]
    code = re.search(r"est ([2-9A-Z]{6})", next(iter(gateway.delivered.values()))["text"]).group(1)
    assert browser.code(code).headers["Location"] == "/creer-mon-compte/eleves"
