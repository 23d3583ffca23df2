"""The validation fast lane (``idp.cas.fastlane``): GETs answered before Flask with the same bytes and the
headers a server-to-server answer needs; POST still through Flask; repeated parameters read as Flask reads
them; a bug answered 500 ``INTERNAL_ERROR`` and logged with the request's correlation id."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient
from lxml import etree

from idp.observability import correlation_id
from idp.wiring import Services

from .conftest import CAS_NS, SERVICE, CasBrowser, People


def _code(body: bytes) -> str:
    (failure,) = etree.fromstring(body).xpath("/cas:serviceResponse/cas:authenticationFailure", namespaces=CAS_NS)
    return str(failure.get("code"))


def test_get_answer_headers(browser: CasBrowser, people: People, register, client: FlaskClient) -> None:
    register()
    ticket = browser.first_login(people.parent.identifier)
    response = client.get("/cas/p3/serviceValidate?" + urlencode({"ticket": ticket, "service": SERVICE}))
    assert response.status_code == 200 and b"authenticationSuccess" in response.data
    headers = response.headers
    assert headers["Content-Type"] == "application/xml; charset=utf-8"
    assert headers["Cache-Control"] == "no-store" and headers["X-Content-Type-Options"] == "nosniff"
    assert len(headers["X-Correlation-Id"]) == 16 and headers["Content-Length"] == str(len(response.data))
    assert "Content-Security-Policy" not in headers and "Set-Cookie" not in headers


def test_same_bytes_by_get_and_post(client: FlaskClient) -> None:
    """A failure document is the same whether the fast lane (GET) or Flask (POST) answered it."""
    for path in ("/cas/serviceValidate", "/cas/p3/proxyValidate", "/cas/validate"):
        for query in ({"ticket": "ST-nope", "service": SERVICE}, {"service": SERVICE},
                      {"ticket": "ST-x", "service": SERVICE, "format": "JSON"}, {"format": "YAML"}):
            fast, flask = client.get(path + "?" + urlencode(query)), client.post(path, data=query)
            assert (fast.status_code, fast.data, fast.content_type) == \
                   (flask.status_code, flask.data, flask.content_type), (path, query)
            assert "Content-Security-Policy" in flask.headers and "Content-Security-Policy" not in fast.headers


def test_repeated_parameter_first_value_wins(client: FlaskClient) -> None:
    """As ``request.args.get``: ``format=JSON&format=XML`` is JSON (and a blank ticket is a missing one)."""
    response = client.get(f"/cas/serviceValidate?format=JSON&format=XML&ticket=&service={SERVICE}")
    assert response.content_type == "application/json; charset=utf-8"
    assert b"INVALID_REQUEST" in response.data


def test_other_methods_and_paths_go_to_flask(client: FlaskClient) -> None:
    assert client.head("/cas/serviceValidate?ticket=ST-x&service=x").status_code == 200
    assert client.get("/cas/serviceValidate/?ticket=ST-x").status_code == 404
    assert client.put("/cas/serviceValidate").status_code == 405


def test_unexpected_error_is_500_internal_error_and_logged(client: FlaskClient, services: Services,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []

    def broken(*args: object, **kwargs: object) -> None:
        seen.append(correlation_id.get())
        raise RuntimeError("bug")

    monkeypatch.setattr(services.extras["cas"], "validate", broken)
    with caplog.at_level(logging.ERROR, logger="idp.cas"):
        response = client.get(f"/cas/serviceValidate?ticket=ST-x&service={SERVICE}")
    assert response.status_code == 500 and _code(response.data) == "INTERNAL_ERROR"
    assert seen == [response.headers["X-Correlation-Id"]]
    assert any("unexpected error on GET /cas/serviceValidate" in r.getMessage() for r in caplog.records)
    assert correlation_id.get() != seen[0]  # not left behind for the thread's next request
