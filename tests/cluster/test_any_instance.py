"""Any request on any instance: logins begun on one instance end on another (SAML, OIDC, CAS, activation by
SMS), a logout on a third ends the session everywhere, a CAS ticket or an OIDC code raced by 50 redemptions
across two instances has one winner, and the throttling counters are shared."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.cluster import activation
from tests.cluster.conftest import PARENT, PARENT_PASSWORD, PUPIL, PUPIL_PASSWORD, ClusterBrowser, Topology

#: One pytest worker runs tests/cluster (./run test uses --dist loadgroup): one topology, started once.
pytestmark = [pytest.mark.xdist_group("cluster"), pytest.mark.slow]

RACERS = 50


def test_saml_login_begun_on_one_instance_ends_on_another(topology: Topology, browser: ClusterBrowser) -> None:
    ent = topology.service("ent")
    page = browser.on(0).submit(browser.get(f"{ent}/connexion"), "profil", {"profil": "educonnect"})
    assert 'name="identifiant"' in page.text or "profil=parent" in page.text, page.text[:1500]
    page = browser.on(1).idp_login(page, PARENT, PARENT_PASSWORD)  # the form posted to instance 2 of 3
    if page.url.endswith("/charte"):
        page = browser.submit(page, "accepte", {"accepte": "oui"})
    if page.url.endswith("/preferences"):
        page = browser.submit(page, "email", {"email": ""})
    assert page.url == f"{ent}/" and "Bonjour Sandrine Dupuis" in page, (page.url, page.text[:1500])
    # The SSO session is the database's: the third instance answers Pronote (CAS) without a password.
    pronote = browser.on(2).get(f"{topology.service('pronote')}/cas/login")
    assert pronote.url.startswith(topology.service("pronote")) and 'name="mot_de_passe"' not in pronote.text


def test_cas_login_begun_on_one_instance_ends_on_another(topology: Topology, browser: ClusterBrowser) -> None:
    pronote = topology.service("pronote")
    page = browser.on(2).get(f"{pronote}/cas/login")
    assert page.url.startswith(topology.cluster.instance_url(2)), page.url
    page = browser.on(0).idp_login(page, PUPIL, PUPIL_PASSWORD, "eleve")
    assert page.url.startswith(pronote) and ("Bonjour Camille Dupuis" in page
                                             or "J'ai pris connaissance" in page), page.text[:1500]


def test_oidc_login_begun_on_one_instance_ends_on_another(topology: Topology, browser: ClusterBrowser) -> None:
    teleservices = topology.service("teleservices")
    page = browser.on(1).get(f"{teleservices}/connexion")
    assert page.url.startswith(topology.cluster.instance_url(1)), page.url
    page = browser.on(2).idp_login(page, PARENT, PARENT_PASSWORD)
    assert page.url.startswith(teleservices) and "Mes services" in page, (page.url, page.text[:1500])


def test_activation_by_sms_across_three_instances(topology: Topology, browser: ClusterBrowser) -> None:
    family, given, phone, born = topology.family_to_activate()
    page = activation.start(browser.on(0), topology, family, given, phone)
    code, _ = topology.sms_code(phone)
    page = browser.on(1).submit(page, "code", {"code": code})
    assert page.url.endswith("/creer-mon-compte/eleves"), (page.url, page.text[:1500])
    page = browser.on(2).submit(page, "lien_0", activation.children_answers(page, born))
    assert page.url.endswith("/creer-mon-compte/mot-de-passe"), (page.url, page.text[:1500])
    page = browser.on(0).submit(page, "mot_de_passe", {"mot_de_passe": activation.GOOD_PASSWORD,
                                                        "confirmation": activation.GOOD_PASSWORD})
    assert "Votre compte a été activé avec succès" in page, page.text[:1500]
    identifier = activation.identifier_of(page)
    other = ClusterBrowser(topology).on(1)
    done = other.idp_login(other.get(f"{topology.idp}/login?profil=parent"), identifier, activation.GOOD_PASSWORD)
    assert "Mes services" in done and identifier in done
    assert topology.consistency() == []


def test_a_logout_on_a_third_instance_ends_the_session_everywhere(topology: Topology,
                                                                  browser: ClusterBrowser) -> None:
    ent, pronote = topology.service("ent"), topology.service("pronote")
    page = browser.on(0).submit(browser.get(f"{ent}/connexion"), "profil", {"profil": "educonnect"})
    page = browser.idp_login(page, PARENT, PARENT_PASSWORD)
    assert page.url.startswith(ent)
    assert 'name="mot_de_passe"' not in browser.on(1).get(f"{pronote}/cas/login").text  # SSO through instance 2
    confirm = browser.on(2).get(f"{topology.idp}/logout")
    done = browser.submit(confirm, "csrf_token")
    assert done.status == 200 and "déconnecté" in done, done.text[:1500]
    for index in (0, 1):  # no instance knows the session any more: each asks for the password again
        again = browser.on(index).get(f"{topology.idp}/cas/login?service={pronote}/")
        assert 'name="mot_de_passe"' in again.text or "profil=parent" in again.text, (index, again.text[:800])
    assert "Se connecter avec ÉduConnect" in browser.on(None).get(f"{pronote}/")  # CAS back-channel logout


def _logged_in(topology: Topology) -> ClusterBrowser:
    browser = ClusterBrowser(topology).on(0)
    page = browser.idp_login(browser.get(f"{topology.idp}/login?profil=parent"), PARENT, PARENT_PASSWORD)
    assert "Mes services" in page
    return browser


def _race(urls_and_calls: list[tuple[str, dict]], method: str) -> list[requests.Response]:
    def one(item: tuple[str, dict]) -> requests.Response:
        return requests.request(method, item[0], timeout=30, **item[1])

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        return list(pool.map(one, urls_and_calls))


def test_a_cas_ticket_raced_across_two_instances_has_one_winner(topology: Topology) -> None:
    service = "http://127.0.0.1:9/course/"
    topology.op("cas", "add", "Course", service, "--match", "prefix", "--id", "course")
    browser = _logged_in(topology)
    answer = browser.http.get(f"{topology.cluster.instance_url(0)}/cas/login", params={"service": service},
                              allow_redirects=False, timeout=30)
    assert answer.status_code in (302, 303), answer.text[:800]
    ticket = parse_qs(urlsplit(answer.headers["Location"]).query)["ticket"][0]
    calls = [(f"{topology.cluster.instance_url(i % 2)}/cas/p3/serviceValidate",
              {"params": {"service": service, "ticket": ticket}}) for i in range(RACERS)]
    bodies = [r.text for r in _race(calls, "GET")]
    assert sum("<cas:authenticationSuccess>" in b for b in bodies) == 1, bodies[:3]
    assert sum('code="INVALID_TICKET"' in b for b in bodies) == RACERS - 1


def test_an_oidc_code_raced_across_two_instances_has_one_winner(topology: Topology) -> None:
    redirect_uri = "http://127.0.0.1:9/cb"
    out = topology.op("oidc", "add", "--name", "Course", "--client-id", "course", "--redirect-uri", redirect_uri,
                      "--scope", "openid profile", "--first-party")
    secret = re.search(r"client_secret\s*:\s*(\S+)", out).group(1)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    browser = _logged_in(topology)
    answer = browser.http.get(f"{topology.cluster.instance_url(1)}/oidc/authorize", allow_redirects=False, timeout=30,
                              params={"response_type": "code", "client_id": "course", "redirect_uri": redirect_uri,
                                      "scope": "openid profile", "state": secrets.token_urlsafe(16),
                                      "nonce": secrets.token_urlsafe(16), "code_challenge": challenge,
                                      "code_challenge_method": "S256"})
    assert answer.status_code in (302, 303), answer.text[:800]
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
    calls = [(f"{topology.cluster.instance_url(i % 2)}/oidc/token", {"data": form, "auth": ("course", secret)})
             for i in range(RACERS)]
    answers = _race(calls, "POST")
    assert sorted(r.status_code for r in answers) == [200] + [400] * (RACERS - 1)
    assert all(r.json()["error"] == "invalid_grant" for r in answers if r.status_code == 400)


def test_throttling_counters_are_shared_by_the_instances(topology: Topology) -> None:
    identifier = "n.moulin1"  # the provisional pupil: no other test logs in with it
    for attempt in range(4):  # the free failures, spread over the three instances
        browser = ClusterBrowser(topology).on(attempt % 3)
        page = browser.idp_login(browser.get(f"{topology.idp}/login?profil=eleve"), identifier, "Pas-le-bon-1!", "eleve")
        assert "Identifiant ou mot de passe incorrect" in page, page.text[:800]
    browser = ClusterBrowser(topology).on(1)  # the fifth failure, counted with the four others, starts the wait
    page = browser.idp_login(browser.get(f"{topology.idp}/login?profil=eleve"), identifier, "Pas-le-bon-1!", "eleve")
    assert page.status == 429 and "Connexion suspendue" in page, (page.status, page.text[:800])
    browser = ClusterBrowser(topology).on(2)  # even the right password waits, on any instance
    page = browser.idp_login(browser.get(f"{topology.idp}/login?profil=eleve"), identifier, "Provisoire-Kx7p2", "eleve")
    assert page.status == 429 and "Connexion suspendue" in page, (page.status, page.text[:800])


def test_each_instance_exposes_its_workers_metrics_to_the_token_only(topology: Topology) -> None:
    token = topology.cluster.metrics_token
    assert requests.get(f"{topology.idp}/metrics", headers={"Authorization": f"Bearer {token}"},
                        timeout=10).status_code == 404  # never through the public load balancer
    url = f"{topology.cluster.instance_url(0)}/metrics"
    assert requests.get(url, timeout=10).status_code == 401
    # A password login on this instance now (the group's other tests may have restarted it since theirs).
    browser = ClusterBrowser(topology).on(0)
    page = browser.idp_login(browser.get(f"{topology.idp}/login?profil=eleve"), PUPIL, PUPIL_PASSWORD, "eleve")
    assert page.status == 200 and "Mes services" in page, page.text[:800]
    text = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).text
    logins = [line for line in text.splitlines() if line.startswith("idp_logins_total{")]
    assert any('outcome="success"' in line and 'route="password"' in line for line in logins), logins
    assert "idp_request_duration_seconds_bucket{" in text and "idp_delivery_queue_depth{" in text
    assert 'idp_db_pool_capacity{pool="durable"}' in text  # PostgreSQL pools, summed over the live workers
