"""``/api/campaigns/{id}/jobs``: a campaign's background jobs (probe runs, exports)."""

from __future__ import annotations

from apiflask import APIBlueprint, abort
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from server.auth.access import campaign_access
from server.auth.identity import SIGNED_IN
from server.extensions import db
from server.jobs.queue import request_cancel
from server.models import Job, Role
from server.schemas.jobs import JobOut, JobPageOut, JobPageQuery

bp = APIBlueprint("jobs", __name__, url_prefix="/api/campaigns/<int:campaign_id>/jobs",
                  tag="Jobs")


def campaign_job(campaign_id: int, job_id: int) -> Job:
    """The campaign's job ``job_id``, or 404."""
    job = db.session.scalar(select(Job).where(Job.id == job_id, Job.campaign_id == campaign_id)
                            .options(selectinload(Job.created_by)))
    if job is None:
        abort(404, f"campaign {campaign_id} has no job {job_id}")
    return job


@bp.get("")
@bp.input(JobPageQuery, location="query", arg_name="query")
@bp.output(JobPageOut)
@bp.doc(security=SIGNED_IN)
def list_jobs(campaign_id: int, query: dict) -> dict:
    """The campaign's jobs (members)

    Newest first, optionally of one kind.
    """
    campaign_access(campaign_id, Role.VIEWER)
    statement = select(Job).where(Job.campaign_id == campaign_id).options(
        selectinload(Job.created_by))
    if "kind" in query:
        statement = statement.where(Job.kind == query["kind"])
    if "before" in query:
        statement = statement.where(Job.id < query["before"])
    jobs = list(db.session.scalars(statement.order_by(Job.id.desc()).limit(query["limit"] + 1)))
    more = len(jobs) > query["limit"]
    jobs = jobs[:query["limit"]]
    return {"items": jobs, "next_before": jobs[-1].id if more else None}


@bp.get("/<int:job_id>")
@bp.output(JobOut)
@bp.doc(security=SIGNED_IN)
def get(campaign_id: int, job_id: int) -> Job:
    """One job (members)

    Its status, progress, error and result. Poll it while it is queued or running.
    """
    campaign_access(campaign_id, Role.VIEWER)
    return campaign_job(campaign_id, job_id)


@bp.post("/<int:job_id>/cancel")
@bp.output(JobOut)
@bp.doc(security=SIGNED_IN, responses=[403])
def cancel(campaign_id: int, job_id: int) -> Job:
    """Cancel a job (owners)

    A queued job is cancelled at once; a running one is asked to stop and ends `cancelled`
    at its next step. A finished job is left as it is.
    """
    campaign_access(campaign_id, Role.OWNER)
    campaign_job(campaign_id, job_id)
    request_cancel(db.session, job_id)
    db.session.commit()
    return campaign_job(campaign_id, job_id)
