"""Signing in and out, the session cookie and its CSRF token, changing one's password."""

from __future__ import annotations

from datetime import timedelta

from server.auth import identity
from server.auth.identity import CSRF_HEADER


def sign_in(client, username: str, password: str):
    return client.post("/api/session", json={"username": username, "password": password})


def test_sign_in_sets_a_safe_cookie_and_returns_the_csrf_token(people, client):
    people.user("alice")
    response = sign_in(client, "alice", "alice-password")
    assert response.status_code == 200
    body = response.json
    assert body["user"]["username"] == "alice"
    assert body["auth"] == "session"
    assert len(body["csrf_token"]) >= 32
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("galsearch_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/api/session").json["csrf_token"] == body["csrf_token"]


def test_the_cookie_is_re_sent_only_when_the_session_changed_or_is_old(people, client,
                                                                     monkeypatch):
    """Sliding expiry without re-signing the cookie on every response: a fresh cookie is left
    alone, one older than SESSION_REFRESH_AFTER comes back re-signed (a new expiry), and a
    tampered one is a new, signed-out session."""
    people.user("alice")
    first = sign_in(client, "alice", "alice-password").headers["Set-Cookie"]
    read = client.get("/api/session")
    assert read.json["user"]["username"] == "alice" and "Set-Cookie" not in read.headers
    monkeypatch.setattr(identity, "SESSION_REFRESH_AFTER", timedelta(0))
    refreshed = client.get("/api/session")
    assert refreshed.json["user"]["username"] == "alice"
    cookie = refreshed.headers["Set-Cookie"]
    assert cookie.startswith("galsearch_session=") and "HttpOnly" in cookie
    assert "Expires=" in cookie and first.startswith("galsearch_session=")
    assert client.get("/api/session").json["user"]["username"] == "alice"
    value = cookie.split(";")[0].partition("=")[2]
    client.set_cookie("galsearch_session", value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
    assert client.get("/api/session").status_code == 401


def test_usernames_are_case_insensitive(people, client):
    people.user("alice")
    assert sign_in(client, "  Alice ", "alice-password").status_code == 200


def test_wrong_password_unknown_user_and_deactivated_user_get_the_same_401(people, client):
    people.user("alice")
    admin = people.session("root", admin=True)
    bob_id = people.user("bob")
    assert admin.patch(f"/api/users/{bob_id}", json={"is_active": False}).status_code == 200
    answers = [sign_in(client, "alice", "wrong-password"), sign_in(client, "nobody", "whatever1"),
               sign_in(client, "bob", "bob-password")]
    assert [r.status_code for r in answers] == [401, 401, 401]
    assert len({r.json["detail"] for r in answers}) == 1


def test_sign_in_validates_its_body(client):
    response = client.post("/api/session", json={"username": "alice"})
    assert response.status_code == 422
    assert response.json["errors"] == {"json": {"password": ["Missing data for required field."]}}


def test_cookie_writes_need_the_csrf_header(people):
    alice = people.session("alice")
    without = alice.post("/api/campaigns", json={"name": "x"}, headers={CSRF_HEADER: ""})
    assert without.status_code == 403
    assert CSRF_HEADER in without.json["detail"]
    wrong = alice.post("/api/campaigns", json={"name": "x"}, headers={CSRF_HEADER: "nope"})
    assert wrong.status_code == 403
    assert alice.post("/api/campaigns", json={"name": "x"}).status_code == 201
    # reads need no token
    assert alice.get("/api/campaigns", headers={CSRF_HEADER: ""}).status_code == 200


def test_sign_out_ends_the_session(people):
    alice = people.session("alice")
    assert alice.delete("/api/session").status_code == 204
    assert alice.get("/api/session").status_code == 401


def test_sign_out_needs_the_csrf_header(people):
    alice = people.session("alice")
    assert alice.delete("/api/session", headers={CSRF_HEADER: "forged"}).status_code == 403
    assert alice.get("/api/session").status_code == 200


def test_signing_in_again_replaces_the_session_without_a_csrf_token(people, client):
    people.user("alice")
    people.user("bob")
    first = sign_in(client, "alice", "alice-password").json["csrf_token"]
    second = sign_in(client, "bob", "bob-password").json
    assert second["user"]["username"] == "bob"
    assert second["csrf_token"] != first


def test_anonymous_session_is_401_with_a_bearer_challenge(client):
    response = client.get("/api/session")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json["title"] == "Unauthorized"


def test_change_password(people, client):
    alice = people.session("alice")
    other_device = people.session("alice")
    wrong = alice.post("/api/session/password",
                       json={"current_password": "nope-nope", "new_password": "n3w-password"})
    assert wrong.status_code == 403
    short = alice.post("/api/session/password",
                       json={"current_password": "alice-password", "new_password": "short"})
    assert short.status_code == 422 and "new_password" in short.json["errors"]["json"]
    response = alice.post("/api/session/password",
                          json={"current_password": "alice-password",
                                "new_password": "n3w-password"})
    assert response.status_code == 200
    alice.csrf = response.json["csrf_token"]
    assert alice.get("/api/session").status_code == 200  # this session goes on
    assert other_device.get("/api/session").status_code == 401  # the others end
    assert sign_in(client, "alice", "alice-password").status_code == 401
    assert sign_in(client, "alice", "n3w-password").status_code == 200


def test_password_reset_by_an_admin_ends_the_users_sessions(people):
    admin = people.session("root", admin=True)
    alice = people.session("alice")
    alice_id = people.ids["alice"]
    response = admin.patch(f"/api/users/{alice_id}", json={"password": "reset-password"})
    assert response.status_code == 200
    assert alice.get("/api/session").status_code == 401


def test_weaker_hashes_are_upgraded_at_sign_in(people, client, app):
    from argon2 import Parameters, Type, profiles

    from server.extensions import db
    from server.models import User

    people.user("alice")  # hashed with the cheapest profile
    stronger = Parameters(type=Type.ID, version=19, salt_len=16, hash_len=16, time_cost=2,
                          memory_cost=256, parallelism=1)
    app.config["PASSWORD_HASH_PARAMETERS"] = stronger
    try:
        assert sign_in(client, "alice", "alice-password").status_code == 200
        with app.app_context():
            stored = db.session.get(User, people.ids["alice"]).password_hash
        assert "m=256,t=2,p=1" in stored
        assert sign_in(client, "alice", "alice-password").status_code == 200
    finally:
        app.config["PASSWORD_HASH_PARAMETERS"] = profiles.CHEAPEST
