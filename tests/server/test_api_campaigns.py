"""Campaigns: create, list, read, change (settings merged and validated), delete."""

from __future__ import annotations

from server.extensions import db
from server.models import Label, LabelHistory, Membership, Role


def test_create_makes_the_creator_owner(people):
    alice = people.session("alice")
    response = alice.post("/api/campaigns", json={
        "name": "strong lenses", "description": "DR9 south", "target": "lens",
        "settings": {"mag_window": 0.5, "mag_r_max": 21.0}})
    assert response.status_code == 201
    body = response.json
    assert body["role"] == "owner" and body["created_by"] == "alice"
    assert body["settings"] == {"mag_window": 0.5, "mag_r_max": 21.0}
    assert body["created_at"].endswith("+00:00")
    members = alice.get(f"/api/campaigns/{body['id']}/members").json
    assert [(m["username"], m["role"]) for m in members] == [("alice", "owner")]


def test_defaults_and_validation(people):
    alice = people.session("alice")
    minimal = alice.post("/api/campaigns", json={"name": "rings"}).json
    assert (minimal["description"], minimal["target"], minimal["settings"]) == ("", "", {})
    cases = [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "x", "settings": {"mag_window": -1}}, "settings"),
        ({"name": "x", "settings": {"mag_r_min": 22, "mag_r_max": 20}}, "settings"),
        ({"name": "x", "settings": {"overlap": 0}}, "settings"),
        ({"name": "x", "settings": {"consensus_tie": "accept"}}, "settings"),
        ({"name": "x", "settings": {"handout_mins": 3}}, "settings"),
        ({"name": "x", "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        response = alice.post("/api/campaigns", json=body)
        assert response.status_code == 422, body
        assert field in response.json["errors"]["json"], (body, response.json)


def test_list_shows_my_campaigns_with_my_role(people):
    alice = people.session("alice")
    mine = people.campaign("alice", name="mine")
    theirs = people.campaign("bob", {"alice": Role.VIEWER}, name="bob's")
    people.campaign("bob", name="private")
    listed = alice.get("/api/campaigns").json
    assert [(c["id"], c["role"]) for c in listed] == [(theirs, "viewer"), (mine, "owner")]


def test_admins_may_list_every_campaign(people):
    people.campaign("bob", name="private")
    admin = people.session("root", admin=True)
    assert admin.get("/api/campaigns").json == []
    everything = admin.get("/api/campaigns?scope=all").json
    assert [(c["name"], c["role"]) for c in everything] == [("private", "owner")]
    assert people.session("alice").get("/api/campaigns?scope=all").status_code == 403
    assert admin.get("/api/campaigns?scope=some").status_code == 422


def test_update_merges_settings(people):
    alice = people.session("alice")
    cid = people.campaign("alice", settings={"mag_window": 0.5, "source_types": ["DEV"]})
    response = alice.patch(f"/api/campaigns/{cid}", json={
        "name": "renamed", "settings": {"mag_r_max": 20.5, "source_types": None}})
    assert response.status_code == 200
    assert response.json["name"] == "renamed"
    assert response.json["target"] == "lens"  # left out: kept
    assert response.json["settings"] == {"mag_window": 0.5, "mag_r_max": 20.5}
    # the merged settings are checked as a whole
    clash = alice.patch(f"/api/campaigns/{cid}", json={"settings": {"mag_r_min": 21.0}})
    assert clash.status_code == 422
    assert "mag_r_min" in clash.json["errors"]["json"]["settings"]
    assert alice.get(f"/api/campaigns/{cid}").json["settings"]["mag_r_max"] == 20.5


def test_delete_removes_everything_of_the_campaign(people, app):
    alice = people.session("alice")
    cid = people.campaign("alice", {"bob": Role.LABELER})
    keep = people.campaign("alice", name="other")
    assert alice.put(f"/api/campaigns/{cid}/labels/3", json={"value": "accept"}).status_code == 200
    assert alice.put(f"/api/campaigns/{keep}/labels/3", json={"value": "reject"}).status_code == 200
    assert alice.delete(f"/api/campaigns/{cid}").status_code == 204
    assert alice.get(f"/api/campaigns/{cid}").status_code == 404
    with app.app_context():
        assert db.session.query(Membership).filter_by(campaign_id=cid).count() == 0
        assert db.session.query(Label).filter_by(campaign_id=cid).count() == 0
        assert db.session.query(LabelHistory).filter_by(campaign_id=cid).count() == 0
        assert db.session.query(Label).filter_by(campaign_id=keep).count() == 1


def test_unknown_campaign_is_404(people):
    alice = people.session("alice")
    response = alice.get("/api/campaigns/4242")
    assert response.status_code == 404
    assert "4242" in response.json["detail"]
