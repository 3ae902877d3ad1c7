"""Hand-out of candidate pages in team campaigns: disjoint pages, overlap, time limit, reloads,
and no object handed to more labelers than asked under many concurrent requests."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from test_api_candidates import all_pages, as_its_schema_writes, expected_order

from server.database import utcnow
from server.extensions import db
from server.models import Handout, Role
from server.sources import sources
from server.teams.handout import holders

SEED = 6


@pytest.fixture
def bundle(app):
    return sources(app).bundle


def team(people, overlap: int = 1, labelers=("alice", "bob", "carol"), minutes: float = 30):
    """A hand-out campaign owned by olga (seed object 6) with the given labelers; returns the
    campaign id and a signed-in client per labeler."""
    cid = people.campaign("olga", {name: Role.LABELER for name in labelers}, settings={
        "handout": True, "overlap": overlap, "handout_minutes": minutes})
    olga = people.session("olga")
    assert olga.post(f"/api/campaigns/{cid}/seeds", json={"object_id": SEED}).status_code == 201
    return cid, {name: people.session(name) for name in labelers}


def ids_of(body) -> list[int]:
    return [item["object_id"] for item in body["items"]]


def test_labelers_get_disjoint_pages_in_ranking_order(people, bundle):
    cid, c = team(people)
    url = f"/api/campaigns/{cid}/candidates?limit=5"
    order = expected_order(bundle, [SEED])
    alice = c["alice"].get(url).json
    bob = c["bob"].get(url).json
    assert ids_of(alice) == order[:5] and ids_of(bob) == order[5:10]
    assert all(item["handed_out_until"] is not None for item in alice["items"])
    assert as_its_schema_writes(alice)
    # alice's next page goes on after what bob holds
    assert ids_of(c["alice"].get(f"{url}&cursor={alice['next_cursor']}").json) == order[10:15]


def test_a_reload_gives_the_outstanding_objects_back_first(people, bundle):
    cid, c = team(people)
    url = f"/api/campaigns/{cid}/candidates?limit=4"
    order = expected_order(bundle, [SEED])
    first = ids_of(c["alice"].get(url).json)
    assert ids_of(c["alice"].get(url).json) == first  # idempotent
    c["alice"].put(f"/api/campaigns/{cid}/labels/{first[0]}", json={"value": "accept"})
    c["alice"].put(f"/api/campaigns/{cid}/labels/{first[2]}", json={"value": "reject"})
    # the two unlabeled ones come back first, then two fresh ones
    assert ids_of(c["alice"].get(url).json) == [first[1], first[3], *order[4:6]]
    with people.app.app_context():
        assert db.session.scalar(select(Handout.id).where(Handout.object_id == order[4])) > \
            db.session.scalar(select(Handout.id).where(Handout.object_id == first[3]))


def test_overlap_hands_each_object_to_k_labelers(people, bundle):
    cid, c = team(people, overlap=2)
    url = f"/api/campaigns/{cid}/candidates?limit=5"
    order = expected_order(bundle, [SEED])
    assert ids_of(c["alice"].get(url).json) == order[:5]
    assert ids_of(c["bob"].get(url).json) == order[:5]
    assert ids_of(c["carol"].get(url).json) == order[5:10]
    # an object alice labeled still counts her once: carol does not get it
    c["alice"].put(f"/api/campaigns/{cid}/labels/{order[0]}", json={"value": "accept"})
    page = c["carol"].get(f"{url}&cursor=" + c["carol"].get(url).json["next_cursor"]).json
    assert ids_of(page) == order[10:15]


def test_an_object_not_labeled_in_time_returns_to_the_pool(people, bundle):
    cid, c = team(people)
    url = f"/api/campaigns/{cid}/candidates?limit=3"
    order = expected_order(bundle, [SEED])
    assert ids_of(c["alice"].get(url).json) == order[:3]
    c["alice"].put(f"/api/campaigns/{cid}/labels/{order[0]}", json={"value": "accept"})
    with people.app.app_context():  # alice's time runs out
        db.session.execute(update(Handout).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    # bob gets the two she did not label; the labeled one stays out
    assert ids_of(c["bob"].get(url).json) == [order[1], order[2], order[3]]
    with people.app.app_context():
        assert sorted(holders(cid)) == sorted(order[1:4])  # her rows were swept


def test_the_time_limit_is_the_campaign_setting(people):
    cid, c = team(people, minutes=7)
    before = utcnow()
    item = c["alice"].get(f"/api/campaigns/{cid}/candidates?limit=1").json["items"][0]
    with people.app.app_context():
        expires = db.session.scalar(select(Handout.expires_at))
    assert timedelta(minutes=7) <= expires - before <= timedelta(minutes=7, seconds=30)
    assert item["handed_out_until"].startswith(expires.strftime("%Y-%m-%dT%H:%M"))


def test_viewers_see_the_ranking_without_taking_objects(people, bundle):
    cid, c = team(people)
    people.user("vera")
    c["alice"].get(f"/api/campaigns/{cid}/candidates?limit=5")
    with people.app.app_context():
        from server.models import Membership
        db.session.add(Membership(campaign_id=cid, user_id=people.ids["vera"],
                                  role=Role.VIEWER))
        db.session.commit()
    vera = people.session("vera")
    body = vera.get(f"/api/campaigns/{cid}/candidates?limit=5").json
    assert ids_of(body) == expected_order(bundle, [SEED])[:5]
    assert all(item["handed_out_until"] is None for item in body["items"])
    with people.app.app_context():
        assert db.session.query(Handout).count() == 5  # alice's only


def test_pages_run_out_when_everything_is_taken(people, bundle):
    cid, c = team(people, labelers=("alice", "bob"))
    order = expected_order(bundle, [SEED])
    got = all_pages(c["alice"], f"/api/campaigns/{cid}/candidates", 20)
    assert sorted(got) == sorted(order)  # everything, once
    body = c["bob"].get(f"/api/campaigns/{cid}/candidates?limit=5").json
    assert body["items"] == [] and body["next_cursor"] is None


def test_a_cursor_of_the_other_mode_is_stale(people):
    cid, c = team(people)
    url = f"/api/campaigns/{cid}/candidates?limit=2"
    handout_cursor = c["alice"].get(url).json["next_cursor"]
    olga = people.session("olga")
    olga.patch(f"/api/campaigns/{cid}", json={"settings": {"handout": False}})
    similarity_cursor = c["alice"].get(url).json["next_cursor"]
    assert c["alice"].get(f"{url}&cursor={handout_cursor}").status_code == 409
    olga.patch(f"/api/campaigns/{cid}", json={"settings": {"handout": True}})
    assert c["alice"].get(f"{url}&cursor={similarity_cursor}").status_code == 409
    assert c["alice"].get(f"{url}&cursor=garbage").status_code == 422


@pytest.mark.parametrize("overlap", [1, 2])
def test_concurrent_requests_never_exceed_the_overlap(people, overlap):
    """Eight labelers, two threads each, ask for pages and label part of them all at once."""
    names = [f"user{i}" for i in range(8)]
    cid, c = team(people, overlap=overlap, labelers=names)
    start = threading.Barrier(16)
    errors: list[str] = []

    def work(name: str, thread: int) -> list[int]:
        client = people.session(name) if thread else c[name]
        start.wait()
        seen = []
        cursor = None
        for step in range(4):
            url = f"/api/campaigns/{cid}/candidates?limit=3" + (
                f"&cursor={cursor}" if cursor else "")
            response = client.get(url)
            if response.status_code != 200:
                errors.append(f"{name}: {response.status_code} {response.json}")
                return seen
            ids = ids_of(response.json)
            seen += ids
            cursor = response.json["next_cursor"]
            if ids and step % 2:
                client.put(f"/api/campaigns/{cid}/labels/{ids[0]}", json={"value": "accept"})
            if cursor is None:
                break
        return seen

    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(work, name, t) for name in names for t in range(2)]
        for future in futures:
            future.result()
    assert errors == []
    with people.app.app_context():
        rows = db.session.execute(select(Handout.object_id, Handout.user_id)).all()
        from server.models import Label
        labels = db.session.execute(select(Label.object_id, Label.user_id)).all()
    per_object = Counter(object_id for object_id, _ in set(rows) | set(labels))
    assert max(per_object.values()) <= overlap
    assert len(rows) == len(set(rows))  # nobody holds an object twice
    assert len(per_object) >= 8 * overlap  # real work was handed out
