"""Which order a campaign's candidate pages take: the newest probe, else similarity.

Once a campaign has a probe trained on the server's bundle, its candidate pages follow the
newest such probe (version by version, as the worker finishes them) under the campaign's
strategy (``probe_strategy``, or the request's ``strategy``): :class:`ml.probe.ProbeOrder`.
Before that, and for a probe of another bundle, they follow similarity to the seeds
(:class:`server.candidates.SimilarityOrder`). The catalog filters apply to both; the
magnitude window is a similarity-to-a-seed notion and applies to similarity pages only.

A cursor names the probe version that ordered its page: once a newer version exists it is
refused as stale (409) and the client starts again from the first page, which the new probe
orders. Restarting is what a labeler wants: the point of retraining is that the next page
holds the new best candidates, and objects labeled meanwhile are left out either way.

A page finds the newest probe's id in the same round trip as the campaign's labeled objects
(:func:`newest_probe_id`, a subquery), and reads the probe run itself only when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import BindParameter, ScalarSelect, select

from ml.index import SearchBundle
from ml.probe import ProbeOrder
from server.candidates import Ranking, SimilarityOrder
from server.extensions import db
from server.models import ProbeRun


def bundle_sha256(bundle: SearchBundle) -> str:
    """The bundle's identity for probes: the sha256 of its manifest (which holds every file's
    checksum), as it was when the bundle was opened."""
    return bundle.manifest_sha256


def newest_probe_id(campaign_id: int | BindParameter, bundle_hash: str | BindParameter
                    ) -> ScalarSelect:
    """A subquery: the id of the campaign's newest probe run on the bundle of ``bundle_hash``
    (NULL: none)."""
    return (select(ProbeRun.id)
            .where(ProbeRun.campaign_id == campaign_id, ProbeRun.bundle_sha256 == bundle_hash)
            .order_by(ProbeRun.version.desc()).limit(1).scalar_subquery())


def newest_probe(probe_id: int | None) -> ProbeRun | None:
    """The probe run of ``probe_id`` from :func:`newest_probe_id` (None: none, or deleted since
    with its campaign)."""
    return None if probe_id is None else db.session.get(ProbeRun, probe_id)


def current_probe(campaign_id: int, bundle_hash: str) -> ProbeRun | None:
    """The campaign's newest probe trained on the bundle of ``bundle_hash``."""
    return db.session.scalars(
        select(ProbeRun).where(ProbeRun.id == newest_probe_id(campaign_id, bundle_hash))).first()


@dataclass(frozen=True)
class CandidateOrder:
    """The order of a campaign's pages: ``order`` (for :func:`server.candidates.page`), and
    the probe run and strategy behind it (None: similarity)."""

    order: SimilarityOrder | ProbeOrder
    run: ProbeRun | None
    strategy: str | None

    def shown_scores(self, ids: np.ndarray, values: np.ndarray) -> np.ndarray:
        """What a page shows as each object's score: the probe's probability, or the cosine."""
        if self.run is None:
            return values
        return self.order.probability(ids)


def probe_order(run: ProbeRun, bundle: SearchBundle, strategy: str,
                allowed: np.ndarray | None, filter_key: str,
                never: np.ndarray | None = None) -> ProbeOrder:
    """The order of probe ``run`` (objects ``never`` left out: the seeds)."""
    return ProbeOrder(bundle, run.weights, run.intercept, strategy, allowed,
                      key=f"{run.campaign_id}:v{run.version}", filter_key=filter_key,
                      never=() if never is None else never)


def candidate_order(run: ProbeRun | None, bundle: SearchBundle, ranking: Ranking,
                    strategy: str) -> CandidateOrder:
    """The order of the campaign's candidate pages given its newest probe run on the bundle
    (None: it has none; module docstring)."""
    if run is None:
        return CandidateOrder(SimilarityOrder(bundle, ranking), None, None)
    seeds = np.array([s.object_id for s in ranking.seeds if s.object_id is not None],
                     dtype=np.int64)
    return CandidateOrder(probe_order(run, bundle, strategy, ranking.allowed,
                                      ranking.filter_key, seeds), run, strategy)
