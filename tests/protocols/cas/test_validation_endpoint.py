"""The validation endpoints (``idp.cas.validation``): one WSGI handler per path, no Flask view; GET and POST
read the same way and answered with the same bytes and headers; repeated parameters read as werkzeug reads
them; other methods 405; a bug answered 500 ``INTERNAL_ERROR`` and logged with the request's correlation id."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree

from idp.cas.validation import ROUTES
from idp.observability import correlation_id
from idp.wiring import Services

from .conftest import CAS_NS, SERVICE, CasBrowser, People


def _code(body: bytes) -> str:
    (failure,) = etree.fromstring(body).xpath("/cas:serviceResponse/cas:authenticationFailure", namespaces=CAS_NS)
    return str(failure.get("code"))


def test_no_flask_view_answers_a_validation_path(app: Flask) -> None:
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert not rules & set(ROUTES)
    assert "/cas/login" in rules and "/cas/proxy" in rules  # browser routes and /proxy stay views


def test_answer_headers(browser: CasBrowser, people: People, register, client: FlaskClient) -> None:
    register()
    ticket = browser.first_login(people.parent.identifier)
    response = client.get("/cas/p3/serviceValidate?" + urlencode({"ticket": ticket, "service": SERVICE}))
    assert response.status_code == 200 and b"authenticationSuccess" in response.data
    headers = response.headers
    assert headers["Content-Type"] == "application/xml; charset=utf-8"
    assert headers["Cache-Control"] == "no-store" and headers["Pragma"] == "no-cache"
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert len(headers["X-Correlation-Id"]) == 16 and headers["Content-Length"] == str(len(response.data))
    assert "Set-Cookie" not in headers


def test_same_answer_by_get_and_post(client: FlaskClient) -> None:
    """Status, body and headers (but the correlation id) are the same whichever method carried the request."""
    for path in ("/cas/serviceValidate", "/cas/p3/proxyValidate", "/cas/validate"):
        for query in ({"ticket": "ST-nope", "service": SERVICE}, {"service": SERVICE},
                      {"ticket": "ST-x", "service": SERVICE, "format": "JSON"}, {"format": "YAML"}):
            get, post = client.get(path + "?" + urlencode(query)), client.post(path, data=query)
            assert (get.status_code, get.data) == (post.status_code, post.data), (path, query)
            names = {name for name, _ in get.headers} - {"X-Correlation-Id"}
            assert names == {name for name, _ in post.headers} - {"X-Correlation-Id"}
            assert all(get.headers[n] == post.headers[n] for n in names)


def test_repeated_parameter_first_value_wins(client: FlaskClient) -> None:
    """``format=JSON&format=XML`` is JSON (and a blank ticket is a missing one)."""
    response = client.get(f"/cas/serviceValidate?format=JSON&format=XML&ticket=&service={SERVICE}")
    assert response.content_type == "application/json; charset=utf-8"
    assert b"INVALID_REQUEST" in response.data


def test_other_methods_and_paths(client: FlaskClient) -> None:
    assert client.head("/cas/serviceValidate?ticket=ST-x&service=x").status_code == 200
    assert client.get("/cas/serviceValidate/?ticket=ST-x").status_code == 404
    refused = client.put("/cas/serviceValidate")
    assert refused.status_code == 405 and refused.headers["Allow"] == "GET, HEAD, POST"


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
        v1 = client.get(f"/cas/validate?ticket=ST-x&service={SERVICE}")
    assert response.status_code == 500 and _code(response.data) == "INTERNAL_ERROR"
    assert v1.status_code == 500 and v1.data == b"no\n\n"
    assert seen[0] == response.headers["X-Correlation-Id"]
    assert any("unexpected error on /cas/serviceValidate" in r.getMessage() for r in caplog.records)
    assert correlation_id.get() != seen[0]  # not left behind for the thread's next request
