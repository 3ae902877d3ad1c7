"""The worker on SQLite and PostgreSQL: running handlers, heartbeats, retries, cancelling,
graceful shutdown, a lost lease, and several workers side by side."""

from __future__ import annotations

import time

import job_handlers
import pytest
from jobs_testing import (
    TEST_KIND,
    add_job,
    job_row,
    jobs,
    later,
    register_test_kind,
    worker_thread,
)

from server.extensions import db
from server.jobs import queue
from server.jobs.worker import Worker
from server.models import JobStatus


@pytest.fixture(autouse=True)
def _kind(monkeypatch):
    register_test_kind(monkeypatch, max_attempts=2)
    job_handlers.RUNS.clear()


def wait_for(predicate, timeout_s: float = 20.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_once_runs_what_is_due_and_records_the_outcome(app):
    ok = add_job(app, {"sleep": 0})
    later_job = add_job(app, {"sleep": 0}, delay_s=60)
    assert Worker(app, [TEST_KIND], lease_s=5, name="w").run(once=True) == 1
    row = job_row(app, ok)
    assert (row.status, row.result, row.progress, row.worker) == (
        JobStatus.SUCCEEDED, {"attempt": 1}, 1.0, "w")
    assert job_row(app, later_job).status == JobStatus.QUEUED


def test_a_permanent_error_fails_at_once_with_its_message(app):
    job_id = add_job(app, {"fail": "permanent"})
    Worker(app, [TEST_KIND], lease_s=5).run(once=True)
    row = job_row(app, job_id)
    assert row.status == JobStatus.FAILED and row.attempts == 1
    assert row.error == "this job cannot work: the payload says so"


def test_an_exception_is_retried_then_fails_with_the_error(app):
    job_id = add_job(app, {"fail": "error"})
    Worker(app, [TEST_KIND], lease_s=5).run(once=True)  # both attempts: no retry delay
    row = job_row(app, job_id)
    assert row.status == JobStatus.FAILED and row.attempts == 2
    assert row.error == "RuntimeError: boom on attempt 2"
    assert [attempt for _, attempt, _ in job_handlers.RUNS] == [1, 2]


def test_an_idle_worker_wakes_for_a_due_job(app):
    """PostgreSQL announces due jobs (NOTIFY): a worker that polls every 30 s takes one at
    once. SQLite has no notifications: its workers find jobs at their next poll."""
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite workers poll (no notifications)")
    with worker_thread(app, poll_s=30):
        time.sleep(0.5)  # idle and listening
        started = time.monotonic()
        job_id = add_job(app, {"sleep": 0})
        wait_for(lambda: job_row(app, job_id).status == JobStatus.SUCCEEDED, timeout_s=10,
                 what="the job")
        assert time.monotonic() - started < 5
    delayed = add_job(app, {"sleep": 0}, delay_s=60)  # not due: no announcement needed
    assert job_row(app, delayed).status == JobStatus.QUEUED


def test_heartbeats_keep_a_long_jobs_lease(app):
    """A 0.4 s lease, a 1.5 s job: without heartbeats another worker would take it over."""
    job_id = add_job(app, {"sleep": 1.5})
    with worker_thread(app, lease_s=0.4, name="holder"):
        wait_for(lambda: job_row(app, job_id).status == JobStatus.RUNNING, what="the claim")
        while job_row(app, job_id).status == JobStatus.RUNNING:
            with app.app_context(), db.engine.begin() as connection:
                assert queue.claim(connection, [TEST_KIND], "thief", 0.4) is None
            time.sleep(0.05)
    row = job_row(app, job_id)
    assert (row.status, row.attempts, row.worker) == (JobStatus.SUCCEEDED, 1, "holder")
    assert row.lease_expires_at is None and row.heartbeat_at > row.started_at


def test_progress_is_visible_while_it_runs(app):
    job_id = add_job(app, {"sleep": 1.0})
    with worker_thread(app, lease_s=0.2):
        row = wait_for(lambda: (r := job_row(app, job_id)).progress and r, what="progress")
        assert row.status == JobStatus.RUNNING and row.message == "sleeping"
        assert 0 < row.progress < 1


def test_cancelling_a_running_job_stops_it(app):
    job_id = add_job(app, {"sleep": 30})
    with worker_thread(app, lease_s=0.2):
        wait_for(lambda: job_row(app, job_id).status == JobStatus.RUNNING, what="the claim")
        with app.app_context():
            queue.request_cancel(db.session, job_id)
            db.session.commit()
        wait_for(lambda: job_row(app, job_id).status == JobStatus.CANCELLED,
                 what="the cancel")
    assert job_row(app, job_id).message == "cancelled while running"


def test_a_stopping_worker_releases_its_job_for_the_next(app):
    job_id = add_job(app, {"sleep": 30})
    with worker_thread(app, lease_s=5):
        wait_for(lambda: job_row(app, job_id).status == JobStatus.RUNNING, what="the claim")
    row = job_row(app, job_id)  # the block's end asked the worker to stop
    assert (row.status, row.attempts, row.lease_token) == (JobStatus.QUEUED, 0, None)
    assert row.message == "released by a stopping worker"


def test_a_worker_that_lost_its_lease_stops_and_changes_nothing(app):
    job_id = add_job(app, {"sleep": 30})
    with worker_thread(app, lease_s=0.4, name="slow") as slow:
        wait_for(lambda: job_row(app, job_id).status == JobStatus.RUNNING, what="the claim")
        # as if "slow" had paused longer than its lease: another worker takes the job over
        with app.app_context(), db.engine.begin() as connection:
            taken = queue.claim(connection, [TEST_KIND], "fast", 60, now=later(1))
        assert taken.id == job_id and taken.attempt == 2
        wait_for(lambda: slow.current is None, what="slow to give the job up")
        assert len(job_handlers.RUNS) == 1
    row = job_row(app, job_id)
    assert (row.status, row.worker, row.lease_token) == (JobStatus.RUNNING, "fast",
                                                         taken.lease_token)


def test_several_workers_never_run_the_same_job(app):
    """Three workers side by side, 24 short jobs: each runs exactly once."""
    ids = [add_job(app, {"sleep": 0.02}) for _ in range(24)]
    with worker_thread(app, name="a"), worker_thread(app, name="b"), \
            worker_thread(app, name="c"):
        wait_for(lambda: all(j.status.finished for j in jobs(app)), what="all jobs")
    ran = [job_id for job_id, _, _ in job_handlers.RUNS]
    assert sorted(ran) == ids
    assert len({thread for _, _, thread in job_handlers.RUNS}) > 1
    assert all(j.status == JobStatus.SUCCEEDED and j.attempts == 1 for j in jobs(app))


def test_the_worker_command(people, app, monkeypatch, tmp_path):
    """`galsearch worker --once` builds the app from the environment and runs what is due."""
    from click.testing import CliRunner
    from probe_testing import labeled_campaign, probe_jobs

    from server.cli import main

    alice, cid = labeled_campaign(people)
    alice.post(f"/api/campaigns/{cid}/probe/retrain")
    for name, value in {"DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
                        "GALSEARCH_BUNDLE": app.config["BUNDLE_PATH"],
                        "GALSEARCH_INSTANCE": str(tmp_path), "SECRET_KEY": "test"}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["worker", "--once", "--kinds", "probe", "--lease", "5"])
    assert result.exit_code == 0, result.output
    assert "worker stopped after 1 job(s)" in result.output
    assert [j.status for j in probe_jobs(app, cid)] == [JobStatus.SUCCEEDED]
    bad = CliRunner().invoke(main, ["worker", "--kinds", "probe,mail"])
    assert bad.exit_code == 2 and "unknown kinds ['mail']" in bad.output
