"""Helpers of the job tests: registering test kinds, running workers in threads, reading rows."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import select

from server.database import utcnow
from server.extensions import db
from server.jobs.kinds import JOB_KINDS, JobKind
from server.jobs.queue import enqueue
from server.jobs.worker import Worker
from server.models import Job

TEST_KIND = "test-sleepy"


def register_test_kind(monkeypatch, max_attempts: int = 3) -> None:
    monkeypatch.setitem(JOB_KINDS, TEST_KIND, JobKind(TEST_KIND, "job_handlers:sleepy",
                                                      max_attempts=max_attempts,
                                                      retry_delay_s=0.0))


def add_job(app, payload: dict | None = None, now: datetime | None = None, **kwargs) -> int:
    with app.app_context():
        job_id = enqueue(db.session, kwargs.pop("kind", TEST_KIND), payload=payload or {},
                         now=now, **kwargs)
        db.session.commit()
        return job_id


def job_row(app, job_id: int) -> Job:
    with app.app_context():
        job = db.session.get(Job, job_id)
        db.session.expunge(job)
        return job


def jobs(app) -> list[Job]:
    with app.app_context():
        rows = list(db.session.scalars(select(Job).order_by(Job.id)))
        db.session.expunge_all()
        return rows


def later(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


@contextmanager
def worker_thread(app, lease_s: float = 5.0, kinds: list[str] | None = None,
                  poll_s: float = 0.05, name: str | None = None) -> Iterator[Worker]:
    """A worker running in a thread until the block ends (then stopped gracefully)."""
    worker = Worker(app, kinds or [TEST_KIND], poll_s=poll_s, lease_s=lease_s, name=name)
    thread = threading.Thread(target=worker.run, name=name or "worker", daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.request_stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the worker did not stop"
