"""Schemas of a campaign's probe: its state, its runs (versions) and their metrics."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import DateTime, Dict, Float, Integer, List, Nested, String
from apiflask.validators import Range

from ml.probe import STRATEGIES
from server.schemas.jobs import JobRecord

RUN_PAGE_MAX = 100


class ProbeRunOut(Schema):
    version = Integer(required=True, metadata={"description": "1, 2, ... per campaign"})
    created_at = DateTime(required=True)
    job_id = Integer(allow_none=True, metadata={"description": "the job that trained it"})
    bundle_sha256 = String(required=True, metadata={
        "description": "sha256 of the search bundle's manifest it was trained on"})
    representation = String(required=True)
    dim = Integer(required=True)
    C = Float(required=True, metadata={"description": "inverse regularisation strength"})
    intercept = Float(required=True)
    n_positive = Integer(required=True, metadata={"description": "accepted objects and seeds"})
    n_negative = Integer(required=True, metadata={"description": "rejected objects"})
    n_unlabeled = Integer(required=True, metadata={"description": "weak negatives drawn"})
    unlabeled_weight = Float(required=True)
    label_watermark = Integer(required=True, metadata={
        "description": "the newest label-history id it learned from"})
    metrics = Dict(required=True, metadata={
        "description": "cv: cross-validated roc_auc (mean over folds), precision_at_top (of "
                       "the held-out labels, k = positives), folds, roc_auc_by_c; null with "
                       "cv_skipped when there were too few labels; C, c_chosen_by, converged, "
                       "label counts"})
    timings = Dict(required=True, metadata={"description": "seconds per step"})


class ProbeRunDetailOut(ProbeRunOut):
    coef = List(Float(), required=True, metadata={
        "description": "the weights w: p = sigmoid(w . x + intercept) on the bundle's unit "
                       "vectors"})


class ProbeStatusOut(Schema):
    strategy = String(required=True, metadata={
        "description": "the campaign's candidate order once a probe exists: "
                       + ", ".join(STRATEGIES)})
    unlabeled_weight = Float(required=True)
    current = Nested(ProbeRunOut, allow_none=True, metadata={
        "description": "the probe that orders candidate pages now (the newest trained on "
                       "this server's bundle); null: pages follow similarity to the seeds"})
    label_changes_since = Integer(required=True, metadata={
        "description": "label changes made after the current probe read its labels"})
    job = Nested(JobRecord, allow_none=True, metadata={
        "description": "the campaign's latest probe job: queued, running, or how it ended "
                       "(a failed job's error says why, e.g. no rejected object yet)"})


class ProbeRunPageQuery(Schema):
    before = Integer(validate=Range(min=1, max=2**31 - 1), metadata={  # an INTEGER version
        "description": "cursor: the next_before of the previous page (newest first)"})
    limit = Integer(load_default=20, validate=Range(1, RUN_PAGE_MAX))


class ProbeRunPageOut(Schema):
    items = Nested(ProbeRunOut, many=True, required=True)
    next_before = Integer(allow_none=True, metadata={
        "description": "pass as 'before' for the next (older) page; null: no older runs"})
