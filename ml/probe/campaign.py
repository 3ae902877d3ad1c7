"""A campaign's probe from its labels and seeds: the one recipe the worker and the benchmarks
follow (:func:`train_probe`).

Positives are the accepted objects and the campaign's seeds (object seeds by id, uploaded
cutouts by vector), except seeds someone rejected or disputed; negatives are the rejected
objects. Unlabeled objects drawn as weak negatives never include labeled, disputed or seed
objects. The draw's seed and the folds' seed are given, so a run can be repeated exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ml.probe.data import (
    DEFAULT_UNLABELED_COUNT,
    DEFAULT_UNLABELED_WEIGHT,
    assemble_training_set,
)
from ml.probe.fit import Probe, ProbeSettings, fit_probe


def _ids(values) -> np.ndarray:
    return np.unique(np.asarray(values, dtype=np.int64))


@dataclass(frozen=True)
class ProbeLabels:
    """What a probe learns from: object ids (any order) and uploaded seeds' vectors (m, d)."""

    accepted: np.ndarray
    rejected: np.ndarray
    disputed: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    seed_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    seed_vectors: np.ndarray | None = None

    def positive_ids(self) -> np.ndarray:
        seeds = np.setdiff1d(_ids(self.seed_ids), np.union1d(_ids(self.rejected),
                                                             _ids(self.disputed)))
        return np.union1d(_ids(self.accepted), seeds)


def train_probe(bundle, labels: ProbeLabels,
                unlabeled_count: int = DEFAULT_UNLABELED_COUNT,
                unlabeled_weight: float = DEFAULT_UNLABELED_WEIGHT,
                settings: ProbeSettings | None = None, seed: int = 0) -> Probe:
    """Fit the probe of ``labels`` on ``bundle``'s representations.

    Args:
        bundle: an :class:`ml.index.SearchBundle` (or any searcher with ``vectors_of``).
        labels: the campaign's labels and seeds.
        unlabeled_count, unlabeled_weight: the weak negatives (see :mod:`ml.probe.data`).
        settings: how to fit (default :class:`~ml.probe.fit.ProbeSettings`).
        seed: seeds the weak-negative draw and the folds.

    Raises:
        ml.probe.ProbeDataError: the labels cannot train a probe.
    """
    data = assemble_training_set(
        bundle, labels.positive_ids(), _ids(labels.rejected), unlabeled_count, unlabeled_weight,
        seed=seed, extra_positives=labels.seed_vectors,
        exclude_from_unlabeled=np.union1d(_ids(labels.disputed), _ids(labels.seed_ids)))
    return fit_probe(data, settings or ProbeSettings(), seed=seed)
