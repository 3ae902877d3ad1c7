"""``/api/campaigns/{id}/probe``: the campaign's probe (state, versions, metrics) and retraining.

The probe's strategy and the weight of unlabeled objects are campaign settings
(``probe_strategy``, ``probe_unlabeled_weight``: ``PATCH /api/campaigns/{id}``); a candidates
request may also ask for a strategy of its own (``?strategy=``).
"""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint, abort
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from server.auth.access import campaign_access
from server.auth.identity import SIGNED_IN, current_user
from server.extensions import db
from server.models import Job, LabelHistory, ProbeRun, Role
from server.probe.schedule import PROBE_KIND, retrain_now
from server.probe.serving import bundle_sha256, current_probe
from server.probe.settings import ProbeCampaignSettings
from server.schemas.jobs import JobOut
from server.schemas.probe import (
    ProbeRunDetailOut,
    ProbeRunPageOut,
    ProbeRunPageQuery,
    ProbeStatusOut,
)
from server.sources import current_bundle

bp = APIBlueprint("probe", __name__, url_prefix="/api/campaigns/<int:campaign_id>/probe",
                  tag="Probe")


def latest_probe_job(campaign_id: int) -> Job | None:
    return db.session.scalars(
        select(Job).where(Job.campaign_id == campaign_id, Job.kind == PROBE_KIND)
        .options(selectinload(Job.created_by)).order_by(Job.id.desc()).limit(1)).first()


@bp.get("")
@bp.output(ProbeStatusOut)
@bp.doc(security=SIGNED_IN, responses={503: "the server has no search bundle"})
def status(campaign_id: int) -> dict[str, Any]:
    """The campaign's probe (members)

    The probe that orders the candidate pages now (with its cross-validated metrics), how many
    label changes it has not seen, and the latest probe job: queued, running (with progress),
    or how it ended. A job that could not train says why in `error`.
    """
    campaign, _ = campaign_access(campaign_id, Role.VIEWER)
    settings = ProbeCampaignSettings.of(campaign.settings)
    run = current_probe(campaign_id, bundle_sha256(current_bundle()))
    unseen = db.session.scalar(select(func.count()).select_from(LabelHistory).where(
        LabelHistory.campaign_id == campaign_id,
        LabelHistory.id > (run.label_watermark if run else 0)))
    return {"strategy": settings.strategy, "unlabeled_weight": settings.unlabeled_weight,
            "current": run, "label_changes_since": unseen, "job": latest_probe_job(campaign_id)}


@bp.get("/runs")
@bp.input(ProbeRunPageQuery, location="query", arg_name="query")
@bp.output(ProbeRunPageOut)
@bp.doc(security=SIGNED_IN)
def runs(campaign_id: int, query: dict) -> dict[str, Any]:
    """The campaign's probe versions (members)

    Newest first, with their metrics: how the probe improved as labels came in.
    """
    campaign_access(campaign_id, Role.VIEWER)
    statement = select(ProbeRun).where(ProbeRun.campaign_id == campaign_id)
    if "before" in query:
        statement = statement.where(ProbeRun.version < query["before"])
    items = list(db.session.scalars(statement.order_by(ProbeRun.version.desc())
                                    .limit(query["limit"] + 1)))
    more = len(items) > query["limit"]
    items = items[:query["limit"]]
    return {"items": items, "next_before": items[-1].version if more else None}


@bp.get("/runs/<int:version>")
@bp.output(ProbeRunDetailOut)
@bp.doc(security=SIGNED_IN)
def run(campaign_id: int, version: int) -> dict[str, Any]:
    """One probe version with its weights (members)"""
    campaign_access(campaign_id, Role.VIEWER)
    found = db.session.scalar(select(ProbeRun).where(ProbeRun.campaign_id == campaign_id,
                                                     ProbeRun.version == version))
    if found is None:
        abort(404, f"campaign {campaign_id} has no probe version {version}")
    body = {column.key: getattr(found, column.key) for column in ProbeRun.__table__.columns
            if column.key != "coef"}
    return {**body, "coef": found.weights.tolist()}


@bp.post("/retrain")
@bp.output(JobOut, status_code=202)
@bp.doc(security=SIGNED_IN, responses={403: "viewers may not retrain",
                                       503: "the server has no search bundle"})
def retrain(campaign_id: int) -> Job:
    """Retrain the probe now (labelers)

    Queues a probe run due at once (or makes the queued one due), without waiting for the
    debounce of label changes. Answers with the job: poll `GET .../jobs/{id}` or this
    campaign's probe for its outcome.
    """
    campaign_access(campaign_id, Role.LABELER)
    current_bundle()  # 503 without one: nothing to train on
    job_id = retrain_now(campaign_id, current_user().id)
    db.session.commit()
    return db.session.scalar(select(Job).where(Job.id == job_id)
                             .options(selectinload(Job.created_by)))
