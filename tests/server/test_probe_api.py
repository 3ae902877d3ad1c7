"""The campaign probe through the API: retraining marks, probe-ordered candidate pages, status,
versions, strategies, and a run that cannot train."""

from __future__ import annotations

import numpy as np
import pytest
from probe_testing import labeled_campaign, probe_jobs, run_probe_jobs
from test_api_candidates import all_pages, as_its_schema_writes

from ml.probe import ProbeOrder
from server.database import utcnow
from server.extensions import db
from server.models import JobStatus, ProbeRun
from server.probe.labels import training_labels
from server.sources import sources


@pytest.fixture
def bundle(app):
    return sources(app).bundle


@pytest.fixture
def trained(people, app):
    """A campaign with a seed, three accepts and three rejects, and its first probe."""
    alice, cid = labeled_campaign(people)
    assert alice.post(f"/api/campaigns/{cid}/probe/retrain").status_code == 202
    assert run_probe_jobs(app) == 1
    return alice, cid


def test_label_changes_queue_one_debounced_run(people, app):
    alice, cid = labeled_campaign(people, accepts=(), rejects=())
    url = f"/api/campaigns/{cid}/labels"
    before = utcnow()
    for object_id in (1, 2, 3):
        assert alice.put(f"{url}/{object_id}", json={"value": "reject"}).status_code == 200
    alice.put(f"{url}/3", json={"value": "reject"})  # no change: not a request
    [job] = probe_jobs(app, cid)
    assert (job.kind, job.status, job.requests) == ("probe", JobStatus.QUEUED, 3)
    debounce = app.config["PROBE_DEBOUNCE_S"]
    assert (job.run_after - before).total_seconds() >= debounce  # not yet due
    # enough changes make it due at once, still one job
    labels = [{"object_id": i, "value": "accept"} for i in range(30, 30 + 8)]
    alice.post(f"{url}/bulk", json={"labels": labels})
    alice.post(f"{url}/undo")
    [job] = probe_jobs(app, cid)
    assert job.requests == 3 + 8 + 8 and job.run_after <= utcnow()


def test_a_run_that_cannot_train_fails_with_a_message_the_api_shows(people, app):
    alice, cid = labeled_campaign(people, accepts=(10, 11), rejects=())
    alice.post(f"/api/campaigns/{cid}/probe/retrain")
    run_probe_jobs(app)
    body = alice.get(f"/api/campaigns/{cid}/probe").json
    assert body["current"] is None and body["job"]["status"] == "failed"
    assert "cannot train a probe yet" in body["job"]["error"]
    assert "a rejected object" in body["job"]["error"]
    assert body["job"]["attempts"] == 1  # not retried: another attempt would not help
    assert alice.get(f"/api/campaigns/{cid}/candidates").json["order"] == "similarity"


def test_the_probe_orders_candidates_and_says_which_version(trained, bundle, app):
    alice, cid = trained
    status = alice.get(f"/api/campaigns/{cid}/probe").json
    current = status["current"]
    assert current["version"] == 1 and status["job"]["status"] == "succeeded"
    assert status["job"]["result"]["version"] == 1 and status["label_changes_since"] == 0
    assert (current["n_positive"], current["n_negative"]) == (4, 3)  # the seed counts
    assert current["n_unlabeled"] == bundle.n - 7  # every other object, fewer than asked
    assert current["metrics"]["cv"] is None and current["dim"] == bundle.dim
    page = alice.get(f"/api/campaigns/{cid}/candidates?limit=10").json
    assert (page["order"], page["probe_version"], page["strategy"]) == ("probe", 1, "top")
    assert as_its_schema_writes(page)
    scores = [c["score"] for c in page["items"]]
    assert all(0 < s < 1 for s in scores) and scores == sorted(scores, reverse=True)
    # every page together: the probe's order of every object neither labeled nor a seed
    with app.app_context():
        run = db.session.query(ProbeRun).one()
        order = ProbeOrder(bundle, run.weights, run.intercept, "top")
        expected, _, _ = order.first(bundle.n, [5, 10, 11, 12, 20, 21, 22])
    assert all_pages(alice, f"/api/campaigns/{cid}/candidates", 7) == expected.tolist()
    first = page["items"][0]
    vector = np.asarray(bundle.vectors[first["object_id"]], dtype=np.float64)
    assert first["score"] == pytest.approx(1 / (1 + np.exp(-(vector @ run.weights
                                                              + run.intercept))), rel=1e-5)


def test_a_newer_probe_makes_old_cursors_stale(trained, app):
    alice, cid = trained
    url = f"/api/campaigns/{cid}/candidates"
    cursor = alice.get(f"{url}?limit=5").json["next_cursor"]
    assert alice.get(f"{url}?limit=5&cursor={cursor}").status_code == 200
    alice.put(f"/api/campaigns/{cid}/labels/30", json={"value": "reject"})
    alice.post(f"/api/campaigns/{cid}/probe/retrain")
    run_probe_jobs(app)
    stale = alice.get(f"{url}?limit=5&cursor={cursor}")
    assert stale.status_code == 409 and "probe" in stale.json["detail"]
    fresh = alice.get(f"{url}?limit=5").json
    assert fresh["probe_version"] == 2 and 30 not in [c["object_id"] for c in fresh["items"]]



def test_a_page_reads_labeled_objects_and_the_newest_probe_in_one_query(trained, bundle, app):
    from server.api.candidates import page_inputs

    alice, cid = trained
    with app.app_context():
        first = db.session.query(ProbeRun).filter_by(campaign_id=cid).one()
        inputs = page_inputs(cid, bundle)
        assert inputs.labeled.tolist() == [10, 11, 12, 20, 21, 22]
        assert inputs.probe_id == first.id and inputs.seeds
        db.session.remove()
    alice.put(f"/api/campaigns/{cid}/labels/30", json={"value": "reject"})
    alice.post(f"/api/campaigns/{cid}/probe/retrain")
    run_probe_jobs(app)
    with app.app_context():
        second = db.session.query(ProbeRun).filter_by(campaign_id=cid, version=2).one()
        inputs = page_inputs(cid, bundle)
        assert 30 in inputs.labeled.tolist() and inputs.probe_id == second.id != first.id
        assert page_inputs(cid, bundle, with_labeled=False).probe_id == second.id  # hand-out
        db.session.query(ProbeRun).update({"bundle_sha256": "0" * 64})  # another bundle's
        db.session.commit()
        assert page_inputs(cid, bundle).probe_id is None


def test_strategy_from_settings_or_query(trained):
    alice, cid = trained
    url = f"/api/campaigns/{cid}/candidates?limit=40"
    assert alice.patch(f"/api/campaigns/{cid}", json={
        "settings": {"probe_strategy": "uncertainty"}}).status_code == 200
    page = alice.get(url).json
    assert page["strategy"] == "uncertainty"
    distance = [abs(c["score"] - 0.5) for c in page["items"]]
    assert distance == sorted(distance)
    mixed = alice.get(f"{url}&strategy=mix").json
    assert mixed["strategy"] == "mix"
    top = alice.get(f"{url}&strategy=top").json["items"]
    assert mixed["items"][0]["object_id"] == top[0]["object_id"]
    assert mixed["items"][1]["object_id"] == page["items"][0]["object_id"] or \
        page["items"][0]["object_id"] == top[0]["object_id"]
    assert alice.get(f"{url}&strategy=best").status_code == 422
    assert alice.patch(f"/api/campaigns/{cid}", json={
        "settings": {"probe_strategy": "best"}}).status_code == 422
    assert alice.get(f"/api/campaigns/{cid}/probe").json["strategy"] == "uncertainty"


def test_versions_history_and_detail(trained, app, bundle):
    alice, cid = trained
    alice.post(f"/api/campaigns/{cid}/probe/retrain")
    run_probe_jobs(app)
    runs = alice.get(f"/api/campaigns/{cid}/probe/runs?limit=1").json
    assert [r["version"] for r in runs["items"]] == [2] and runs["next_before"] == 2
    older = alice.get(f"/api/campaigns/{cid}/probe/runs?before=2").json
    assert [r["version"] for r in older["items"]] == [1] and older["next_before"] is None
    detail = alice.get(f"/api/campaigns/{cid}/probe/runs/1").json
    assert len(detail["coef"]) == bundle.dim and "fit" in detail["timings"]
    assert alice.get(f"/api/campaigns/{cid}/probe/runs/9").status_code == 404


def test_jobs_endpoints_and_cancel(trained, people, app):
    alice, cid = trained
    [done] = alice.get(f"/api/campaigns/{cid}/jobs?kind=probe").json["items"]
    assert done["status"] == "succeeded" and done["created_by"] == "alice"
    job = alice.post(f"/api/campaigns/{cid}/probe/retrain").json
    assert job["status"] == "queued" and job["kind"] == "probe"
    assert alice.get(f"/api/campaigns/{cid}/jobs/{job['id']}").json["id"] == job["id"]
    cancelled = alice.post(f"/api/campaigns/{cid}/jobs/{job['id']}/cancel").json
    assert cancelled["status"] == "cancelled"
    assert alice.get(f"/api/campaigns/{cid}/jobs/{job['id'] + 99}").status_code == 404
    assert run_probe_jobs(app) == 0


def test_a_probe_of_another_bundle_is_not_used(trained, app):
    alice, cid = trained
    with app.app_context():
        db.session.query(ProbeRun).update({"bundle_sha256": "0" * 64})
        db.session.commit()
    assert alice.get(f"/api/campaigns/{cid}/candidates").json["order"] == "similarity"
    assert alice.get(f"/api/campaigns/{cid}/probe").json["current"] is None


def test_training_labels_leave_disputes_and_unsure_out(people, app):
    alice, cid = labeled_campaign(people, accepts=(10, 11), rejects=(20,))
    people.user("bob")
    alice.post(f"/api/campaigns/{cid}/members", json={"username": "bob", "role": "labeler"})
    bob = people.session("bob")
    bob.post(f"/api/campaigns/{cid}/labels/bulk", json={"labels": [
        {"object_id": 10, "value": "reject"}, {"object_id": 11, "value": "accept"},
        {"object_id": 25, "value": "unsure"}, {"object_id": 26, "value": "reject"}]})
    with app.app_context():
        labels = training_labels(cid)
    assert labels.positive.tolist() == [11]
    assert labels.negative.tolist() == [20, 26]
    # consensus: 10 ties (unsure by the default tie rule), 25's majority is unsure: neither is
    # a class, and neither may be drawn as a weak negative
    assert labels.disputed.tolist() == [10, 25]
    assert labels.watermark > 0
