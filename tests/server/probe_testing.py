"""Helpers of the probe tests: a campaign with a seed and labels, and running its probe jobs."""

from __future__ import annotations

from sqlalchemy import select

from server.extensions import db
from server.jobs.worker import Worker
from server.models import Job


def labeled_campaign(people, accepts=(10, 11, 12), rejects=(20, 21, 22), seed: int = 5):
    """alice's campaign with an object seed and her labels; returns (alice, campaign id)."""
    alice = people.session("alice")
    cid = people.campaign("alice")
    assert alice.post(f"/api/campaigns/{cid}/seeds", json={"object_id": seed}).status_code == 201
    labels = [{"object_id": i, "value": "accept"} for i in accepts]
    labels += [{"object_id": i, "value": "reject"} for i in rejects]
    if labels:
        assert alice.post(f"/api/campaigns/{cid}/labels/bulk",
                          json={"labels": labels}).status_code == 200
    return alice, cid


def run_probe_jobs(app, lease_s: float = 5.0) -> int:
    """Run every due probe job in this process; returns how many ran."""
    return Worker(app, ["probe"], lease_s=lease_s, name="test-worker").run(once=True)


def probe_jobs(app, campaign_id: int) -> list[Job]:
    with app.app_context():
        rows = list(db.session.scalars(select(Job).where(Job.campaign_id == campaign_id)
                                       .order_by(Job.id)))
        db.session.expunge_all()
        return rows
