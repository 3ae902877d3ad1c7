"""Background jobs: one table for every kind of work done outside requests (probe runs, exports).

A :class:`Job` row is the whole state of one piece of background work. Its life:

    queued ──claim──▶ running ──▶ succeeded | failed | cancelled
      ▲                  │
      └── lease expired, │ worker stopped (SIGTERM) before finishing: released
          claimed again  ┘

- ``run_after``: a queued job is not claimed before this time (the debounce of probe runs).
- ``coalesce_key``: at most one *queued* job per key, enforced by a partial unique index (e.g.
  ``probe:campaign:7``: however many labels arrive, one run waits). Requests that find a queued
  job of their key join it (``requests`` counts them) instead of adding another.
- Lease: the claiming worker writes its name, a fresh ``lease_token`` and ``lease_expires_at``;
  a heartbeat thread pushes the expiry forward while the handler runs. A job whose lease has
  expired (its worker died) is claimed again, up to ``max_attempts`` claims, then fails. Every
  write by the worker is conditional on its token, so a worker that lost its lease can neither
  finish nor overwrite the job.
- ``progress`` (0..1) and ``message`` say how far a running job is; ``error`` why it failed;
  ``result`` is the handler's small JSON summary (e.g. the probe version it made).
- ``cancel_requested``: asked for while running; the handler stops at its next check.

Claiming, leases and coalescing are in :mod:`server.jobs.queue`.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.database import utcnow
from server.extensions import db
from server.models.labels import BigId
from server.models.users import User

JOB_KIND_MAX = 32
COALESCE_KEY_MAX = 100
WORKER_NAME_MAX = 200
JOB_MESSAGE_MAX = 500


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(db.Model):
    __tablename__ = "jobs"
    __table_args__ = (
        # what a worker asks: due queued jobs and expired leases, oldest first
        Index(None, "status", "run_after"),
        # a campaign's jobs of a kind, newest first (the API)
        Index(None, "campaign_id", "kind", "id"),
        # coalescing: one queued job per key, enforced by the database
        Index("uq_jobs_queued_coalesce_key", "coalesce_key", unique=True,
              postgresql_where=text("status = 'queued'"),
              sqlite_where=text("status = 'queued'")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(JOB_KIND_MAX))
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, name="job_status", native_enum=False, create_constraint=True,
             length=16, values_callable=lambda members: [m.value for m in members],
             validate_strings=True),
        default=JobStatus.QUEUED)
    coalesce_key: Mapped[str | None] = mapped_column(String(COALESCE_KEY_MAX))
    requests: Mapped[int] = mapped_column(Integer, default=1)  # requests coalesced into it
    run_after: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims so far
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    worker: Mapped[str | None] = mapped_column(String(WORKER_NAME_MAX))  # host:pid of the claimer
    lease_token: Mapped[str | None] = mapped_column(String(32))  # fresh per claim
    lease_expires_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    progress: Mapped[float | None] = mapped_column(Float)  # 0..1
    message: Mapped[str] = mapped_column(String(JOB_MESSAGE_MAX), default="")
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None]
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]  # the first claim
    finished_at: Mapped[datetime | None]

    created_by: Mapped[User | None] = relationship()

    @property
    def created_by_name(self) -> str | None:
        return None if self.created_by is None else self.created_by.username

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.kind} {self.status.value}>"
