"""``/cas/proxyValidate``, ``/cas/p3/proxyValidate`` and ``/cas/proxy``: proxy-granting tickets through an
https callback (C09), proxy tickets only on the proxy endpoints (C08), the ``<cas:proxies>`` chain.

The proxying service is a TLS test server on 127.0.0.1 with a self-signed certificate, trusted through the
registration's ``ca_file``; python-cas (with ``proxy_callback``) drives the validations."""

from __future__ import annotations

from cas import CASClient, CASError
from lxml import etree

from .conftest import CAS_NS, TICKET_FORMAT, CasBrowser, People, fetch

BACKEND = "https://backend.example.fr/api/"


def _code(body: bytes, element: str = "authenticationFailure") -> str:
    (node,) = etree.fromstring(body).xpath(f"/cas:serviceResponse/cas:{element}", namespaces=CAS_NS)
    return node.get("code")


def _proxying_service(register, tls_service, certificate, *, proxy: bool = True, ca: bool = True, **options):
    server = tls_service(**options)
    service = server.base + "/app/"
    register(service, "proxying", proxy=proxy, ca_file=str(certificate.cert) if ca else "")
    register(BACKEND, "backend")
    return server, service


def _pgt(browser: CasBrowser, people: People, live: str, server, service: str, version: int = 2) -> tuple[str, str]:
    ticket = browser.first_login(people.parent.identifier, service)
    client = CASClient(version=version, service_url=service, server_url=live,
                       proxy_callback=server.base + "/callback?src=cas")
    user, _, iou = client.verify_ticket(ticket)
    assert user and iou and iou.startswith("PGTIOU-")
    (callback,) = server.received
    assert callback.method == "GET" and callback.path == "/callback"
    assert callback.query["src"] == ["cas"]  # the callback's own parameters are preserved (§2.5.4)
    assert callback.query["pgtIou"] == [iou]
    pgt = callback.query["pgtId"][0]
    assert TICKET_FORMAT.match(pgt) and pgt.startswith("PGT-")
    return pgt, iou


def test_proxy_chain_end_to_end(browser: CasBrowser, people: People, register, live: str, tls_service,
                                certificate) -> None:
    """PGT through the callback, PT from /proxy, PT validated by the back-end with the proxies chain."""
    server, service = _proxying_service(register, tls_service, certificate)
    pgt, _ = _pgt(browser, people, live, server, service)
    backend = CASClient(version=3, service_url=BACKEND, server_url=live)
    pt = backend.get_proxy_ticket(pgt)
    assert TICKET_FORMAT.match(pt) and pt.startswith("PT-")
    body = fetch(live + "p3/proxyValidate", params={"ticket": pt, "service": BACKEND}).content
    root = etree.fromstring(body)
    proxies = [p.text for p in root.xpath("//cas:proxies/cas:proxy", namespaces=CAS_NS)]
    assert proxies == [server.base + "/callback?src=cas"]
    assert root.xpath("//cas:attributes/cas:sn", namespaces=CAS_NS)[0].text == "Martin"
    # The PGT is reusable; each PT single use.
    pt2 = backend.get_proxy_ticket(pgt)
    assert pt2 != pt
    v2 = CASClient(version=2, service_url=BACKEND, server_url=live)
    v2.url_suffix = "proxyValidate"
    assert v2.verify_ticket(pt2)[0]
    assert v2.verify_ticket(pt2)[0] is None


def test_proxy_ticket_refused_by_service_validate(browser: CasBrowser, people: People, register, live: str,
                                                  tls_service, certificate) -> None:
    """C08: a PT at /serviceValidate (or p3, or /validate) fails with ``INVALID_TICKET_SPEC``."""
    server, service = _proxying_service(register, tls_service, certificate)
    pgt, _ = _pgt(browser, people, live, server, service)
    backend = CASClient(version=3, service_url=BACKEND, server_url=live)
    for endpoint in ("serviceValidate", "p3/serviceValidate"):
        pt = backend.get_proxy_ticket(pgt)
        response = fetch(live + endpoint, params={"ticket": pt, "service": BACKEND})
        assert _code(response.content) == "INVALID_TICKET_SPEC"
    pt = backend.get_proxy_ticket(pgt)
    assert fetch(live + "validate", params={"ticket": pt, "service": BACKEND}).text == "no\n\n"


def test_chain_of_two_proxies_lists_the_most_recent_first(browser: CasBrowser, people: People, register,
                                                          live: str, tls_service, certificate) -> None:
    """The back-end proxies again: its PT carries both callbacks, most recent first (§2.6.2)."""
    server, service = _proxying_service(register, tls_service, certificate)
    second = tls_service()
    register(second.base + "/api/", "middle", proxy=True, ca_file=str(certificate.cert))
    pgt, _ = _pgt(browser, people, live, server, service)
    middle = CASClient(version=2, service_url=second.base + "/api/", server_url=live,
                       proxy_callback=second.base + "/cb")
    middle.url_suffix = "proxyValidate"
    pt = middle.get_proxy_ticket(pgt)
    user, _, iou2 = middle.verify_ticket(pt)
    assert user and iou2
    pgt2 = second.received[-1].query["pgtId"][0]
    pt_final = CASClient(version=3, service_url=BACKEND, server_url=live).get_proxy_ticket(pgt2)
    body = fetch(live + "proxyValidate", params={"ticket": pt_final, "service": BACKEND, "format": "JSON"})
    success = body.json()["serviceResponse"]["authenticationSuccess"]
    assert success["proxies"] == [second.base + "/cb", server.base + "/callback?src=cas"]


def test_http_callback_is_refused(browser: CasBrowser, people: People, register, live: str, tls_service,
                                  certificate) -> None:
    """C09: ``pgtUrl`` over http: ``INVALID_PROXY_CALLBACK``, nothing called, no PGT."""
    server, service = _proxying_service(register, tls_service, certificate)
    ticket = browser.first_login(people.parent.identifier, service)
    pgt_url = server.base.replace("https://", "http://") + "/callback"
    response = fetch(live + "serviceValidate", params={"ticket": ticket, "service": service, "pgtUrl": pgt_url})
    assert _code(response.content) == "INVALID_PROXY_CALLBACK" and not server.received
    assert "proxyGrantingTicket" not in response.text


def test_self_signed_callback_without_trust_is_refused(browser: CasBrowser, people: People, register,
                                                       live: str, tls_service, certificate) -> None:
    """C09: a certificate the trust store does not know: no PGT."""
    server, service = _proxying_service(register, tls_service, certificate, ca=False)
    ticket = browser.first_login(people.parent.identifier, service)
    response = fetch(live + "proxyValidate",
                            params={"ticket": ticket, "service": service, "pgtUrl": server.base + "/callback"})
    assert _code(response.content) == "INVALID_PROXY_CALLBACK" and not server.received


def test_callback_answering_non_200_is_refused(browser: CasBrowser, people: People, register, live: str,
                                               tls_service, certificate) -> None:
    """C09: the callback must answer 200 (a redirect is not followed): otherwise no PGT."""
    register(BACKEND, "backend")
    for status in (404, 302, 500):
        server = tls_service(status=status)
        service = server.base + "/app/"
        register(service, f"p{status}", proxy=True, ca_file=str(certificate.cert))
        ticket = browser.first_login(people.parent.identifier, service)
        response = fetch(live + "serviceValidate",
                                params={"ticket": ticket, "service": service, "pgtUrl": server.base + "/cb"})
        assert _code(response.content) == "INVALID_PROXY_CALLBACK", status
        assert len(server.received) == 1
        browser.client.delete_cookie("__Host-sso")


def test_callback_on_another_host_is_refused(browser: CasBrowser, people: People, register, live: str,
                                             tls_service, certificate) -> None:
    server, service = _proxying_service(register, tls_service, certificate)
    ticket = browser.first_login(people.parent.identifier, service)
    response = fetch(live + "serviceValidate",
                            params={"ticket": ticket, "service": service, "pgtUrl": "https://localhost:1/cb"})
    assert _code(response.content) == "INVALID_PROXY_CALLBACK"


def test_service_without_proxy_policy_gets_no_pgt(browser: CasBrowser, people: People, register, live: str,
                                                  tls_service, certificate) -> None:
    """C09: proxying is off by default: ``UNAUTHORIZED_SERVICE_PROXY``, the callback never called."""
    server, service = _proxying_service(register, tls_service, certificate, proxy=False)
    ticket = browser.first_login(people.parent.identifier, service)
    response = fetch(live + "serviceValidate",
                            params={"ticket": ticket, "service": service, "pgtUrl": server.base + "/cb"})
    assert _code(response.content) == "UNAUTHORIZED_SERVICE_PROXY" and not server.received


def test_proxy_endpoint_errors(browser: CasBrowser, people: People, register, live: str, tls_service,
                               certificate) -> None:
    server, service = _proxying_service(register, tls_service, certificate)
    pgt, _ = _pgt(browser, people, live, server, service)
    missing = fetch(live + "proxy", params={"pgt": pgt})
    assert _code(missing.content, "proxyFailure") == "INVALID_REQUEST"
    unknown_target = fetch(live + "proxy", params={"pgt": pgt, "targetService": "https://evil.tld/"})
    assert _code(unknown_target.content, "proxyFailure") == "UNAUTHORIZED_SERVICE"
    bad_pgt = fetch(live + "proxy", params={"pgt": "PGT-" + "x" * 33, "targetService": BACKEND})
    assert _code(bad_pgt.content, "proxyFailure") == "INVALID_TICKET"
    st_as_pgt = fetch(live + "proxy", params={"pgt": "ST-" + "x" * 33, "targetService": BACKEND})
    assert _code(st_as_pgt.content, "proxyFailure") == "INVALID_TICKET"
    as_json = fetch(live + "proxy", params={"pgt": pgt, "targetService": BACKEND, "format": "JSON"}).json()
    assert as_json["serviceResponse"]["proxySuccess"]["proxyTicket"].startswith("PT-")
    try:
        CASClient(version=3, service_url="https://evil.tld/", server_url=live).get_proxy_ticket(pgt)
        raise AssertionError("a PT for an unregistered service")
    except CASError:
        pass


def test_pgt_dies_with_the_sso_session(browser: CasBrowser, people: People, register, live: str, tls_service,
                                       certificate) -> None:
    from .conftest import csrf_of

    server, service = _proxying_service(register, tls_service, certificate)
    pgt, _ = _pgt(browser, people, live, server, service)
    page = browser.client.get("/cas/logout")
    browser.client.post("/cas/logout", data={"csrf_token": csrf_of(page)})
    response = fetch(live + "proxy", params={"pgt": pgt, "targetService": BACKEND})
    assert _code(response.content, "proxyFailure") == "INVALID_TICKET"


def test_pgt_dies_when_the_session_expires(browser: CasBrowser, people: People, register, live: str,
                                           tls_service, certificate, clock) -> None:
    server, service = _proxying_service(register, tls_service, certificate)
    pgt, _ = _pgt(browser, people, live, server, service)
    clock.advance(minutes=31)  # idle timeout of the SSO session
    response = fetch(live + "proxy", params={"pgt": pgt, "targetService": BACKEND})
    assert _code(response.content, "proxyFailure") == "INVALID_TICKET"
