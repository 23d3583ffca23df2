"""Single logout across two SPs (python3-saml on both ends), from an SP and from our /logout page (S23)."""

from __future__ import annotations

from typing import Any

from tests.conftest import DEFAULT_PASSWORD, csrf_from
from tests.protocols.saml.conftest import OneLoginSp, login_through, path_of, query_of


def _login_both(client: Any, login: Any, account: Any, sp1: OneLoginSp, sp2: OneLoginSp) -> tuple[Any, Any]:
    url, request_id = sp1.login_url()
    a1 = sp1.consume(login_through(client, login, url, account.identifier, DEFAULT_PASSWORD), request_id)
    url, request_id = sp2.login_url()
    a2 = sp2.consume(client.get(path_of(url)).get_data(as_text=True), request_id)
    assert a1.is_authenticated() and a2.is_authenticated()
    return a1, a2


def _sp_answers(sp: OneLoginSp, location: str) -> str:
    """The SP's SLS processes our LogoutRequest and returns the redirect to our SLO endpoint."""
    assert location.startswith(sp.sls), location
    auth = sp.auth("/sls", get=query_of(location))
    back = auth.process_slo(keep_local_session=True)
    assert auth.get_errors() == [], (auth.get_errors(), auth.get_last_error_reason())
    return back


def test_sp_initiated_logout_reaches_the_other_sp_and_answers(client: Any, login: Any, account_factory: Any,
                                                              services: Any, sp1: OneLoginSp,
                                                              sp2: OneLoginSp) -> None:
    account = account_factory()
    a1, _ = _login_both(client, login, account, sp1, sp2)
    start = sp1.auth()
    url = start.logout(name_id=a1.get_nameid(), session_index=a1.get_session_index(),
                       name_id_format=a1.get_nameid_format(), spnq=a1.get_nameid_spnq())
    request_id = start.get_last_request_id()
    step = client.get(path_of(url))
    assert step.status_code == 303
    to_sp2 = client.get(step.headers["Location"])
    assert to_sp2.status_code == 303
    back = _sp_answers(sp2, to_sp2.headers["Location"])
    after = client.get(path_of(back))
    assert after.status_code == 303
    final = client.get(after.headers["Location"])
    assert final.status_code == 303 and final.headers["Location"].startswith(sp1.sls)
    done = sp1.auth("/sls", get=query_of(final.headers["Location"]))
    done.process_slo(request_id=request_id, keep_local_session=True)
    assert done.get_errors() == [], done.get_last_error_reason()
    # The SSO session is over: a new login asks for the password.
    url, _ = sp1.login_url()
    assert client.get(path_of(url)).status_code == 303


def test_logout_page_visits_every_sp_then_shows_logged_out(client: Any, login: Any, account_factory: Any,
                                                           sp1: OneLoginSp, sp2: OneLoginSp) -> None:
    account = account_factory()
    _login_both(client, login, account, sp1, sp2)
    confirm = client.get("/logout").get_data(as_text=True)
    step = client.post("/logout", data={"csrf_token": csrf_from(confirm)})
    assert step.status_code == 303 and "/saml/slo/next/" in step.headers["Location"]
    visited = []
    location = step.headers["Location"]
    while True:
        response = client.get(path_of(location))
        if response.status_code == 200:
            break
        target = response.headers["Location"]
        sp = sp1 if target.startswith(sp1.sls) else sp2 if target.startswith(sp2.sls) else None
        if sp is not None:
            visited.append(sp.name)
            target = _sp_answers(sp, target)
        location = target
    page = response.get_data(as_text=True)
    assert "Vous êtes déconnecté" in page and "n'ont pas confirmé" not in page
    assert sorted(visited) == ["sp1", "sp2"]


def test_logout_reports_an_sp_that_does_not_answer(client: Any, login: Any, account_factory: Any,
                                                   sp1: OneLoginSp, sp2: OneLoginSp) -> None:
    account = account_factory()
    _login_both(client, login, account, sp1, sp2)
    confirm = client.get("/logout").get_data(as_text=True)
    step = client.post("/logout", data={"csrf_token": csrf_from(confirm)})
    first = client.get(path_of(step.headers["Location"]))
    assert first.headers["Location"].startswith(sp1.sls)
    # sp1 never comes back; the browser goes on to the chain's next step (e.g. the user retries).
    nxt = client.get(path_of(step.headers["Location"]))
    back = _sp_answers(sp2, nxt.headers["Location"])
    final = client.get(path_of(client.get(path_of(back)).headers["Location"]))
    page = final.get_data(as_text=True)
    assert final.status_code == 200 and "ENT de test" in page and "n'ont pas confirmé" in page


def test_unsigned_logout_request_leaves_the_session_alone(client: Any, login: Any, account_factory: Any,
                                                          sp1: OneLoginSp, sp2: OneLoginSp) -> None:
    account = account_factory()
    a1, _ = _login_both(client, login, account, sp1, sp2)
    url = sp1.auth().logout(name_id=a1.get_nameid(), session_index=a1.get_session_index())
    query = query_of(url)
    tampered = client.get("/saml/slo/redirect", query_string={"SAMLRequest": query["SAMLRequest"]})
    assert tampered.status_code == 403
    forged_sig = client.get("/saml/slo/redirect", query_string={
        "SAMLRequest": query["SAMLRequest"], "SigAlg": query["SigAlg"], "Signature": query["Signature"][::-1]})
    assert forged_sig.status_code == 403
    url, request_id = sp1.login_url()
    assert client.get(path_of(url)).status_code == 200  # still logged in: answered at once
