"""Security: headers on every response (a Content-Security-Policy the built app works under),
the session cookie's flags, rate-limited sign-in counted in the database (so across workers),
the password hash, and no path that reaches a file by name."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from server.auth.accounts import create_user
from server.auth.passwords import hash_password
from server.extensions import db
from server.models import SignInFailure
from server.security_headers import APP_CSP, DOCS_CSP


def sign_in(client, username: str, password: str, address: str = "192.0.2.1"):
    return client.post("/api/session", json={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def add_alice(app) -> None:
    with app.app_context():
        create_user("alice", "alice-password")
        db.session.commit()


# -- headers ----------------------------------------------------------------------------------
def _assert_common_headers(response) -> None:
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def test_every_kind_of_response_has_the_security_headers(people, client):
    alice = people.session("alice")
    cid = people.campaign("alice")
    responses = [
        client.get("/api/openapi.json"),
        client.get("/api/campaigns"),  # 401
        alice.get(f"/api/campaigns/{cid}"),
        alice.get("/api/campaigns/999999"),  # 404
        alice.post("/api/campaigns", json={"name": 5}),  # 422
        alice.get("/api/objects/3/cutout.png?size=32"),
        client.get("/campaigns/7", buffered=True),  # the app's page (or its "not built" page)
        client.get("/api/docs"),
    ]
    for response in responses:
        _assert_common_headers(response)
        expected = DOCS_CSP if response.request.path == "/api/docs" else APP_CSP
        assert response.headers["Content-Security-Policy"] == expected, response.request.path
    assert responses[2].headers["Cache-Control"] == "no-store"  # API answers are not kept
    assert "no-store" not in responses[5].headers["Cache-Control"]  # cutouts choose their own


def test_the_app_policy_allows_only_this_origin():
    directives = dict(d.split(" ", 1) for d in APP_CSP.split("; "))
    assert directives["script-src"] == "'self'"  # no inline script, no eval
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert "unsafe" not in APP_CSP


def test_the_built_app_needs_nothing_the_policy_forbids():
    """The Vite build: one module script and stylesheets from /assets, no inline script or
    style, no other origin (the browser tests then run the app under the policy)."""
    index = Path(__file__).parents[2] / "server" / "static" / "app" / "index.html"
    if not index.is_file():
        pytest.skip("the app is not built (npm run build)")
    html = index.read_text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all('src="/assets/' in attrs and not body.strip()
                           for attrs, body in scripts)
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)


def test_the_browser_tests_run_the_app_under_this_policy():
    """tests/e2e serves the app with this policy and fails on any violation reported."""
    conftest = (Path(__file__).parents[1] / "e2e" / "conftest.py").read_text()
    match = re.search(r"CONTENT_SECURITY_POLICY = \((.*?)\)\n", conftest, re.S)
    assert match, "tests/e2e/conftest.py no longer sets the policy"
    e2e_policy = "".join(re.findall(r'"([^"]*)"', match.group(1)))
    assert e2e_policy == APP_CSP


def test_hsts_only_when_the_cookie_is_https_only(make_app):
    plain = make_app().test_client().get("/api/openapi.json")
    assert "Strict-Transport-Security" not in plain.headers
    secure = make_app(SESSION_COOKIE_SECURE=True).test_client().get("/api/openapi.json")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")


def test_session_cookie_is_httponly_samesite_and_secure_when_configured(people, make_app):
    app = make_app(SESSION_COOKIE_SECURE=True)
    add_alice(app)
    cookies = sign_in(app.test_client(), "alice", "alice-password").headers.getlist("Set-Cookie")
    # the session cookie and the image pass (server.auth.image_pass)
    assert sorted(c.partition("=")[0] for c in cookies) == ["galsearch_images",
                                                            "galsearch_session"]
    for cookie in cookies:
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_passwords_are_hashed_with_argon2id(app):
    from argon2 import Type

    from server.auth.passwords import DEFAULT_PARAMETERS

    # production: RFC 9106's low-memory profile, above OWASP's minimum (19 MiB, 2 passes)
    assert DEFAULT_PARAMETERS.type is Type.ID
    assert DEFAULT_PARAMETERS.memory_cost >= 19 * 1024 and DEFAULT_PARAMETERS.time_cost >= 2
    with app.app_context():
        stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$") and "correct" not in stored


# -- rate-limited sign-in ---------------------------------------------------------------------
def _failures(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(SignInFailure))


def test_failed_sign_ins_to_an_account_are_limited_with_retry_after(people, client, app):
    people.user("alice")
    limit = app.config["SIGN_IN_ACCOUNT_LIMIT"]
    for i in range(limit):  # from different addresses: the account's count
        assert sign_in(client, "alice", "wrong-password", f"192.0.2.{i}").status_code == 401
    refused = sign_in(client, "alice", "alice-password", "198.51.100.7")  # even the right one
    assert refused.status_code == 429
    assert "to this account" in refused.json["detail"]
    wait = int(refused.headers["Retry-After"])
    assert 0 < wait <= app.config["SIGN_IN_WINDOW_S"]
    assert f"{wait} s" in refused.json["detail"]
    assert "Set-Cookie" not in refused.headers
    assert _failures(app) == 2 * limit  # a refused attempt is not counted again
    # other accounts are not affected
    people.user("bob")
    assert sign_in(client, "bob", "bob-password", "198.51.100.7").status_code == 200


def test_failures_from_one_address_are_limited_across_accounts(people, client, app):
    people.user("alice")
    limit = app.config["SIGN_IN_IP_LIMIT"]
    for i in range(limit):
        assert sign_in(client, f"guess{i}", "wrong-password", "203.0.113.9").status_code == 401
    refused = sign_in(client, "alice", "alice-password", "203.0.113.9")
    assert refused.status_code == 429 and "from your address" in refused.json["detail"]
    assert int(refused.headers["Retry-After"]) > 0
    assert sign_in(client, "alice", "alice-password", "203.0.113.10").status_code == 200


def test_a_successful_sign_in_clears_the_accounts_failures(people, client, app):
    people.user("alice")
    limit = app.config["SIGN_IN_ACCOUNT_LIMIT"]
    for _ in range(limit - 1):
        sign_in(client, "alice", "wrong-password")
    assert sign_in(client, "alice", "alice-password").status_code == 200
    for _ in range(limit - 1):
        assert sign_in(client, "alice", "wrong-password").status_code == 401


def test_the_limit_holds_across_workers_and_ends_with_the_window(make_app, tmp_path):
    """Two apps on one database (two gunicorn workers) count the same failures; once the
    window has passed, signing in works again."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    settings = {"SIGN_IN_ACCOUNT_LIMIT": 3, "SIGN_IN_WINDOW_S": 2}
    first, second = make_app(url, **settings), make_app(url, **settings)
    add_alice(first)
    clients = [first.test_client(), second.test_client()]
    for i in range(3):
        assert sign_in(clients[i % 2], "alice", "wrong-password").status_code == 401
    for c in clients:
        assert sign_in(c, "alice", "alice-password").status_code == 429
    time.sleep(2.1)
    assert sign_in(clients[1], "alice", "alice-password").status_code == 200
    # failures older than the window are deleted when the next ones are recorded
    sign_in(clients[0], "alice", "wrong-password")
    assert _failures(first) == 2


def test_a_zero_limit_turns_the_limit_off(make_app):
    app = make_app(SIGN_IN_ACCOUNT_LIMIT=0, SIGN_IN_IP_LIMIT=0)
    add_alice(app)
    client = app.test_client()
    for _ in range(12):
        assert sign_in(client, "alice", "wrong-password").status_code == 401
    assert sign_in(client, "alice", "alice-password").status_code == 200


def test_the_client_address_comes_from_trusted_proxies_only(make_app):
    from server.auth.throttle import address_key

    direct = make_app(SIGN_IN_IP_LIMIT=2, SIGN_IN_ACCOUNT_LIMIT=0)
    behind = make_app(SIGN_IN_IP_LIMIT=2, SIGN_IN_ACCOUNT_LIMIT=0, PROXY_COUNT=1)
    for app in (direct, behind):
        client = app.test_client()
        for i in range(2):  # two clients behind one proxy at 10.0.0.1
            client.post("/api/session", json={"username": "x", "password": "wrong-password"},
                        headers={"X-Forwarded-For": f"198.51.100.{i}"},
                        environ_base={"REMOTE_ADDR": "10.0.0.1"})
        with app.app_context():
            keys = set(db.session.scalars(select(SignInFailure.key)))
        if app is direct:  # a forged X-Forwarded-For is ignored
            assert address_key("10.0.0.1") in keys and address_key("198.51.100.0") not in keys
        else:
            assert {address_key("198.51.100.0"), address_key("198.51.100.1")} <= keys


# -- no file reached by name ------------------------------------------------------------------
@pytest.mark.parametrize("path", [
    "/api/objects/..%2F..%2Fetc%2Fpasswd/cutout.png",
    "/api/objects/3/..%2F..%2F..%2Fetc%2Fpasswd",
    "/api/campaigns/1/exports/..%2F..%2Fsecret_key/file",
    "/api/campaigns/1/exports/1/..%2F..%2F..%2Fsecret_key",
])
def test_no_path_traversal_through_the_api(people, path):
    alice = people.session("alice")
    response = alice.get(path)
    assert response.status_code == 404 and response.is_json


@pytest.mark.parametrize("path", ["/assets/../../config.py", "/assets/..%2F..%2Fconfig.py",
                                  "/..%2Fconfig.py", "/%2E%2E/%2E%2E/server/config.py"])
def test_no_path_traversal_through_the_app_files(client, path):
    response = client.get(path, buffered=True)
    assert b"load_config" not in response.data
    assert response.status_code in (200, 404, 503)  # the app's page, or not found
