"""When a campaign's probe is retrained: label changes mark it, "retrain now" asks at once.

:func:`mark_for_retraining` is called by :mod:`server.labeling` inside every label write's
transaction. It joins the campaign's queued probe job or adds one (one queued run per campaign,
enforced by the job table's partial unique index), debounced: the run becomes due
``PROBE_DEBOUNCE_S`` seconds after the latest label change, or at once when
``PROBE_DEBOUNCE_LABELS`` changes have gathered (:func:`server.jobs.queue.enqueue`). A run
already in progress is not disturbed: the new run waits for it and then reads the new labels.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app

from server.extensions import db
from server.jobs.queue import enqueue, enqueue_values
from server.sources import sources

PROBE_KIND = "probe"


def coalesce_key(campaign_id: int) -> str:
    return f"{PROBE_KIND}:campaign:{campaign_id}"


def _retraining(campaign_id: int, changes: int) -> dict[str, Any] | None:
    """The arguments of the retraining job's enqueue (None: no bundle to train on)."""
    app = current_app
    if sources(app).bundle is None:
        return None
    return dict(campaign_id=campaign_id, coalesce_key=coalesce_key(campaign_id),
                delay_s=app.config["PROBE_DEBOUNCE_S"],
                due_after_requests=app.config["PROBE_DEBOUNCE_LABELS"], requests=changes)


def mark_for_retraining(campaign_id: int, changes: int) -> int | None:
    """Note ``changes`` label changes of the campaign (in the caller's transaction).

    Returns:
        the queued probe job's id, or None when the server has no bundle to train on.
    """
    job = _retraining(campaign_id, changes)
    return None if job is None else enqueue(db.session, PROBE_KIND, **job)


def retraining_values(campaign_id: int, changes: int, now: datetime) -> dict[str, Any] | None:
    """The parameters of :func:`mark_for_retraining`'s upsert (``ENQUEUE_COLUMNS``, ``now`` and
    ``due_after_requests``), for a statement that runs it itself
    (:mod:`server.labeling_fast`); None when the server has no bundle to train on."""
    job = _retraining(campaign_id, changes)
    if job is None:
        return None
    return (enqueue_values(PROBE_KIND, now=now, **job)
            | {"now": now, "due_after_requests": job["due_after_requests"]})


def retrain_now(campaign_id: int, user_id: int | None) -> int:
    """Queue a probe run due at once (joining a queued one); returns its id (not committed)."""
    return enqueue(db.session, PROBE_KIND, campaign_id=campaign_id,
                   coalesce_key=coalesce_key(campaign_id), delay_s=0, created_by_id=user_id)
