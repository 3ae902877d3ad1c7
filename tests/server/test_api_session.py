"""Signing in and out, the session cookie and its CSRF token, changing one's password."""

from __future__ import annotations

import time
from datetime import timedelta

from server.auth import identity
from server.auth.identity import CSRF_HEADER
from server.auth.image_pass import IMAGE_PASS_COOKIE, image_pass_expires, make_image_pass


def sign_in(client, username: str, password: str):
    return client.post("/api/session", json={"username": username, "password": password})


def set_cookie(response, name: str) -> str | None:
    """The Set-Cookie header of cookie ``name`` (None: not set)."""
    return next((c for c in response.headers.getlist("Set-Cookie")
                 if c.startswith(f"{name}=")), None)


def test_sign_in_sets_a_safe_cookie_and_returns_the_csrf_token(people, client):
    people.user("alice")
    response = sign_in(client, "alice", "alice-password")
    assert response.status_code == 200
    body = response.json
    assert body["user"]["username"] == "alice"
    assert body["auth"] == "session"
    assert len(body["csrf_token"]) >= 32
    cookie = set_cookie(response, "galsearch_session")
    assert cookie is not None
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/api/session").json["csrf_token"] == body["csrf_token"]


def test_the_cookie_is_re_sent_only_when_the_session_changed_or_is_old(people, client,
                                                                     monkeypatch):
    """Sliding expiry without re-signing the cookie on every response: a fresh cookie is left
    alone, one older than SESSION_REFRESH_AFTER comes back re-signed (a new expiry), and a
    tampered one is a new, signed-out session."""
    people.user("alice")
    first = set_cookie(sign_in(client, "alice", "alice-password"), "galsearch_session")
    read = client.get("/api/session")
    assert read.json["user"]["username"] == "alice" and "Set-Cookie" not in read.headers
    monkeypatch.setattr(identity, "SESSION_REFRESH_AFTER", timedelta(0))
    refreshed = client.get("/api/session")
    assert refreshed.json["user"]["username"] == "alice"
    cookie = set_cookie(refreshed, "galsearch_session")
    assert cookie is not None and "HttpOnly" in cookie
    assert "Expires=" in cookie and first is not None
    assert client.get("/api/session").json["user"]["username"] == "alice"
    value = cookie.split(";")[0].partition("=")[2]
    client.set_cookie("galsearch_session", value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
    assert client.get("/api/session").status_code == 401


def test_the_image_pass_is_renewed_at_half_life_and_deleted_on_sign_out(people, client, app):
    """The cookie with which nginx sends cached cutouts (server.auth.image_pass): set at sign-in,
    left alone while more than half its life is left, renewed after, never set on an image
    response (48 to a page), and deleted when signing out."""
    user_id = people.user("alice")
    key, lifetime = app.config["IMAGE_PASS_KEY"], app.config["IMAGE_PASS_LIFETIME_S"]
    signed_in = sign_in(client, "alice", "alice-password")
    issued = set_cookie(signed_in, IMAGE_PASS_COOKIE)
    assert issued is not None and "HttpOnly" in issued and "SameSite=Lax" in issued
    value = client.get_cookie(IMAGE_PASS_COOKIE).value
    assert abs(image_pass_expires(value, user_id, key) - (time.time() + lifetime)) < 5
    assert set_cookie(client.get("/api/session"), IMAGE_PASS_COOKIE) is None  # still fresh
    old = make_image_pass(user_id, int(time.time() + lifetime / 2 - 5), key)
    client.set_cookie(IMAGE_PASS_COOKIE, old)
    assert set_cookie(client.get("/api/objects/3/cutout.png"), IMAGE_PASS_COOKIE) is None
    renewed = client.get("/api/session")
    assert set_cookie(renewed, IMAGE_PASS_COOKIE) is not None
    assert image_pass_expires(client.get_cookie(IMAGE_PASS_COOKIE).value, user_id, key) \
        > time.time() + lifetime - 5
    client.set_cookie(IMAGE_PASS_COOKIE, make_image_pass(user_id + 1, int(time.time()) + 60,
                                                         key))  # someone else's: replaced
    replaced = client.get("/api/session")
    assert image_pass_expires(client.get_cookie(IMAGE_PASS_COOKIE).value, user_id, key)
    assert replaced.status_code == 200
    headers = {CSRF_HEADER: signed_in.json["csrf_token"]}
    assert client.delete("/api/session", headers=headers).status_code == 204
    assert client.get_cookie(IMAGE_PASS_COOKIE) is None


def test_token_callers_get_no_image_pass(people):
    token = people.bearer("alice")
    response = token.get("/api/session")
    assert response.status_code == 200 and set_cookie(response, IMAGE_PASS_COOKIE) is None


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
