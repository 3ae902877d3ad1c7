"""What a campaign's probe learns from: :func:`training_labels`, the one source of its labels.

Labels are per user. Until campaigns derive a consensus, an object is a positive when someone
accepted it and nobody rejected it, a negative when someone rejected it and nobody accepted it,
and disputed (left out, and never drawn as a weak negative) when people disagree; ``unsure``
labels count for neither class. A campaign's object and sky seeds are positives unless someone
rejected them; uploaded-cutout seeds add their vectors (when made by the bundle's model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select

from server.extensions import db
from server.models import CampaignSeed, Label, LabelHistory, LabelValue, SeedKind


@dataclass(frozen=True)
class CampaignLabels:
    positive: np.ndarray  # object ids, int64 ascending
    negative: np.ndarray
    disputed: np.ndarray
    watermark: int  # the newest label_history id these labels include (0: none)


def label_watermark(campaign_id: int) -> int:
    """The newest label_history id of the campaign (0: no label yet)."""
    return int(db.session.scalar(select(func.coalesce(func.max(LabelHistory.id), 0))
                                 .where(LabelHistory.campaign_id == campaign_id)))


def training_labels(campaign_id: int) -> CampaignLabels:
    """The campaign's accept and reject labels as the probe's two classes (module docstring)."""
    watermark = label_watermark(campaign_id)  # first: the labels read next include it
    rows = db.session.execute(select(Label.object_id, Label.value).where(
        Label.campaign_id == campaign_id,
        Label.value.in_([LabelValue.ACCEPT, LabelValue.REJECT]))).all()
    accepted = np.array([r.object_id for r in rows if r.value == LabelValue.ACCEPT], np.int64)
    rejected = np.array([r.object_id for r in rows if r.value == LabelValue.REJECT], np.int64)
    disputed = np.intersect1d(accepted, rejected)
    return CampaignLabels(np.setdiff1d(accepted, disputed), np.setdiff1d(rejected, disputed),
                          disputed, watermark)


@dataclass(frozen=True)
class SeedPositives:
    object_ids: np.ndarray  # seeds that are survey objects, int64
    vectors: np.ndarray  # (m, d) float32 uploaded-cutout seeds usable with the bundle


def seed_positives(campaign_id: int, n_objects: int, dim: int,
                   model_sha256: str | None) -> SeedPositives:
    """The campaign's seeds usable as positives with a bundle of ``n_objects`` x ``dim``
    vectors made by the model ``model_sha256``."""
    seeds = db.session.scalars(select(CampaignSeed).where(
        CampaignSeed.campaign_id == campaign_id)).all()
    ids = [s.object_id for s in seeds if s.kind != SeedKind.VECTOR and s.object_id is not None
           and 0 <= s.object_id < n_objects]
    vectors = [np.frombuffer(s.vector, dtype="<f4") for s in seeds
               if s.kind == SeedKind.VECTOR and s.vector_model_sha256 == model_sha256
               and s.vector_dim == dim]
    return SeedPositives(np.unique(np.array(ids, dtype=np.int64)),
                         np.array(vectors, dtype=np.float32).reshape(-1, dim))
