"""The job queue in SQL: enqueue (with coalescing and debounce), claim, heartbeat, finish.

Every state change is one conditional SQL statement, so that many web processes and workers
can share the table without a broker:

- **Enqueue** with a ``coalesce_key`` is an upsert on the partial unique index "one queued job
  per key" (``INSERT ... ON CONFLICT (coalesce_key) WHERE status = 'queued' DO UPDATE``, on
  PostgreSQL and SQLite alike): a request that finds a queued job of its key joins it.
  Debounce: a joined job's ``run_after`` moves to ``now + delay`` with each request (so a burst
  of labels is one run, started ``delay`` after the last), unless it has gathered
  ``due_after_requests`` requests or is already due, when it runs now. Enqueueing takes part in
  the caller's transaction (label writes mark their campaign in the same commit).
- **Claim**: ``UPDATE jobs SET status = 'running', lease ... WHERE id = (SELECT id ... LIMIT 1
  FOR UPDATE SKIP LOCKED) RETURNING ...``. On PostgreSQL the row lock with ``SKIP LOCKED``
  lets concurrent workers pass each other's rows; SQLite ignores ``FOR UPDATE`` and runs the
  whole statement under its database write lock, which makes it atomic just the same. It is
  the first statement of its own transaction, so SQLite's busy timeout applies to it. A job is
  claimable when queued and due, or running with an expired lease (its worker died), and not
  yet claimed ``max_attempts`` times; a queued job waits while another job of its key runs,
  so that one campaign's probe runs finish in the order their labels were read.
- **Wake-up**: on PostgreSQL a job that an enqueue makes due now is announced with ``NOTIFY
  galsearch_jobs`` (sent at commit; a coalescing enqueue calls ``pg_notify`` in its own
  ``RETURNING``, and only when it made the job due, not when it joins one due already), which
  idle workers ``LISTEN`` for, so they claim it at once instead of at their next poll; SQLite
  has no notifications and workers poll.
- **Heartbeat / finish / fail / release** are conditional on the claim's ``lease_token``: a
  worker whose lease was taken over changes nothing and learns that it lost the job.

Times are the workers' and web servers' clocks (UTC); they must agree to well within a lease
(NTP does that).
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from server.database import bound_values, dialect_insert, utcnow
from server.jobs.kinds import job_kind
from server.models import Job, JobStatus
from server.models.jobs import JOB_MESSAGE_MAX

log = logging.getLogger(__name__)

QUEUED, RUNNING = JobStatus.QUEUED, JobStatus.RUNNING
NOTIFY_CHANNEL = "galsearch_jobs"  # PostgreSQL LISTEN/NOTIFY channel: "a job is due"
ERROR_MAX_CHARS = 4000


@dataclass(frozen=True)
class ClaimedJob:
    """What a worker holds while it runs a job: the ids a handler needs and the claim's token."""

    id: int
    kind: str
    campaign_id: int | None
    payload: dict[str, Any]
    attempt: int  # 1 for the first claim
    max_attempts: int
    lease_token: str


# -- enqueue -----------------------------------------------------------------------------------
def _dialect(session_or_connection: Session | Connection) -> str:
    if isinstance(session_or_connection, Connection):
        return session_or_connection.dialect.name
    return session_or_connection.get_bind().dialect.name


def _insert_for(session_or_connection: Session | Connection):
    return dialect_insert(_dialect(session_or_connection))


# the columns an enqueue writes, bound by name at execution (:func:`_coalescing_upsert`)
ENQUEUE_COLUMNS = ("kind", "campaign_id", "payload", "status", "coalesce_key", "requests",
                   "run_after", "attempts", "max_attempts", "message", "cancel_requested",
                   "created_by_id", "created_at")


@functools.cache
def _coalescing_upsert(dialect: str, due_by_count: bool):
    """The coalescing upsert of :func:`enqueue`, built once per dialect and form with every value
    a named parameter (``now`` and ``due_after_requests`` too): building it per call cost about
    1 ms of CPU in every label write (the ``excluded`` alias alone makes a proxy per column),
    and one statement object also lets SQLAlchemy reuse its compiled form without recomputing
    a cache key from a new tree."""
    # on the table, not the mapped class: an ORM-enabled insert goes through the ORM's bulk
    # persistence layer, which cost as much CPU as the rest of the upsert
    return coalescing(dialect_insert(dialect)(Job.__table__).values(
        bound_values(Job.__table__, ENQUEUE_COLUMNS)), dialect, due_by_count)


def coalescing(statement, dialect: str, due_by_count: bool):
    """``statement``, an ``INSERT`` of :data:`ENQUEUE_COLUMNS` into the job table (from
    ``VALUES`` or a ``SELECT``), made the coalescing upsert of :func:`enqueue`: it joins the
    queued job of its ``coalesce_key`` (parameters ``now`` and, with ``due_by_count``,
    ``due_after_requests``), and returns the job's id and ``run_after`` (on PostgreSQL it also
    announces a due job)."""
    job = Job.__table__.c
    now = bindparam("now", type_=job.run_after.type)
    total = job.requests + statement.excluded.requests
    whens = [(job.run_after <= now, job.run_after)]  # already due: stays due
    if due_by_count:
        whens.append((total >= bindparam("due_after_requests", type_=Integer), now))
    statement = statement.on_conflict_do_update(
        # the partial index's predicate as a literal: a bound parameter would make PostgreSQL
        # unable to infer the index once psycopg prepares the statement (its 6th run on a
        # connection: "no unique or exclusion constraint matching the ON CONFLICT")
        index_elements=[job.coalesce_key],
        index_where=job.status == literal_column(f"'{QUEUED.value}'"),
        # else: the request's own time, now + delay (the debounce slides) or now
        set_={"requests": total, "run_after": case(*whens, else_=statement.excluded.run_after),
              # someone who asks for it by name becomes who asked
              "created_by_id": func.coalesce(statement.excluded.created_by_id,
                                             job.created_by_id)})
    if dialect == "postgresql":
        # announce in the same statement (one round trip less) a job that this statement made
        # due: its run_after is then this statement's ``now``, while a job due before keeps its
        # earlier time. A job due before was announced when it became due, or is found by the
        # workers' timers. Announcing it again at every label write (while a probe run holds
        # the queued job back, or no worker runs) made each of those commits queue for
        # PostgreSQL's one lock for notifying transactions; in benchmarks/api.py, where no
        # worker claims the job, every write did, and the write p99 did not measurably change
        # without it (58 -> 60 ms, the host faster in the second run).
        return statement.returning(job.id, job.run_after, case(
            (job.run_after == now, func.pg_notify(NOTIFY_CHANNEL, job.kind))).label("announced"))
    return statement.returning(job.id, job.run_after)


def enqueue_values(kind: str, *, now: datetime, campaign_id: int | None = None,
                   payload: dict[str, Any] | None = None, coalesce_key: str | None = None,
                   delay_s: float = 0.0, due_after_requests: int | None = None,
                   requests: int = 1, max_attempts: int | None = None,
                   created_by_id: int | None = None) -> dict[str, Any]:
    """The :data:`ENQUEUE_COLUMNS` of a new job (the arguments and defaults of
    :func:`enqueue`'s)."""
    if max_attempts is None:
        max_attempts = job_kind(kind).max_attempts
    due_now = delay_s <= 0 or (due_after_requests is not None and requests >= due_after_requests)
    return dict(kind=kind, campaign_id=campaign_id, payload=payload or {},
                status=QUEUED, coalesce_key=coalesce_key, requests=requests,
                run_after=now if due_now else now + timedelta(seconds=delay_s),
                attempts=0, max_attempts=max_attempts, message="", cancel_requested=False,
                created_by_id=created_by_id, created_at=now)


def enqueue(session: Session, kind: str, *, campaign_id: int | None = None,
            payload: dict[str, Any] | None = None, coalesce_key: str | None = None,
            delay_s: float = 0.0, due_after_requests: int | None = None, requests: int = 1,
            max_attempts: int | None = None, created_by_id: int | None = None,
            now: datetime | None = None) -> int:
    """Add a job, or join the queued job of the same ``coalesce_key`` (not committed).

    Args:
        session: the caller's session; the job is part of its transaction.
        kind: the job kind (a key of :data:`server.jobs.kinds.JOB_KINDS`).
        campaign_id, payload: what the handler works on.
        coalesce_key: at most one queued job per key (None: never coalesced).
        delay_s: debounce: run no earlier than this many seconds after the latest request.
        due_after_requests: run at once when the job has gathered this many requests.
        requests: how many requests this call stands for (e.g. labels changed).
        max_attempts: claims before the job fails (default: its kind's).
        created_by_id: who asked (None: the system).
        now: the current time (tests).

    Returns:
        the id of the queued job.

    Raises:
        ValueError: an unknown kind.
    """
    now = now or utcnow()
    values = enqueue_values(kind, campaign_id=campaign_id, payload=payload,
                            coalesce_key=coalesce_key, delay_s=delay_s,
                            due_after_requests=due_after_requests, requests=requests,
                            max_attempts=max_attempts, created_by_id=created_by_id, now=now)
    if coalesce_key is None:
        row = session.execute(insert(Job).values(**values).returning(Job.id, Job.run_after)).one()
        _announce(session, kind, row.run_after, now)
        return row.id
    dialect = _dialect(session)
    statement = _coalescing_upsert(dialect, due_after_requests is not None)
    row = session.execute(statement, {**values, "now": now,
                                      "due_after_requests": due_after_requests}).one()
    if dialect != "postgresql":  # PostgreSQL's upsert announced it itself
        _announce(session, kind, row.run_after, now)
    return row.id


def _announce(session: Session | Connection, kind: str, run_after: datetime,
              now: datetime) -> None:
    """Wake idle workers at once when a job is due now (PostgreSQL ``NOTIFY``, delivered when
    the transaction commits); SQLite workers find it at their next poll."""
    if run_after <= now and _dialect(session) == "postgresql":
        session.execute(select(func.pg_notify(NOTIFY_CHANNEL, kind)))


# -- claim -------------------------------------------------------------------------------------
def _claimable(kinds: Sequence[str], now: datetime):
    other = aliased(Job)
    sibling_running = exists().where(other.coalesce_key == Job.coalesce_key,
                                     other.status == RUNNING, other.id != Job.id,
                                     other.lease_expires_at >= now)
    return and_(
        Job.kind.in_(list(kinds)),
        Job.attempts < Job.max_attempts,
        or_(and_(Job.status == QUEUED, Job.run_after <= now, ~sibling_running),
            and_(Job.status == RUNNING, Job.lease_expires_at < now)),
    )


def claim(connection: Connection, kinds: Sequence[str], worker: str, lease_s: float,
          now: datetime | None = None) -> ClaimedJob | None:
    """Claim the oldest due job of ``kinds`` for ``worker`` (commit follows in the caller's
    ``engine.begin()`` block, of which this must be the first statement)."""
    now = now or utcnow()
    token = secrets.token_hex(16)
    target = (select(Job.id).where(_claimable(kinds, now)).order_by(Job.run_after, Job.id)
              .limit(1).with_for_update(skip_locked=True).scalar_subquery())
    row = connection.execute(
        update(Job).where(Job.id == target)
        .values(status=RUNNING, attempts=Job.attempts + 1, worker=worker[:200],
                lease_token=token, lease_expires_at=now + timedelta(seconds=lease_s),
                heartbeat_at=now, started_at=func.coalesce(Job.started_at, now),
                progress=None, message="started", cancel_requested=False)
        .returning(Job.id, Job.kind, Job.campaign_id, Job.payload, Job.attempts,
                   Job.max_attempts)
    ).first()
    if row is None:
        return None
    return ClaimedJob(row.id, row.kind, row.campaign_id, dict(row.payload or {}), row.attempts,
                      row.max_attempts, token)


@dataclass(frozen=True)
class Peek:
    claimable: bool  # a job could be claimed now
    exhausted: bool  # a running job's last lease expired (for fail_exhausted)


def peek(connection: Connection, kinds: Sequence[str], now: datetime | None = None) -> Peek:
    """Whether there is anything to do, by reading only: an idle worker's poll then takes no
    write lock (SQLite has one for the whole database)."""
    now = now or utcnow()
    claimable = connection.execute(select(exists().where(_claimable(kinds, now)))).scalar()
    exhausted = connection.execute(select(exists().where(_exhausted(kinds, now)))).scalar()
    return Peek(bool(claimable), bool(exhausted))


def _exhausted(kinds: Iterable[str], now: datetime):
    return and_(Job.kind.in_(list(kinds)), Job.status == RUNNING, Job.lease_expires_at < now,
                Job.attempts >= Job.max_attempts)


def fail_exhausted(connection: Connection, kinds: Iterable[str],
                   now: datetime | None = None) -> int:
    """Fail running jobs whose lease expired after their last allowed attempt; returns how many."""
    now = now or utcnow()
    result = connection.execute(
        update(Job).where(_exhausted(kinds, now))
        .values(status=JobStatus.FAILED, finished_at=now, lease_token=None,
                lease_expires_at=None,
                error="the worker running this job stopped responding (its lease expired) on "
                      "each of its attempts; see the worker's log, then ask for it again"))
    return result.rowcount


def next_due(connection: Connection, kinds: Sequence[str]) -> datetime | None:
    """When the next queued job of ``kinds`` becomes due (None: none is queued)."""
    return connection.execute(select(func.min(Job.run_after)).where(
        Job.kind.in_(list(kinds)), Job.status == QUEUED)).scalar()


# -- while running -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Beat:
    held: bool  # the lease is still ours
    cancel_requested: bool


def heartbeat(connection: Connection, job: ClaimedJob, lease_s: float,
              progress: float | None, message: str, now: datetime | None = None) -> Beat:
    """Renew the lease and record progress; says whether the lease is still held."""
    now = now or utcnow()
    row = connection.execute(
        update(Job).where(Job.id == job.id, Job.lease_token == job.lease_token,
                          Job.status == RUNNING)
        .values(lease_expires_at=now + timedelta(seconds=lease_s), heartbeat_at=now,
                progress=progress, message=message[:JOB_MESSAGE_MAX])
        .returning(Job.cancel_requested)).first()
    return Beat(row is not None, bool(row and row.cancel_requested))


def _held(job: ClaimedJob):
    return and_(Job.id == job.id, Job.lease_token == job.lease_token, Job.status == RUNNING)


_ENDED = dict(lease_token=None, lease_expires_at=None)


def mark_succeeded(session: Session, job: ClaimedJob, result: dict[str, Any] | None,
                   now: datetime | None = None) -> bool:
    """Mark the job succeeded if its lease is still ours (not committed: the handler's rows are
    added to the same transaction). Returns False when the lease was lost."""
    now = now or utcnow()
    done = session.execute(update(Job).where(_held(job)).values(
        status=JobStatus.SUCCEEDED, finished_at=now, progress=1.0, message="done",
        result=result, error=None, **_ENDED))
    return done.rowcount == 1


def set_result(session: Session, job: ClaimedJob, result: dict[str, Any]) -> None:
    """Replace the result of a job just marked succeeded (same transaction)."""
    session.execute(update(Job).where(Job.id == job.id).values(result=result))


def mark_failed(connection: Connection, job: ClaimedJob, error: str, retry: bool,
                retry_delay_s: float = 0.0, now: datetime | None = None) -> JobStatus | None:
    """End a failed attempt: queued again (``retry`` and attempts left) or failed with
    ``error``. Returns the new status (None: the lease was lost, nothing changed)."""
    now = now or utcnow()
    error = error[:ERROR_MAX_CHARS]
    if retry and job.attempt < job.max_attempts:
        return _requeue(connection, job, now + timedelta(seconds=retry_delay_s), error=error,
                        message=f"attempt {job.attempt} failed; will retry")
    done = connection.execute(update(Job).where(_held(job)).values(
        status=JobStatus.FAILED, finished_at=now, error=error, message="failed", **_ENDED))
    return JobStatus.FAILED if done.rowcount else None


def mark_cancelled(connection: Connection, job: ClaimedJob, message: str,
                   now: datetime | None = None) -> bool:
    now = now or utcnow()
    done = connection.execute(update(Job).where(_held(job)).values(
        status=JobStatus.CANCELLED, finished_at=now, message=message[:JOB_MESSAGE_MAX],
        **_ENDED))
    return done.rowcount == 1


def release(connection: Connection, job: ClaimedJob, now: datetime | None = None) -> bool:
    """Give a job back unfinished (the worker is shutting down): queued again at once, this
    claim not counted. Returns False when the lease was already lost."""
    now = now or utcnow()
    released = _requeue(connection, job, now, error=None, message="released by a stopping worker",
                        uncount=True)
    if released == QUEUED:
        _announce(connection, job.kind, now, now)
    return released is not None


def _requeue(connection: Connection, job: ClaimedJob, run_after: datetime, error: str | None,
             message: str, uncount: bool = False) -> JobStatus | None:
    """Queue a held job again; when a newer job of its key is queued meanwhile (the unique
    index refuses a second), that one covers this work and this one is cancelled."""
    values: dict[str, Any] = dict(status=QUEUED, run_after=run_after, message=message,
                                  error=error, **_ENDED)
    if uncount:
        values["attempts"] = Job.attempts - 1
    try:
        with connection.begin_nested():
            done = connection.execute(update(Job).where(_held(job)).values(**values))
        return QUEUED if done.rowcount else None
    except IntegrityError:
        ok = mark_cancelled(connection, job, "superseded by a newer queued job of the same work")
        return JobStatus.CANCELLED if ok else None


# -- from the API ------------------------------------------------------------------------------
def request_cancel(session: Session, job_id: int, now: datetime | None = None) -> JobStatus:
    """Cancel a queued job at once, or ask a running one to stop (not committed).

    Returns:
        the job's status after the call (finished jobs are left as they are).
    """
    now = now or utcnow()
    cancelled = session.execute(update(Job).where(Job.id == job_id, Job.status == QUEUED).values(
        status=JobStatus.CANCELLED, finished_at=now, message="cancelled before it started"))
    if cancelled.rowcount:
        return JobStatus.CANCELLED
    session.execute(update(Job).where(Job.id == job_id, Job.status == RUNNING)
                    .values(cancel_requested=True))
    return session.execute(select(Job.status).where(Job.id == job_id)).scalar_one()
