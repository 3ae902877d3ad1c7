"""User management by administrators."""

from __future__ import annotations

from server.models import Role


def test_admin_creates_lists_and_reads_users(people):
    admin = people.session("root", admin=True)
    created = admin.post("/api/users", json={"username": "Carol", "password": "carol-password"})
    assert created.status_code == 201
    assert created.json["username"] == "carol"
    assert created.json["is_admin"] is False and created.json["is_active"] is True
    assert "password" not in created.json and "password_hash" not in created.json
    assert [u["username"] for u in admin.get("/api/users").json] == ["carol", "root"]
    assert admin.get(f"/api/users/{created.json['id']}").json["username"] == "carol"
    assert admin.get("/api/users/9999").status_code == 404


def test_create_user_rejects_bad_input(people):
    admin = people.session("root", admin=True)
    people.user("alice")
    duplicate = admin.post("/api/users", json={"username": "ALICE", "password": "long-enough"})
    assert duplicate.status_code == 409
    bad_name = admin.post("/api/users", json={"username": "al ice", "password": "long-enough"})
    assert bad_name.status_code == 422 and "username" in bad_name.json["errors"]["json"]
    short = admin.post("/api/users", json={"username": "dave", "password": "short"})
    assert short.status_code == 422 and "password" in short.json["errors"]["json"]
    unknown = admin.post("/api/users", json={"username": "dave", "password": "long-enough",
                                             "role": "god"})
    assert unknown.status_code == 422 and "role" in unknown.json["errors"]["json"]


def test_deactivate_reactivate_and_promote(people):
    admin = people.session("root", admin=True)
    alice = people.session("alice")
    alice_id = people.ids["alice"]
    response = admin.patch(f"/api/users/{alice_id}", json={"is_active": False})
    assert response.status_code == 200 and response.json["is_active"] is False
    assert alice.get("/api/session").status_code == 401
    assert admin.patch(f"/api/users/{alice_id}", json={"is_active": True}).status_code == 200
    alice = people.session("alice")
    assert alice.get("/api/users").status_code == 403
    assert admin.patch(f"/api/users/{alice_id}", json={"is_admin": True}).json["is_admin"]
    assert alice.get("/api/users").status_code == 200


def test_campaign_urls_check_the_user_and_the_membership_at_each_request(people):
    """Campaign URLs read the user and their membership in one query: a deactivated user, a
    password reset (new session version) and a removed member are refused at once there too."""
    admin = people.session("root", admin=True)
    alice = people.session("alice")
    alice_id = people.ids["alice"]
    bob = people.session("bob")
    bob_id = people.ids["bob"]
    cid = people.campaign("root", {"alice": Role.LABELER, "bob": Role.LABELER})
    labels = f"/api/campaigns/{cid}/labels"
    assert alice.put(f"{labels}/1", json={"value": "accept"}).status_code == 200
    assert admin.patch(f"/api/users/{alice_id}", json={"is_active": False}).status_code == 200
    assert alice.put(f"{labels}/2", json={"value": "accept"}).status_code == 401
    assert admin.patch(f"/api/users/{alice_id}", json={"is_active": True}).status_code == 200
    alice = people.session("alice")
    assert admin.patch(f"/api/users/{alice_id}",
                       json={"password": "a-new-long-password"}).status_code == 200
    assert alice.get(labels).status_code == 401
    assert bob.put(f"{labels}/2", json={"value": "reject"}).status_code == 200
    assert admin.delete(f"/api/campaigns/{cid}/members/{bob_id}").status_code in (200, 204)
    assert bob.put(f"{labels}/3", json={"value": "accept"}).status_code == 404
    assert bob.get(f"/api/campaigns/{cid + 1000}/labels").status_code == 404


def test_the_last_active_admin_is_kept(people):
    admin = people.session("root", admin=True)
    root_id = people.ids["root"]
    for change in ({"is_admin": False}, {"is_active": False}):
        response = admin.patch(f"/api/users/{root_id}", json=change)
        assert response.status_code == 409
        assert "last active administrator" in response.json["detail"]
    people.user("second", admin=True)
    assert admin.patch(f"/api/users/{root_id}", json={"is_admin": False}).status_code == 200


def test_user_update_validates(people):
    admin = people.session("root", admin=True)
    alice_id = people.user("alice")
    assert admin.patch(f"/api/users/{alice_id}", json={"password": "x"}).status_code == 422
    assert admin.patch(f"/api/users/{alice_id}", json={"is_admin": "maybe"}).status_code == 422
    assert admin.patch("/api/users/424242", json={"is_admin": True}).status_code == 404
