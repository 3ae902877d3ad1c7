"""Faults of the probe worker on SQLite and PostgreSQL: a worker killed with SIGKILL mid-run
(its run is claimed again after the lease expires and finishes, no label is lost), and several
workers training probes side by side (no run twice)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from jobs_testing import job_row, worker_thread
from probe_testing import labeled_campaign, probe_jobs, run_probe_jobs
from sqlalchemy import func, select
from test_jobs_worker import wait_for

from server.database import utcnow
from server.extensions import db
from server.models import JobStatus, Label, LabelHistory, ProbeRun

HERE = Path(__file__).resolve().parent


def start_worker(app, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """`galsearch worker` (1 s lease) in a process of its own, its runs paused at the start
    (tests/server/worker_process.py); returns it and the file it writes when a run starts."""
    marker = tmp_path / "running"
    env = {**os.environ, "GALSEARCH_TEST_MARKER": str(marker),
           "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "GALSEARCH_BUNDLE": app.config["BUNDLE_PATH"], "GALSEARCH_INSTANCE": str(tmp_path),
           "SECRET_KEY": "test",
           "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parents[1])])}
    process = subprocess.Popen(
        [sys.executable, str(HERE / "worker_process.py"), "--lease", "1", "--poll", "0.05"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for(lambda: marker.exists() or process.poll() is not None, timeout_s=120,
             what="the worker process to start the run")
    if process.poll() is not None:
        raise AssertionError(process.stderr.read().decode()[-3000:])
    return process, marker


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_nothing(people, app, tmp_path):
    alice, cid = labeled_campaign(people)
    alice.post(f"/api/campaigns/{cid}/probe/retrain")
    process, marker = start_worker(app, tmp_path)
    try:
        job_id = int(marker.read_text())
        # labels keep coming while the run is in progress
        more = [{"object_id": i, "value": "reject"} for i in (30, 31, 32, 33)]
        assert alice.post(f"/api/campaigns/{cid}/labels/bulk",
                          json={"labels": more}).status_code == 200
        alice.post(f"/api/campaigns/{cid}/probe/retrain")  # not waiting for the debounce
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        process.stderr.close()
    row = job_row(app, job_id)
    assert (row.status, row.attempts) == (JobStatus.RUNNING, 1)
    # the lease runs out (1 s), then a worker here claims the run again and finishes it
    wait_for(lambda: job_row(app, job_id).lease_expires_at < utcnow(), what="the lease")
    assert run_probe_jobs(app) == 2  # the interrupted run, then the one for the new labels
    jobs = probe_jobs(app, cid)
    assert all(j.status == JobStatus.SUCCEEDED for j in jobs)
    assert job_row(app, job_id).attempts == 2
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Label).where(
            Label.campaign_id == cid)) == 10
        newest = db.session.scalars(select(ProbeRun).where(ProbeRun.campaign_id == cid)
                                    .order_by(ProbeRun.version.desc())).first()
        last_change = db.session.scalar(select(func.max(LabelHistory.id)).where(
            LabelHistory.campaign_id == cid))
    assert newest.version == 2 and newest.label_watermark == last_change
    assert (newest.n_positive, newest.n_negative) == (4, 7)


def test_workers_side_by_side_train_each_run_once(people, app):
    campaigns = []
    for _ in range(4):
        _, cid = labeled_campaign(people)
        campaigns.append(cid)
        people.session("alice").post(f"/api/campaigns/{cid}/probe/retrain")
    with worker_thread(app, kinds=["probe"], name="w1"), \
            worker_thread(app, kinds=["probe"], name="w2"), \
            worker_thread(app, kinds=["probe"], name="w3"):
        wait_for(lambda: all(j.status.finished for cid in campaigns
                             for j in probe_jobs(app, cid)), what="every run")
    with app.app_context():
        runs = list(db.session.scalars(select(ProbeRun)))
    assert sorted(r.campaign_id for r in runs) == campaigns
    assert all(r.version == 1 for r in runs) and len({r.job_id for r in runs}) == 4
    assert all(j.status == JobStatus.SUCCEEDED and j.attempts == 1
               for cid in campaigns for j in probe_jobs(app, cid))


@pytest.mark.slow
def test_sigterm_hands_the_running_job_back(people, app, tmp_path):
    """SIGTERM: the run is released, not lost."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("the signal path does not depend on the database (releasing is tested on "
                    "both in test_jobs_worker.py)")
    alice, cid = labeled_campaign(people)
    alice.post(f"/api/campaigns/{cid}/probe/retrain")
    process, marker = start_worker(app, tmp_path)
    try:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert "stopping after the current job" in process.stderr.read().decode()
    finally:
        if process.poll() is None:
            process.kill()
        process.stderr.close()
    row = job_row(app, int(marker.read_text()))
    assert (row.status, row.attempts, row.lease_token) == (JobStatus.QUEUED, 0, None)
    assert run_probe_jobs(app) == 1  # the next worker takes it at once
    assert job_row(app, row.id).status == JobStatus.SUCCEEDED
