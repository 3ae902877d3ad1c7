"""Schemas of background jobs (probe runs, exports): their state as the API shows it."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Boolean, DateTime, Dict, Enum, Float, Integer, Nested, String
from apiflask.validators import OneOf, Range

from server.jobs.kinds import JOB_KINDS
from server.models.jobs import JobStatus

JOB_PAGE_MAX = 100


class JobRecord(Schema):
    """A job's state (nested in pages and in the probe's state)."""

    id = Integer(required=True)
    kind = String(required=True, metadata={"description": "what the job does: "
                                                          + ", ".join(JOB_KINDS)})
    campaign_id = Integer(allow_none=True)
    status = Enum(JobStatus, by_value=True, required=True, metadata={
        "description": "queued, running, succeeded, failed or cancelled"})
    progress = Float(allow_none=True, metadata={"description": "0..1 while running"})
    message = String(required=True, metadata={"description": "what it is doing or did last"})
    error = String(allow_none=True, metadata={
        "description": "why it failed (or why its last attempt failed, when it will retry)"})
    result = Dict(allow_none=True, metadata={"description": "what it made, e.g. the probe "
                                                            "version"})
    requests = Integer(required=True, metadata={
        "description": "requests coalesced into this job (e.g. label changes)"})
    attempts = Integer(required=True)
    max_attempts = Integer(required=True)
    worker = String(allow_none=True, metadata={"description": "host:pid that ran it last"})
    cancel_requested = Boolean(required=True)
    created_by = String(allow_none=True, attribute="created_by_name",
                        metadata={"description": "who asked (null: label changes)"})
    run_after = DateTime(required=True, metadata={"description": "not started before this"})
    created_at = DateTime(required=True)
    started_at = DateTime(allow_none=True)
    heartbeat_at = DateTime(allow_none=True)
    lease_expires_at = DateTime(allow_none=True, metadata={
        "description": "running: claimed again by another worker after this unless renewed"})
    finished_at = DateTime(allow_none=True)



class JobOut(JobRecord):
    """A job, as the endpoints that act on one answer (a schema of its own: apispec registers
    a nested schema under its own name)."""


class JobPageQuery(Schema):
    kind = String(validate=OneOf(list(JOB_KINDS)))
    before = Integer(validate=Range(min=1, max=2**63 - 1), metadata={  # a BIGINT id
        "description": "cursor: the next_before of the previous page (newest first)"})
    limit = Integer(load_default=20, validate=Range(1, JOB_PAGE_MAX))


class JobPageOut(Schema):
    items = Nested(JobRecord, many=True, required=True)
    next_before = Integer(allow_none=True, metadata={
        "description": "pass as 'before' for the next (older) page; null: no older jobs"})
