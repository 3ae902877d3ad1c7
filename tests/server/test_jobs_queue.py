"""The job queue on SQLite and PostgreSQL: claiming, leases, coalescing, debounce, finishing."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import psycopg
import pytest
from jobs_testing import TEST_KIND, add_job, job_row, jobs, later, register_test_kind
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from server.database import libpq_url, utcnow
from server.extensions import db
from server.jobs import queue
from server.models import Job, JobStatus


@pytest.fixture(autouse=True)
def _kind(monkeypatch):
    register_test_kind(monkeypatch)


def at(start, seconds: float):
    """A matcher: a time ``seconds`` after ``start`` (to the microsecond the databases keep)."""
    return pytest.approx((start + timedelta(seconds=seconds)).timestamp(), abs=1e-5)


def claim(app, worker: str = "w1", lease_s: float = 10.0, now=None):
    with app.app_context(), db.engine.begin() as connection:
        return queue.claim(connection, [TEST_KIND], worker, lease_s, now=now)


def test_claim_takes_the_oldest_due_job_once(app):
    first = add_job(app, {"n": 1})
    second = add_job(app, {"n": 2})
    with app.app_context(), db.engine.connect() as connection:
        assert queue.peek(connection, [TEST_KIND]).claimable
    job = claim(app)
    assert (job.id, job.kind, job.payload, job.attempt) == (first, TEST_KIND, {"n": 1}, 1)
    row = job_row(app, first)
    assert row.status == JobStatus.RUNNING and row.worker == "w1"
    assert row.lease_token == job.lease_token and row.lease_expires_at > utcnow()
    assert row.started_at is not None and row.heartbeat_at is not None
    assert claim(app, "w2").id == second
    assert claim(app, "w3") is None
    # other kinds are not this worker's
    with app.app_context(), db.engine.begin() as connection:
        assert queue.claim(connection, ["export"], "w4", 10) is None


def test_a_job_is_not_claimed_before_run_after(app):
    job_id = add_job(app, delay_s=30)
    assert claim(app) is None
    assert claim(app, now=later(31)).id == job_id
    with app.app_context(), db.engine.connect() as connection:
        assert queue.next_due(connection, [TEST_KIND]) is None  # nothing queued now


def test_coalescing_keeps_one_queued_job_per_key(app):
    ids = {add_job(app, coalesce_key="k") for _ in range(3)}
    other = add_job(app, coalesce_key="other")
    assert len(ids) == 1 and other not in ids
    [job_id] = ids
    assert job_row(app, job_id).requests == 3
    # the database refuses a second queued job of a key, whoever inserts it
    with app.app_context():
        with pytest.raises(IntegrityError):
            db.session.execute(insert(Job).values(
                kind=TEST_KIND, payload={}, status=JobStatus.QUEUED, coalesce_key="k",
                requests=1, run_after=utcnow(), attempts=0, max_attempts=3, message="",
                cancel_requested=False, created_at=utcnow()))
        db.session.rollback()
    # once the queued one runs, a request queues a new one (it must read newer data)
    assert claim(app).id == job_id
    again = add_job(app, coalesce_key="k")
    assert again != job_id and job_row(app, again).status == JobStatus.QUEUED


def test_debounce_slides_with_each_request_until_enough_requests_gather(app):
    t0 = utcnow()
    key, kwargs = "probe:1", dict(delay_s=5.0, due_after_requests=4)
    job_id = add_job(app, coalesce_key=key, now=t0, **kwargs)
    assert job_row(app, job_id).run_after.timestamp() == at(t0, 5)
    add_job(app, coalesce_key=key, **kwargs)
    t2 = utcnow()
    add_job(app, coalesce_key=key, now=t2, **kwargs)
    assert job_row(app, job_id).run_after.timestamp() == at(t2, 5)  # moved on
    assert claim(app) is None
    t3 = utcnow()
    add_job(app, coalesce_key=key, now=t3, **kwargs)  # the 4th request: due now
    row = job_row(app, job_id)
    assert row.requests == 4 and row.run_after.timestamp() == at(t3, 0)
    assert claim(app).id == job_id


def test_a_due_request_makes_the_queued_job_due_and_it_stays_due(app):
    key = "probe:2"
    job_id = add_job(app, coalesce_key=key, delay_s=60)
    add_job(app, coalesce_key=key, delay_s=0)  # "retrain now"
    add_job(app, coalesce_key=key, delay_s=60)  # a label after it does not postpone it
    assert job_row(app, job_id).run_after <= utcnow()
    assert claim(app).id == job_id


def test_a_queued_job_waits_while_another_of_its_key_runs(app):
    running = add_job(app, coalesce_key="k")
    assert claim(app).id == running
    waiting = add_job(app, coalesce_key="k")
    assert claim(app, "w2") is None
    # when the running one's lease has expired the waiting one may go (and so may it)
    assert claim(app, "w2", now=later(11)).id == running
    with app.app_context(), db.engine.begin() as connection:
        job = queue.claim(connection, [TEST_KIND], "w3", 10, now=later(12))
        assert job is None  # the reclaimed one runs again
    assert job_row(app, waiting).status == JobStatus.QUEUED


def test_expired_lease_is_claimed_again_and_the_old_token_is_dead(app):
    job_id = add_job(app)
    first = claim(app, "w1", lease_s=10)
    assert claim(app, "w2", now=later(5)) is None  # lease still held
    second = claim(app, "w2", now=later(11))
    assert (second.id, second.attempt) == (job_id, 2)
    assert second.lease_token != first.lease_token
    with app.app_context():
        with db.engine.begin() as connection:
            assert not queue.heartbeat(connection, first, 10, 0.5, "late").held
            assert queue.mark_failed(connection, first, "late", retry=True) is None
        assert not queue.mark_succeeded(db.session, first, {})
        db.session.rollback()
        with db.engine.begin() as connection:
            beat = queue.heartbeat(connection, second, 10, 0.25, "working")
        assert beat.held and not beat.cancel_requested
        assert queue.mark_succeeded(db.session, second, {"ok": True})
        db.session.commit()
    row = job_row(app, job_id)
    assert (row.status, row.worker, row.result, row.attempts) == (JobStatus.SUCCEEDED, "w2",
                                                                   {"ok": True}, 2)
    assert row.finished_at is not None and row.lease_token is None


def test_a_job_whose_worker_keeps_dying_fails_after_max_attempts(app):
    job_id = add_job(app, max_attempts=2)
    claim(app, "w1", lease_s=1)
    claim(app, "w2", lease_s=1, now=later(2))
    assert claim(app, "w3", now=later(4)) is None  # no attempt left
    with app.app_context(), db.engine.begin() as connection:
        assert queue.peek(connection, [TEST_KIND], now=later(4)) == queue.Peek(False, True)
        assert queue.fail_exhausted(connection, [TEST_KIND], now=later(4)) == 1
        assert queue.peek(connection, [TEST_KIND], now=later(4)) == queue.Peek(False, False)
    row = job_row(app, job_id)
    assert row.status == JobStatus.FAILED and "stopped responding" in row.error


def test_failed_attempts_retry_then_fail_with_the_error(app):
    job_id = add_job(app, max_attempts=2)
    job = claim(app)
    with app.app_context(), db.engine.begin() as connection:
        status = queue.mark_failed(connection, job, "RuntimeError: boom", retry=True,
                                   retry_delay_s=30)
    row = job_row(app, job_id)
    assert status == JobStatus.QUEUED and row.error == "RuntimeError: boom"
    assert row.run_after > later(25) and row.lease_token is None
    job = claim(app, now=later(31))
    assert job.attempt == 2
    with app.app_context(), db.engine.begin() as connection:
        status = queue.mark_failed(connection, job, "RuntimeError: boom again", retry=True)
    row = job_row(app, job_id)
    assert status == row.status == JobStatus.FAILED and row.error == "RuntimeError: boom again"


def test_release_requeues_without_counting_or_yields_to_a_newer_job(app):
    job_id = add_job(app, coalesce_key="k")
    job = claim(app)
    with app.app_context(), db.engine.begin() as connection:
        assert queue.release(connection, job)
    row = job_row(app, job_id)
    assert (row.status, row.attempts) == (JobStatus.QUEUED, 0)
    job = claim(app)
    newer = add_job(app, coalesce_key="k")  # labels arrived while it ran
    with app.app_context(), db.engine.begin() as connection:
        assert queue.release(connection, job)
    assert job_row(app, job_id).status == JobStatus.CANCELLED
    assert "superseded" in job_row(app, job_id).message
    assert job_row(app, newer).status == JobStatus.QUEUED


def test_cancel_a_queued_job_at_once_and_a_running_one_through_its_heartbeat(app):
    queued = add_job(app)
    with app.app_context():
        assert queue.request_cancel(db.session, queued) == JobStatus.CANCELLED
        db.session.commit()
    running = add_job(app)
    job = claim(app)
    with app.app_context():
        assert queue.request_cancel(db.session, running) == JobStatus.RUNNING
        db.session.commit()
        with db.engine.begin() as connection:
            assert queue.heartbeat(connection, job, 10, None, "").cancel_requested
            assert queue.mark_cancelled(connection, job, "cancelled while running")
    assert [j.status for j in jobs(app)] == [JobStatus.CANCELLED, JobStatus.CANCELLED]


def test_unknown_kinds_are_refused(app):
    with app.app_context(), pytest.raises(ValueError, match="unknown job kind 'nope'"):
        queue.enqueue(db.session, "nope")


def test_concurrent_claims_never_hand_a_job_to_two_workers(app):
    """Eight threads, each its own connection, claim 40 jobs as fast as they can."""
    n_jobs, n_workers = 40, 8
    for i in range(n_jobs):
        add_job(app, {"i": i})
    claimed: dict[str, list[int]] = {f"w{i}": [] for i in range(n_workers)}
    barrier = threading.Barrier(n_workers)

    def work(name: str) -> None:
        barrier.wait()
        while (job := claim(app, name)) is not None:
            claimed[name].append(job.id)

    with ThreadPoolExecutor(n_workers) as pool:
        for future in [pool.submit(work, name) for name in claimed]:
            future.result()
    everything = [job_id for ids in claimed.values() for job_id in ids]
    assert len(everything) == n_jobs == len(set(everything))
    assert sum(1 for ids in claimed.values() if ids) > 1  # they did compete
    assert all(j.status == JobStatus.RUNNING and j.attempts == 1 for j in jobs(app))


def test_coalescing_survives_prepared_statements(app):
    """psycopg prepares a statement at its 6th run on a connection; the upsert's conflict
    target must still name the partial index then (not a bound parameter)."""
    with app.app_context():
        for _ in range(12):  # one connection: the session's, across commits
            queue.enqueue(db.session, TEST_KIND, coalesce_key="prepared", delay_s=60)
            db.session.commit()
    [job] = [j for j in jobs(app) if j.coalesce_key == "prepared"]
    assert job.requests == 12


def test_postgresql_announces_a_job_when_an_enqueue_makes_it_due_and_not_again(app):
    """NOTIFY goes out when an enqueue makes the queued job due (a new job due at once, or the
    request that gathers enough), not for requests that join a job already due: each NOTIFY
    makes its commit wait for PostgreSQL's one lock for notifying transactions."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if not url.startswith("postgresql"):
        pytest.skip("SQLite has no notifications")
    with psycopg.connect(libpq_url(url), autocommit=True) as listener:
        listener.execute(f"LISTEN {queue.NOTIFY_CHANNEL}")

        def announcements() -> int:
            return len(list(listener.notifies(timeout=0.2, stop_after=10)))

        kwargs = dict(coalesce_key="probe:9", delay_s=60, due_after_requests=3)
        add_job(app, **kwargs)
        add_job(app, **kwargs)
        assert announcements() == 0  # queued, not due
        add_job(app, **kwargs)  # the third request: due now
        assert announcements() == 1
        add_job(app, **kwargs)
        add_job(app, coalesce_key="probe:9", delay_s=0)  # "retrain now" on a due job
        assert announcements() == 0
        add_job(app, coalesce_key="probe:10", delay_s=0)  # a new job, due at once
        assert announcements() == 1
