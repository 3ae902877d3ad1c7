"""What a campaign's probe learns from: :func:`training_labels`, the one source of its labels.

The probe trains on the campaign's consensus (:mod:`server.teams.consensus`): an object is a
positive when its consensus is accept, a negative when it is reject, and disputed (left out,
and never drawn as a weak negative) when it has votes but no accept/reject consensus (an
``unsure`` majority, a tie under the campaign's tie rule, or fewer votes than its minimum).
Labels imported from a named source count through the consensus, for objects the team has not
voted on enough. A campaign's object and sky seeds are positives unless the consensus rejects
them or disputes them; uploaded-cutout seeds add their vectors (when made by the bundle's
model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select

from server.extensions import db
from server.models import Campaign, CampaignSeed, LabelHistory, LabelValue, SeedKind
from server.teams.consensus import consensus_select
from server.teams.rules import TeamRules


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
    """The campaign's consensus as the probe's two classes (module docstring)."""
    watermark = label_watermark(campaign_id)  # first: the labels read next include it
    settings = db.session.scalar(select(Campaign.settings).where(Campaign.id == campaign_id))
    rows = consensus_select(campaign_id, TeamRules.of(settings)).subquery()
    result = db.session.execute(select(rows.c.object_id, rows.c.consensus)).all()

    def ids(keep) -> np.ndarray:
        return np.array(sorted(r.object_id for r in result if keep(r.consensus)), np.int64)

    return CampaignLabels(ids(lambda v: v == LabelValue.ACCEPT),
                          ids(lambda v: v == LabelValue.REJECT),
                          ids(lambda v: v not in (LabelValue.ACCEPT, LabelValue.REJECT)),
                          watermark)


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
