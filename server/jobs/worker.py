"""The worker: claims jobs from the queue and runs their handlers, holding a lease meanwhile.

``galsearch worker`` (:mod:`server.jobs.cli`) builds the app, then runs :meth:`Worker.run`:

1. look (reading only) for work; fail jobs whose lease expired after their last attempt; claim
   the oldest due job of the worker's kinds (:func:`server.jobs.queue.claim`); when there is
   none, sleep until the next queued job is due or ``poll_s``, whichever comes first;
2. run the kind's handler in the main thread while a :class:`Heartbeat` thread renews the
   lease every ``lease_s / 4`` seconds, writes the handler's progress, and notices a cancel
   request or a lease taken over by another worker (the handler then stops at its next
   ``context.check()``);
3. end the attempt: succeeded (the handler's rows are written in the same transaction, only if
   the lease is still ours), failed (:class:`JobError`: at once, with its message; any other
   exception: queued again until ``max_attempts``), cancelled, or released.

SIGTERM or SIGINT asks the worker to stop: the running handler stops at its next check and its
job is released (queued again, the attempt not counted), or it finishes first; then the worker
exits. ``kill -9`` leaves the lease to expire, after which another worker claims the job.
Several workers may run side by side, on one machine or many.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from server.database import is_database_unavailable, libpq_url, utcnow
from server.extensions import db
from server.jobs import queue
from server.jobs.kinds import JOB_KINDS, job_kind
from server.jobs.queue import ClaimedJob

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 30.0
MIN_SLEEP_S = 0.02
STOP_CHECK_S = 0.5


class JobError(Exception):
    """A failure another attempt would not fix; its message is shown to users as is."""


class JobInterrupted(Exception):
    """The handler stopped early: the worker is stopping, the job was cancelled, or its lease
    was taken over."""


@dataclass(frozen=True)
class Outcome:
    """What a handler returns: a small JSON ``result`` for the job row, and ``store``, which
    adds the handler's rows to the session that marks the job succeeded (not committed) and
    may return more for ``result`` (e.g. the id it was given)."""

    result: dict[str, Any] = field(default_factory=dict)
    store: Callable[[Session], dict[str, Any] | None] | None = None


class JobContext:
    """A handler's line to its worker: report progress, find out whether to stop."""

    def __init__(self, job: ClaimedJob, shutdown: threading.Event | None = None) -> None:
        self.job = job
        self._shutdown = shutdown or threading.Event()
        self.lease_lost = threading.Event()
        self.cancel_requested = threading.Event()
        self._lock = threading.Lock()
        self._progress: float | None = None
        self._message = "started"

    def progress(self, fraction: float | None, message: str = "") -> None:
        """Record how far the job is (0..1) and what it is doing; the heartbeat writes it."""
        with self._lock:
            self._progress = None if fraction is None else min(1.0, max(0.0, float(fraction)))
            self._message = message

    def snapshot(self) -> tuple[float | None, str]:
        with self._lock:
            return self._progress, self._message

    @property
    def stop_reason(self) -> str | None:
        """Why the handler should stop now (None: carry on)."""
        if self.cancel_requested.is_set():
            return "cancelled"
        if self.lease_lost.is_set():
            return "lease lost"
        if self._shutdown.is_set():
            return "worker stopping"
        return None

    def check(self) -> None:
        """Raise :class:`JobInterrupted` when the handler should stop (call between steps)."""
        reason = self.stop_reason
        if reason is not None:
            raise JobInterrupted(reason)


class Heartbeat(threading.Thread):
    """Renews a job's lease every ``interval_s`` until stopped, on its own connections."""

    def __init__(self, engine: Engine, job: ClaimedJob, context: JobContext, lease_s: float,
                 interval_s: float) -> None:
        super().__init__(name=f"heartbeat-{job.id}", daemon=True)
        self.engine, self.job, self.context = engine, job, context
        self.lease_s, self.interval_s = lease_s, interval_s
        self._done = threading.Event()
        self.beats = 0

    def run(self) -> None:
        while not self._done.wait(self.interval_s):
            progress, message = self.context.snapshot()
            try:
                with self.engine.begin() as connection:
                    beat = queue.heartbeat(connection, self.job, self.lease_s, progress, message)
            except Exception as error:  # the database is away: try again at the next beat
                log.warning("job %d: heartbeat failed (%s)", self.job.id, error)
                continue
            self.beats += 1
            if not beat.held:
                log.warning("job %d: lease taken over by another worker", self.job.id)
                self.context.lease_lost.set()
                return
            if beat.cancel_requested:
                self.context.cancel_requested.set()

    def stop(self) -> None:
        self._done.set()
        self.join()


class Wakeup:
    """An idle worker's sleep: until ``timeout`` or, on PostgreSQL, a ``NOTIFY`` that a job is
    due (:data:`server.jobs.queue.NOTIFY_CHANNEL`), on a connection of its own. If that
    connection fails (the server restarted), it sleeps plainly and listens again next time."""

    def __init__(self, engine: Engine, stopping: threading.Event) -> None:
        self.stopping = stopping
        self.conninfo = (libpq_url(engine.url) if engine.dialect.name == "postgresql"
                         else None)
        self.connection = None

    def _listen(self):
        if self.connection is None and self.conninfo is not None:
            import psycopg

            try:
                self.connection = psycopg.connect(self.conninfo, autocommit=True,
                                                  connect_timeout=5)
                self.connection.execute(f"LISTEN {queue.NOTIFY_CHANNEL}")
            except psycopg.Error as error:
                log.warning("cannot listen for job notifications (%s): polling", error)
                self.close()
        return self.connection

    def wait(self, timeout_s: float) -> None:
        connection = self._listen()
        if connection is None:
            self.stopping.wait(timeout_s)
            return
        deadline = time.monotonic() + timeout_s
        try:
            # in slices, so that a stop request is seen within half a second
            while not self.stopping.is_set() and (left := deadline - time.monotonic()) > 0:
                if list(connection.notifies(timeout=min(left, STOP_CHECK_S), stop_after=1)):
                    return
        except Exception as error:
            log.warning("job notifications lost (%s): polling", error)
            self.close()
            self.stopping.wait(timeout_s)

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            finally:
                self.connection = None


def worker_name() -> str:
    """host:pid, what the job table records as the claimer."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    """Runs jobs of ``kinds`` from the app's database.

    Args:
        app: the app (database, bundle, settings); the worker enters its app context.
        kinds: job kinds to run (default: every kind).
        poll_s: longest sleep when nothing is due.
        lease_s: lease length (default: the app's ``JOB_LEASE_S``).
        name: recorded as the claimer (default host:pid).
    """

    def __init__(self, app: Flask, kinds: Sequence[str] | None = None, poll_s: float = 1.0,
                 lease_s: float | None = None, name: str | None = None) -> None:
        self.app = app
        self.kinds = list(kinds or JOB_KINDS)
        self.handlers = {kind: job_kind(kind).load() for kind in self.kinds}
        self.poll_s = poll_s
        self.lease_s = float(lease_s or app.config.get("JOB_LEASE_S", DEFAULT_LEASE_S))
        self.name = name or worker_name()
        self.stopping = threading.Event()
        self.current: ClaimedJob | None = None

    def request_stop(self) -> None:
        """Finish or release the running job, then return from :meth:`run`."""
        self.stopping.set()

    # -- the loop ------------------------------------------------------------------------------
    def run(self, once: bool = False) -> int:
        """Run jobs until asked to stop (``once``: until nothing is due). Returns how many ran."""
        processed = 0
        with self.app.app_context():
            log.info("worker %s: kinds %s, lease %.0f s, poll %.1f s", self.name,
                     ",".join(self.kinds), self.lease_s, self.poll_s)
            wakeup = Wakeup(db.engine, self.stopping)
            try:
                processed = self._loop(once, wakeup)
            finally:
                wakeup.close()
        return processed

    def _loop(self, once: bool, wakeup: Wakeup) -> int:
        processed = 0
        while not self.stopping.is_set():
            try:
                ran = self.run_one()
            except Exception as error:
                if not is_database_unavailable(error):
                    log.exception("worker %s: unexpected error", self.name)
                else:
                    log.warning("worker %s: database unavailable (%s)", self.name, error)
                db.session.rollback()
                if once:
                    raise
                self.stopping.wait(self.poll_s)
                continue
            if ran:
                processed += 1
                continue
            if once:
                break
            wakeup.wait(self._idle_s())
        return processed

    def _idle_s(self) -> float:
        with db.engine.connect() as connection:
            due = queue.next_due(connection, self.kinds)
        if due is None:
            return self.poll_s
        return min(self.poll_s, max(MIN_SLEEP_S, (due - utcnow()).total_seconds()))

    def run_one(self) -> bool:
        """Claim and run one due job; False when none was due."""
        engine = db.engine
        with engine.connect() as connection:
            state = queue.peek(connection, self.kinds)
        if state.exhausted:
            with engine.begin() as connection:
                failed = queue.fail_exhausted(connection, self.kinds)
            log.warning("worker %s: %d job(s) failed after their last lease expired",
                        self.name, failed)
        if not state.claimable:
            return False
        with engine.begin() as connection:
            job = queue.claim(connection, self.kinds, self.name, self.lease_s)
        if job is None:  # another worker was quicker
            return False
        self.current = job
        try:
            self._run(job)
        finally:
            self.current = None
            db.session.remove()
        return True

    # -- one job -------------------------------------------------------------------------------
    def _run(self, job: ClaimedJob) -> None:
        engine = db.engine
        context = JobContext(job, self.stopping)
        heartbeat = Heartbeat(engine, job, context, self.lease_s, self.lease_s / 4)
        heartbeat.start()
        started = time.perf_counter()
        log.info("job %d (%s, campaign %s): attempt %d of %d", job.id, job.kind,
                 job.campaign_id, job.attempt, job.max_attempts)
        try:
            outcome = self.handlers[job.kind](job, context)
            db.session.rollback()  # the handler's reads end; its writes come in `store`
            self._succeed(job, outcome, time.perf_counter() - started)
        except JobInterrupted as stop:
            db.session.rollback()
            self._interrupted(engine, job, context, str(stop))
        except JobError as error:
            db.session.rollback()
            log.info("job %d failed: %s", job.id, error)
            with engine.begin() as connection:
                queue.mark_failed(connection, job, str(error), retry=False)
        except Exception as error:
            db.session.rollback()
            log.exception("job %d: attempt %d raised", job.id, job.attempt)
            retry_delay = job_kind(job.kind).retry_delay_s * job.attempt
            with engine.begin() as connection:
                status = queue.mark_failed(connection, job, f"{type(error).__name__}: {error}",
                                           retry=True, retry_delay_s=retry_delay)
            log.info("job %d: now %s", job.id, status)
        finally:
            heartbeat.stop()

    def _succeed(self, job: ClaimedJob, outcome: Outcome, seconds: float) -> None:
        session = db.session
        try:
            # first statement of its transaction: on SQLite it takes the write lock at once
            if not queue.mark_succeeded(session, job, outcome.result):
                session.rollback()
                log.warning("job %d finished after its lease was taken over: result dropped",
                            job.id)
                return
            result = dict(outcome.result)
            if outcome.store is not None:
                result.update(outcome.store(session) or {})
                queue.set_result(session, job, result)
            session.commit()
        except Exception:
            session.rollback()
            raise
        log.info("job %d succeeded in %.2f s: %s", job.id, seconds, result)

    def _interrupted(self, engine: Engine, job: ClaimedJob, context: JobContext,
                     reason: str) -> None:
        with engine.begin() as connection:
            if context.cancel_requested.is_set():
                queue.mark_cancelled(connection, job, "cancelled while running")
                log.info("job %d cancelled", job.id)
            elif context.lease_lost.is_set():
                log.warning("job %d abandoned: its lease was taken over", job.id)
            else:
                queue.release(connection, job)
                log.info("job %d released (%s)", job.id, reason)
