"""The web app's front door against a running `adgen ui`: sign-in limits and hashing off the event
loop, the origin check, cookie flags, session expiry, and `adgen users passwd / remove` ending
sessions. Addresses are varied with X-Forwarded-For, which the server trusts from this machine
only (as it would from a TLS proxy on the same host)."""

import asyncio
import itertools
import re
import statistics
import threading
import time

import httpx
import pytest
from fastapi import HTTPException
from gradio_client import Client

from adgen.accounts import SignInLimiter, add_user, authenticate
from adgen.records import open_db
from adgen.settings import get_settings
from tests.conftest import adgen
from tests.webapp import USERS, running_ui

ALICE = ("alice", USERS["alice"][0])
EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def server(tmp_path_factory, default_models):
    root = tmp_path_factory.mktemp("guarded")
    with running_ui(root, env={"ADGEN_SESSION_IDLE": "3", "ADGEN_SESSION_MAX": "8"}) as url:
        yield url, root


def login(url: str, user: str, password: str, address: str = "127.0.0.1", **headers) -> httpx.Response:
    return httpx.post(f"{url}/login", data={"username": user, "password": password},
                      headers={"X-Forwarded-For": address, **headers})


def signed_in(url: str, user: str, password: str, address: str) -> httpx.Client:
    response = login(url, user, password, address)
    assert response.status_code == 200, response.text
    return httpx.Client(base_url=url, cookies=response.cookies)


def test_the_sixth_wrong_sign_in_in_a_minute_is_refused_without_hashing():
    from ui.guard import SignIn, client_address

    db = open_db(get_settings())
    with db.begin() as s:
        add_user(s, "alice", "right-password", ["Northwind Coffee"])
    hashed = []

    def counting(s, name, password):  # the real check, counted
        hashed.append(name)
        return authenticate(s, name, password)

    now = [1000.0]
    sign_in = SignIn(db, SignInLimiter(5, 60, clock=lambda: now[0]), check=counting)

    async def attempts():
        client_address.set("203.0.113.7")
        results = [await sign_in.verify("alice", "wrong-password") for _ in range(5)]
        with pytest.raises(HTTPException) as refused:
            await sign_in.verify("alice", "right-password")
        client_address.set("198.51.100.1")  # another address: the account is still locked
        with pytest.raises(HTTPException):
            await sign_in.verify("alice", "right-password")
        now[0] += 61
        return results, refused.value, await sign_in.verify("alice", "right-password")

    results, refused, later = asyncio.run(attempts())
    assert results == [False] * 5 and refused.status_code == 429
    assert re.fullmatch(r"Too many failed sign-ins; try again in \d+ s\.", refused.detail)
    assert len(hashed) == 6 and later  # five wrong checks, the one after the window; none while refused


def test_sign_in_limit_on_the_server(server):
    url, _ = server
    answers = [login(url, "alice", f"guess-{i}", "10.0.0.1").status_code for i in range(5)]
    assert answers == [400] * 5
    sixth = login(url, "alice", ALICE[1], "10.0.0.1")
    assert sixth.status_code == 429 and "try again in" in sixth.text
    # the account is locked from every address; the address for every account
    assert login(url, "alice", ALICE[1], "10.0.0.2").status_code == 429
    assert login(url, "bob", USERS["bob"][0], "10.0.0.1").status_code == 429
    assert login(url, "bob", USERS["bob"][0], "10.0.0.3").status_code == 200


def test_cross_site_requests_are_refused(server):
    url, _ = server
    assert login(url, "bob", USERS["bob"][0], "10.0.1.1", Origin=EVIL).status_code == 403
    assert login(url, "bob", USERS["bob"][0], "10.0.1.1", **{"Sec-Fetch-Site": "cross-site"}).status_code == 403
    session = signed_in(url, "bob", USERS["bob"][0], "10.0.1.1")
    join = {"data": [], "fn_index": 0, "session_hash": "abc", "event_data": None, "trigger_id": None}
    refused = session.post("/gradio_api/queue/join", json=join, headers={"Origin": EVIL})
    assert refused.status_code == 403 and "Origin" in refused.text
    same = session.post("/gradio_api/queue/join", json=join, headers={"Origin": url})
    assert same.status_code == 200
    assert session.get("/config", headers={"Origin": EVIL}).status_code == 200  # reading changes nothing


def test_session_cookies_are_httponly_lax_and_secure_over_https(server):
    url, _ = server
    plain = login(url, "bob", USERS["bob"][0], "10.0.2.1").headers.get_list("set-cookie")
    assert plain and all("HttpOnly" in c and "SameSite=Lax" in c and "Secure" not in c for c in plain)
    https = login(url, "bob", USERS["bob"][0], "10.0.2.1", **{"X-Forwarded-Proto": "https"}).headers.get_list("set-cookie")
    assert https and all("HttpOnly" in c and "SameSite=Lax" in c and "Secure" in c for c in https)


def test_sessions_end_when_idle_and_after_their_lifetime(server):
    url, _ = server
    idle = signed_in(url, "bob", USERS["bob"][0], "10.0.3.1")
    assert idle.get("/config").status_code == 200
    time.sleep(4)  # ADGEN_SESSION_IDLE=3
    assert idle.get("/config").status_code == 401

    busy = signed_in(url, "bob", USERS["bob"][0], "10.0.3.1")
    started, answers = time.monotonic(), []
    while time.monotonic() - started < 10:  # used every second, so never idle; ADGEN_SESSION_MAX=8
        answers.append(busy.get("/config").status_code)
        time.sleep(1)
    assert answers[:5] == [200] * 5 and answers[-1] == 401


def test_passwd_and_remove_end_the_users_sessions(server):
    url, root = server
    env = {"ADGEN_HOME": str(root / "home")}
    adgen("users", "add", "carol", "--brand", "Fabrikam", env={**env, "ADGEN_PASSWORD": "carol-password-1"})
    carol = signed_in(url, "carol", "carol-password-1", "10.0.4.1")
    assert carol.get("/config").status_code == 200
    adgen("users", "passwd", "carol", env={**env, "ADGEN_PASSWORD": "carol-password-2"})
    assert _ends(carol)
    assert login(url, "carol", "carol-password-1", "10.0.4.1").status_code == 400

    carol = signed_in(url, "carol", "carol-password-2", "10.0.4.1")
    adgen("users", "remove", "carol", env=env)
    assert _ends(carol)
    assert login(url, "carol", "carol-password-2", "10.0.4.2").status_code == 400
    missing = adgen("users", "remove", "carol", env=env, check=False)
    assert missing.returncode == 2 and "user name 'carol': no such user" in missing.stderr


def _ends(session: httpx.Client, within: float = 10) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if session.get("/config").status_code == 401:
            return True
        time.sleep(0.5)
    return False


def test_a_wrong_sign_in_loop_does_not_stall_the_review_poll(tmp_path, default_models):
    """Wrong sign-ins from many addresses (so no limit applies) hash passwords as fast as the
    server takes them; a signed-in reviewer's poll must still answer about as before."""
    with running_ui(tmp_path, env={"ADGEN_SIGNIN_ATTEMPTS": "100000"}) as url:
        alice = Client(url, auth=ALICE, verbose=False)
        campaign = alice.predict(api_name="/whoami")[2]["value"] or ""

        def poll_times(n: int = 12) -> list[float]:
            times = []
            for _ in range(n):
                start = time.perf_counter()
                alice.predict(campaign, "all", "all", "all", "id", 0, api_name="/campaign")
                times.append(time.perf_counter() - start)
            return times

        quiet = statistics.median(poll_times())
        stop, sent, counter = threading.Event(), [], itertools.count()

        def attack():
            with httpx.Client(timeout=60) as c:
                while not stop.is_set():
                    i = next(counter)
                    c.post(f"{url}/login", data={"username": f"user{i}", "password": "wrong"},
                           headers={"X-Forwarded-For": f"10.9.{i // 250 % 250}.{i % 250 + 1}"})
                    sent.append(i)

        attackers = [threading.Thread(target=attack) for _ in range(3)]
        for t in attackers:
            t.start()
        try:
            time.sleep(2)
            under_attack = statistics.median(poll_times())
        finally:
            stop.set()
            for t in attackers:
                t.join()
        print(f"review poll median: {quiet * 1000:.0f} ms quiet, {under_attack * 1000:.0f} ms during "
              f"{len(sent)} wrong sign-ins")
        assert len(sent) >= 6
        assert under_attack < max(5 * quiet, quiet + 0.5)
