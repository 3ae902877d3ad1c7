"""Candidate pages: exact similarity order, filters, windows, and stable cursor pages."""

from __future__ import annotations

import numpy as np
import pytest

from server.extensions import db
from server.models import CampaignSeed, SeedKind
from server.schemas.candidates import CandidatePageOut
from server.sources import sources


@pytest.fixture
def bundle(app):
    return sources(app).bundle


@pytest.fixture
def campaign(people):
    """alice owns a campaign; returns (alice, campaign id)."""
    return people.session("alice"), people.campaign("alice")


def expected_order(bundle, seeds: list[int], window: float | None = None,
                   exclude: set[int] = frozenset(), allowed=None) -> list[int]:
    """The ranking by brute force: best cosine over the seeds (whose window holds the object)."""
    vectors = np.asarray(bundle.vectors, dtype=np.float64)
    mag = np.asarray(bundle.mag_r, dtype=np.float64)
    best = np.full(bundle.n, -np.inf)
    for s in seeds:
        cosine = vectors @ vectors[s] / np.linalg.norm(vectors[s])
        if window is not None:
            cosine = np.where((mag > mag[s] - window) & (mag < mag[s] + window), cosine, -np.inf)
        best = np.maximum(best, cosine)
    keep = [i for i in range(bundle.n) if i not in exclude and i not in seeds
            and np.isfinite(best[i]) and (allowed is None or allowed[i])]
    return sorted(keep, key=lambda i: (-best[i], i))


def as_its_schema_writes(body: dict) -> bool:
    """The page is what ``CandidatePageOut`` writes (the view sends it without the schema):
    every field of its type, and dumping what the schema reads gives the same JSON back."""
    schema = CandidatePageOut()
    return schema.dump(schema.load(body)) == body


def all_pages(client, url: str, limit: int) -> list[int]:
    ids, cursor = [], None
    while True:
        query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(url + query).json
        ids += [c["object_id"] for c in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


def test_first_page_is_the_exact_similarity_order(campaign, bundle, survey_path):
    alice, cid = campaign
    alice.post(f"/api/campaigns/{cid}/seeds", json={"object_id": 6})
    body = alice.get(f"/api/campaigns/{cid}/candidates?limit=10").json
    assert body["order"] == "similarity" and body["skipped_seeds"] == []
    assert [c["object_id"] for c in body["items"]] == expected_order(bundle, [6])[:10]
    assert as_its_schema_writes(body) and body["next_cursor"]
    first = body["items"][0]
    vectors = np.asarray(bundle.vectors, dtype=np.float64)
    assert first["score"] == pytest.approx(vectors[first["object_id"]] @ vectors[6], abs=1e-3)
    assert first["mag_r"] == pytest.approx(float(bundle.mag_r[first["object_id"]]))
    assert -5 <= first["dec"] <= 5 and 0 <= first["ra"] <= 10


def test_pages_cover_the_ranking_once(campaign, bundle):
    alice, cid = campaign
    alice.post(f"/api/campaigns/{cid}/seeds", json={"object_id": 6})
    assert all_pages(alice, f"/api/campaigns/{cid}/candidates", 7) == expected_order(bundle, [6])


def test_pages_neither_repeat_nor_skip_while_others_label(campaign, bundle, people):
    alice, cid = campaign
    url = f"/api/campaigns/{cid}/candidates"
    alice.post(f"/api/campaigns/{cid}/seeds", json={"object_id": 6})
    people.user("bob")
    alice.post(f"/api/campaigns/{cid}/members", json={"username": "bob", "role": "labeler"})
    bob = people.session("bob")
    order = expected_order(bundle, [6])
    first = alice.get(f"{url}?limit=8").json
    assert [c["object_id"] for c in first["items"]] == order[:8]
    # meanwhile bob labels objects of page 1 and of what would be pages 2 and 3
    labeled = {order[1], order[3], order[9], order[12], order[20]}
    assert bob.post(f"/api/campaigns/{cid}/labels/bulk", json={"labels": [
        {"object_id": i, "value": "reject"} for i in labeled]}).status_code == 200
    second = alice.get(f"{url}?limit=8&cursor={first['next_cursor']}").json
    rest = [i for i in order[8:] if i not in labeled]
    assert [c["object_id"] for c in second["items"]] == rest[:8]
    # and from scratch, labeled objects are gone
    fresh = alice.get(f"{url}?limit=8").json
    assert [c["object_id"] for c in fresh["items"]] == [i for i in order if i not in labeled][:8]


@pytest.mark.parametrize("prefix_sizes", [(64, 1024), (4, 1024), (4, 16)])
def test_a_ranking_is_searched_once_per_process(campaign, bundle, people, monkeypatch,
                                                prefix_sizes):
    """Pages are the ranking's cached prefix less the labeled objects: the same pages as a
    search that leaves them out, with prefixes that grow when labels fill them (4) and pages
    deeper than the largest prefix searched without the cache (16)."""
    import server.candidates as candidates

    monkeypatch.setattr(candidates, "PREFIX_MIN_SIZE", prefix_sizes[0])
    monkeypatch.setattr(candidates, "PREFIX_MAX_SIZE", prefix_sizes[1])
    candidates.PREFIXES.clear()
    searches = []
    search = type(bundle).search_vector
    monkeypatch.setattr(type(bundle), "search_vector",
                        lambda self, *a, **kw: searches.append(a[1]) or search(self, *a, **kw))
    alice, cid = campaign
    url = f"/api/campaigns/{cid}/candidates"
    alice.post(f"/api/campaigns/{cid}/seeds", json={"object_id": 6})
    order = expected_order(bundle, [6])
    first = alice.get(f"{url}?limit=3").json
    assert [c["object_id"] for c in first["items"]] == order[:3]
    again = len(searches)
    assert alice.get(f"{url}?limit=3").json == first
    assert len(searches) == again  # the prefix, not the index
    labeled = set(order[:6])  # fills a prefix of 4 and more
    assert alice.post(f"/api/campaigns/{cid}/labels/bulk", json={"labels": [
        {"object_id": i, "value": "reject"} for i in labeled]}).status_code == 200
    rest = [i for i in order if i not in labeled]
    assert [c["object_id"] for c in alice.get(f"{url}?limit=3").json["items"]] == rest[:3]
    assert all_pages(alice, url, 5) == rest
    if prefix_sizes[0] == 64:
        assert len(searches) == 1 and searches[0] == min(64, bundle.n)


def test_several_seeds_combine_by_best_similarity(campaign, bundle):
    alice, cid = campaign
    for object_id in (6, 30):
        alice.post(f"/api/campaigns/{cid}/seeds", json={"object_id": object_id})
    ids = all_pages(alice, f"/api/campaigns/{cid}/candidates", 20)
    assert ids == expected_order(bundle, [6, 30])


def test_magnitude_window_per_seed(campaign, bundle):
    alice, cid = campaign
    for object_id in (6, 30):
        alice.post(f"/api/campaigns/{cid}/seeds", json={"object_id": object_id})
    url = f"/api/campaigns/{cid}/candidates"
    body = alice.get(f"{url}?limit=200&mag_window=0.5").json
    ids = [c["object_id"] for c in body["items"]]
    assert ids == expected_order(bundle, [6, 30], window=0.5)
    assert len(ids) < bundle.n - 2  # the window left some out
    # the campaign's own setting applies when the query does not say
    alice.patch(f"/api/campaigns/{cid}", json={"settings": {"mag_window": 0.5}})
    assert [c["object_id"] for c in alice.get(f"{url}?limit=200").json["items"]] == ids


def test_magnitude_range_filter(campaign, bundle):
    alice, cid = campaign
    alice.post(f"/api/campaigns/{cid}/seeds", json={"object_id": 6})
    mag = np.asarray(bundle.mag_r, dtype=np.float64)
    low, high = np.nanpercentile(mag, [25, 75])
    url = f"/api/campaigns/{cid}/candidates?limit=200&mag_r_min={low}&mag_r_max={high}"
    ids = [c["object_id"] for c in alice.get(url).json["items"]]
    assert ids == expected_order(bundle, [6], allowed=(mag >= low) & (mag <= high))
    assert alice.get(f"/api/campaigns/{cid}/candidates?source_type=DEV").status_code == 422


def test_cursor_of_another_ranking_or_no_cursor_at_all(campaign):
    alice, cid = campaign
    url = f"/api/campaigns/{cid}/candidates"
    alice.post(f"/api/campaigns/{cid}/seeds", json={"object_id": 6})
    cursor = alice.get(f"{url}?limit=5").json["next_cursor"]
    assert alice.get(f"{url}?limit=5&cursor={cursor}").status_code == 200
    assert alice.get(f"{url}?limit=5&cursor=not-a-cursor").status_code == 422
    alice.post(f"/api/campaigns/{cid}/seeds", json={"object_id": 7})
    stale = alice.get(f"{url}?limit=5&cursor={cursor}")
    assert stale.status_code == 409 and "start again" in stale.json["detail"]
    assert alice.get(f"{url}?limit=5&mag_window=1&cursor={cursor}").status_code == 409


def test_without_usable_seeds(campaign, app):
    alice, cid = campaign
    url = f"/api/campaigns/{cid}/candidates"
    response = alice.get(url)
    assert response.status_code == 409 and "no usable seeds" in response.json["detail"]
    with app.app_context():
        db.session.add(CampaignSeed(campaign_id=cid, kind=SeedKind.VECTOR,
                                    vector=np.ones(4, "<f4").tobytes(),
                                    vector_model_sha256="another model"))
        db.session.commit()
    assert "made for another bundle" in alice.get(url).json["detail"]


def test_page_inputs_in_one_query(app, campaign, people):
    """A page's one query: the seeds oldest first, the newest probe, and the exclusion list as
    one joined value from either database, each labeled object once; nothing without seeds."""
    from server.api.candidates import page_inputs
    from server.sources import sources

    def inputs(campaign_id: int, with_labeled: bool = True):
        return page_inputs(campaign_id, sources(app).bundle, with_labeled)

    alice, cid = campaign
    bob = people.session("bob")
    alice.post(f"/api/campaigns/{cid}/members", json={"username": "bob", "role": "labeler"})
    other = people.campaign("alice", name="other")
    for campaign_id, seeds in ((cid, [9, 4]), (other, [2])):
        for object_id in seeds:
            assert alice.post(f"/api/campaigns/{campaign_id}/seeds",
                              json={"object_id": object_id}).status_code == 201
    with app.app_context():
        empty = inputs(cid)
        assert [s.object_id for s in empty.seeds] == [9, 4] and empty.probe_id is None
        assert empty.labeled.dtype == np.int64 and empty.labeled.size == 0
        seedless = inputs(people.campaign("alice", name="seedless"))
        assert seedless.seeds == [] and seedless.labeled.size == 0
    for client, ids in ((alice, [3, 17, 40]), (bob, [17, 0, 41])):
        assert client.post(f"/api/campaigns/{cid}/labels/bulk", json={"labels": [
            {"object_id": i, "value": "accept"} for i in ids]}).status_code == 200
    assert alice.put(f"/api/campaigns/{other}/labels/5", json={"value": "accept"}).status_code \
        in (200, 201)
    with app.app_context():
        got = inputs(cid)
        assert got.labeled.dtype == np.int64 and got.labeled.tolist() == [0, 3, 17, 40, 41]
        assert [s.object_id for s in got.seeds] == [9, 4]  # a row per seed, the labels once
        assert inputs(other).labeled.tolist() == [5]
        assert inputs(cid, with_labeled=False).labeled is None
