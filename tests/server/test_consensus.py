"""Consensus labels (majority, tie rules, minimum votes, imported sources) and per-labeler
progress, against hand-computed cases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from server.database import utcnow
from server.extensions import db
from server.models import Label, LabelHistory, LabelValue, Role, SourceLabel
from server.probe.labels import training_labels
from server.teams.consensus import consensus_labels
from server.teams.rules import TeamRules

LABELERS = ("alice", "bob", "carol")


def add_votes(people, cid: int, votes: dict[int, dict[str, str]],
              sources: dict[int, dict[str, str]] | None = None) -> None:
    """Store labels ({object: {username: value}}) and source labels ({object: {source:
    value}}) directly."""
    now = utcnow()
    with people.app.app_context():
        for object_id, by_user in votes.items():
            for name, value in by_user.items():
                db.session.add(Label(campaign_id=cid, object_id=object_id,
                                     user_id=people.user(name), value=LabelValue(value),
                                     created_at=now, updated_at=now))
        for object_id, by_source in (sources or {}).items():
            for source, value in by_source.items():
                db.session.add(SourceLabel(campaign_id=cid, object_id=object_id, source=source,
                                           value=LabelValue(value)))
        db.session.commit()


VOTES = {
    1: {"alice": "accept", "bob": "accept", "carol": "reject"},  # majority: accept
    2: {"alice": "accept", "bob": "reject"},  # two-way tie
    3: {"alice": "accept", "bob": "reject", "carol": "unsure"},  # three-way tie
    4: {"alice": "reject"},  # one vote
    5: {"alice": "unsure", "bob": "unsure", "carol": "accept"},  # majority: unsure
    6: {"bob": "accept"},  # one vote, and a catalog that says reject
}
SOURCES = {6: {"catalog": "reject"}, 7: {"catalog": "accept"},
           8: {"catalog": "accept", "other": "reject"}}


def consensus_of(client, cid: int, query: str = "") -> dict[int, tuple]:
    body = client.get(f"/api/campaigns/{cid}/consensus?limit=1000{query}").json
    return {item["object_id"]: (item["consensus"], item["basis"]) for item in body["items"]}


@pytest.mark.parametrize(("rules", "expected"), [
    ({}, {1: ("accept", "labels"), 2: ("unsure", "labels"), 3: ("unsure", "labels"),
          4: ("reject", "labels"), 5: ("unsure", "labels"), 6: ("accept", "labels"),
          7: ("accept", "source"), 8: ("unsure", "source")}),
    ({"consensus_tie": "reject"},
     {1: ("accept", "labels"), 2: ("reject", "labels"), 3: ("reject", "labels"),
      4: ("reject", "labels"), 5: ("unsure", "labels"), 6: ("accept", "labels"),
      7: ("accept", "source"), 8: ("reject", "source")}),
    ({"consensus_tie": "none", "consensus_min_votes": 2},
     {1: ("accept", "labels"), 2: (None, "labels"), 3: (None, "labels"), 4: (None, None),
      5: ("unsure", "labels"), 6: ("reject", "source"), 7: ("accept", "source"),
      8: (None, "source")}),
])
def test_majority_tie_rule_minimum_votes_and_sources(people, rules, expected):
    cid = people.campaign("olga", {n: Role.LABELER for n in LABELERS}, settings=rules)
    add_votes(people, cid, VOTES, SOURCES)
    assert consensus_of(people.session("olga"), cid) == expected
    with people.app.app_context():
        ids, values = consensus_labels(cid, TeamRules.of(rules))
    decided = {k: v for k, (v, _) in expected.items() if v is not None}
    assert dict(zip(ids.tolist(), values.tolist(), strict=True)) == decided


def test_counts_filters_and_pages(people):
    cid = people.campaign("olga", {n: Role.VIEWER for n in LABELERS})
    add_votes(people, cid, VOTES, SOURCES)
    vera = people.session("alice")  # a viewer
    body = vera.get(f"/api/campaigns/{cid}/consensus?limit=1000").json
    first = body["items"][0]
    assert first == {"object_id": 1, "consensus": "accept", "basis": "labels", "n_accept": 2,
                     "n_reject": 1, "n_unsure": 0, "n_votes": 3, "n_source": 0}
    assert body["items"][5]["n_source"] == 1 and body["items"][7]["n_source"] == 2
    assert body["rules"] == {"min_votes": 1, "tie": "unsure"}
    assert set(consensus_of(vera, cid, "&value=accept")) == {1, 6, 7}
    assert set(consensus_of(vera, cid, "&value=reject&value=unsure")) == {2, 3, 4, 5, 8}
    assert set(consensus_of(vera, cid, "&basis=source")) == {7, 8}
    assert vera.get(f"/api/campaigns/{cid}/consensus?value=maybe").status_code == 422
    assert vera.get(f"/api/campaigns/{cid}/consensus?after={2**64}").status_code == 422
    ids, after = [], -1
    while after is not None:
        page = vera.get(f"/api/campaigns/{cid}/consensus?limit=3&after={after}").json
        ids += [item["object_id"] for item in page["items"]]
        after = page["next_after"]
    assert ids == list(range(1, 9))


def test_consensus_follows_label_changes(people):
    cid = people.campaign("olga", {n: Role.LABELER for n in LABELERS})
    clients = {n: people.session(n) for n in LABELERS}
    for name in LABELERS:
        clients[name].put(f"/api/campaigns/{cid}/labels/9", json={"value": "reject"})
    assert consensus_of(clients["alice"], cid) == {9: ("reject", "labels")}
    clients["alice"].put(f"/api/campaigns/{cid}/labels/9", json={"value": "accept"})
    clients["bob"].put(f"/api/campaigns/{cid}/labels/9", json={"value": "accept"})
    assert consensus_of(clients["alice"], cid) == {9: ("accept", "labels")}


def test_progress_counts_rate_and_last_activity(people):
    cid = people.campaign("olga", {"alice": Role.LABELER, "bob": Role.LABELER,
                                   "vera": Role.VIEWER})
    alice = people.session("alice")
    for object_id, value in [(1, "accept"), (2, "reject"), (3, "reject"), (4, "unsure")]:
        alice.put(f"/api/campaigns/{cid}/labels/{object_id}", json={"value": value})
    alice.put(f"/api/campaigns/{cid}/labels/4", json={"value": "accept"})  # a change counts
    alice.post(f"/api/campaigns/{cid}/labels/undo")  # an undo does not
    people.session("bob").put(f"/api/campaigns/{cid}/labels/1", json={"value": "accept"})
    with people.app.app_context():  # bob's label was two hours ago
        db.session.execute(update(LabelHistory)
                           .where(LabelHistory.user_id == people.ids["bob"])
                           .values(created_at=utcnow() - timedelta(hours=2)))
        db.session.commit()
    body = people.session("vera").get(f"/api/campaigns/{cid}/progress?window_minutes=30").json
    assert body["window_minutes"] == 30
    by_name = {p["user"]["username"]: p for p in body["labelers"]}
    assert list(by_name) == ["alice", "bob", "olga"]  # most labels first; vera is a viewer
    alice_p = by_name["alice"]
    assert alice_p["counts"] == {"accept": 1, "reject": 2, "unsure": 1}
    assert (alice_p["total"], alice_p["recent"], alice_p["per_hour"]) == (4, 5, 10.0)
    assert alice_p["role"] == "labeler" and alice_p["outstanding"] == 0
    assert by_name["bob"]["recent"] == 0 and by_name["bob"]["last_active"] is not None
    assert by_name["olga"]["total"] == 0 and by_name["olga"]["last_active"] is None
    assert body["consensus"] == {"accept": 1, "reject": 2, "unsure": 1, "none": 0}


def test_progress_shows_outstanding_hand_outs(people):
    cid = people.campaign("olga", {"alice": Role.LABELER},
                          settings={"handout": True, "overlap": 1})
    people.session("olga").post(f"/api/campaigns/{cid}/seeds", json={"object_id": 6})
    alice = people.session("alice")
    page = alice.get(f"/api/campaigns/{cid}/candidates?limit=4").json["items"]
    alice.put(f"/api/campaigns/{cid}/labels/{page[0]['object_id']}", json={"value": "accept"})
    body = alice.get(f"/api/campaigns/{cid}/progress").json
    assert {p["user"]["username"]: p["outstanding"] for p in body["labelers"]} == \
        {"alice": 3, "olga": 0}


def test_the_probe_trains_on_the_consensus(people):
    cid = people.campaign("olga", {n: Role.LABELER for n in LABELERS},
                          settings={"consensus_tie": "none"})
    add_votes(people, cid, VOTES, SOURCES)
    with people.app.app_context():
        labels = training_labels(cid)
    # 1: two accepts beat a reject; 6: bob's accept beats the catalog; 7: the catalog alone
    assert labels.positive.tolist() == [1, 6, 7]
    assert labels.negative.tolist() == [4]
    assert labels.disputed.tolist() == [2, 3, 5, 8]  # ties, an unsure majority
