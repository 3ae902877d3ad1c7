"""Campaign members: add, change role, remove, leave, and the last owner rule."""

from __future__ import annotations

from server.models import Role


def test_owner_adds_changes_and_removes_members(people):
    alice = people.session("alice")
    bob_id = people.user("bob")
    cid = people.campaign("alice")
    added = alice.post(f"/api/campaigns/{cid}/members", json={"username": "Bob", "role": "viewer"})
    assert added.status_code == 201
    assert added.json == {**added.json, "user_id": bob_id, "username": "bob", "role": "viewer"}
    bob = people.session("bob")
    assert bob.get(f"/api/campaigns/{cid}").json["role"] == "viewer"
    changed = alice.patch(f"/api/campaigns/{cid}/members/{bob_id}", json={"role": "labeler"})
    assert changed.status_code == 200 and changed.json["role"] == "labeler"
    assert bob.put(f"/api/campaigns/{cid}/labels/1", json={"value": "unsure"}).status_code == 200
    assert alice.delete(f"/api/campaigns/{cid}/members/{bob_id}").status_code == 204
    assert bob.get(f"/api/campaigns/{cid}").status_code == 404
    # their labels stay in the campaign
    everyone = alice.get(f"/api/campaigns/{cid}/labels?user=all").json["items"]
    assert [(x["user_id"], x["value"]) for x in everyone] == [(bob_id, "unsure")]


def test_adding_rejects_unknown_inactive_and_existing_users(people):
    alice = people.session("alice")
    admin = people.session("root", admin=True)
    cid = people.campaign("alice", {"bob": Role.VIEWER})
    carol_id = people.user("carol")
    admin.patch(f"/api/users/{carol_id}", json={"is_active": False})
    for username in ("nobody", "carol"):
        response = alice.post(f"/api/campaigns/{cid}/members",
                              json={"username": username, "role": "viewer"})
        assert response.status_code == 422
        assert "username" in response.json["errors"]["json"]
    again = alice.post(f"/api/campaigns/{cid}/members", json={"username": "bob", "role": "owner"})
    assert again.status_code == 409
    bad_role = alice.post(f"/api/campaigns/{cid}/members", json={"username": "bob", "role": "boss"})
    assert bad_role.status_code == 422


def test_the_last_owner_cannot_leave_or_be_demoted(people):
    alice = people.session("alice")
    cid = people.campaign("alice", {"bob": Role.LABELER})
    alice_id, bob_id = people.ids["alice"], people.ids["bob"]
    assert alice.patch(f"/api/campaigns/{cid}/members/{alice_id}",
                       json={"role": "viewer"}).status_code == 409
    assert alice.delete(f"/api/campaigns/{cid}/members/{alice_id}").status_code == 409
    assert alice.patch(f"/api/campaigns/{cid}/members/{bob_id}",
                       json={"role": "owner"}).status_code == 200
    assert alice.delete(f"/api/campaigns/{cid}/members/{alice_id}").status_code == 204
    assert alice.get(f"/api/campaigns/{cid}").status_code == 404


def test_members_may_leave_by_themselves(people):
    cid = people.campaign("alice", {"bob": Role.VIEWER, "carol": Role.VIEWER})
    bob = people.session("bob")
    assert bob.delete(f"/api/campaigns/{cid}/members/{people.ids['carol']}").status_code == 403
    assert bob.delete(f"/api/campaigns/{cid}/members/{people.ids['bob']}").status_code == 204
    assert bob.get(f"/api/campaigns/{cid}").status_code == 404


def test_changing_or_removing_a_non_member_is_404(people):
    alice = people.session("alice")
    cid = people.campaign("alice")
    dave_id = people.user("dave")
    assert alice.patch(f"/api/campaigns/{cid}/members/{dave_id}",
                       json={"role": "viewer"}).status_code == 404
    assert alice.delete(f"/api/campaigns/{cid}/members/{dave_id}").status_code == 404
