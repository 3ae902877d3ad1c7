"""API tokens: created once, hashed at rest, bearer authentication without CSRF, revocation."""

from __future__ import annotations

from server.auth.tokens import token_digest
from server.extensions import db
from server.models import ApiToken


def test_create_list_and_use_a_token(people, app):
    alice = people.session("alice")
    created = alice.post("/api/tokens", json={"name": "notebook"})
    assert created.status_code == 201
    secret = created.json["token"]
    assert secret.startswith("gst_") and len(secret) > 40
    assert secret.startswith(created.json["prefix"])
    listed = alice.get("/api/tokens").json
    assert [t["name"] for t in listed] == ["notebook"]
    assert "token" not in listed[0]
    with app.app_context():
        stored = db.session.get(ApiToken, created.json["id"])
        assert stored.token_hash == token_digest(secret) and secret not in stored.token_hash

    script = app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    who = script.get("/api/session", headers=headers)
    assert who.status_code == 200
    assert who.json == {**who.json, "auth": "token", "csrf_token": None}
    # bearer writes need no CSRF token
    assert script.post("/api/campaigns", json={"name": "x"}, headers=headers).status_code == 201
    with app.app_context():
        assert db.session.get(ApiToken, created.json["id"]).last_used_at is not None


def test_revoked_token_is_refused(people, app):
    alice = people.session("alice")
    created = alice.post("/api/tokens", json={"name": "ci"}).json
    assert alice.delete(f"/api/tokens/{created['id']}").status_code == 204
    assert alice.delete(f"/api/tokens/{created['id']}").status_code == 204  # idempotent
    response = app.test_client().get("/api/session",
                                     headers={"Authorization": f"Bearer {created['token']}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert alice.get("/api/tokens").json[0]["revoked_at"] is not None


def test_tokens_of_a_deactivated_user_stop_working(people):
    admin = people.session("root", admin=True)
    alice = people.bearer("alice")
    assert alice.get("/api/session").status_code == 200
    admin.patch(f"/api/users/{people.ids['alice']}", json={"is_active": False})
    assert alice.get("/api/session").status_code == 401


def test_someone_elses_token_cannot_be_revoked(people):
    alice = people.session("alice")
    token_id = alice.post("/api/tokens", json={"name": "mine"}).json["id"]
    assert people.session("bob").delete(f"/api/tokens/{token_id}").status_code == 404


def test_malformed_authorization_headers(client):
    for header in ("Basic YWxpY2U6cHc=", "Bearer", "Bearer gst_unknown", "Bearer not-a-token"):
        response = client.get("/api/campaigns", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.json["detail"]


def test_a_bad_token_is_not_rescued_by_a_good_cookie(people):
    alice = people.session("alice")
    response = alice.get("/api/session", headers={"Authorization": "Bearer gst_forged"})
    assert response.status_code == 401


def test_token_name_is_validated(people):
    alice = people.session("alice")
    assert alice.post("/api/tokens", json={"name": ""}).status_code == 422
    assert alice.post("/api/tokens", json={"name": "x" * 101}).status_code == 422
    assert alice.post("/api/tokens", json={}).status_code == 422
