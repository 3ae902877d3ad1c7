"""A probe's training set: labeled representations plus unlabeled objects as weak negatives.

Positives are the campaign's accepted objects (and its seeds: what the campaign looks for),
negatives its rejected objects. In a survey where the target is rare, a random object is almost
surely not one, so a sample of unlabeled objects joins the negatives with a small weight
(``unlabeled_weight``, a campaign setting): it tells the probe what the survey at large looks
like, which a handful of rejects of near-misses cannot.

Every row is an L2-normalised float32 copy of the bundle's float16 original (the same numbers
the index ranks), so the probe's x . w is the score the ranking re-computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # numpy only at import: the server's settings read the defaults below
    from ml.index.query import Searcher

DEFAULT_UNLABELED_COUNT = 2000  # weak negatives drawn per probe
DEFAULT_UNLABELED_WEIGHT = 0.1  # each counts a tenth of a person's reject


class ProbeDataError(ValueError):
    """The labels cannot train a probe (the message says what is missing and what to do)."""


@dataclass(frozen=True)
class TrainingSet:
    """Rows of one probe fit; every array is (rows, d) float32 with unit rows."""

    positives: np.ndarray
    negatives: np.ndarray
    unlabeled: np.ndarray
    unlabeled_weight: float

    @property
    def dim(self) -> int:
        return self.positives.shape[1]

    def counts(self) -> dict[str, int]:
        return {"n_positive": len(self.positives), "n_negative": len(self.negatives),
                "n_unlabeled": len(self.unlabeled)}

    def check(self) -> None:
        """Raise :class:`ProbeDataError` unless both classes are present.

        A probe needs at least one positive (an accept or a seed) and one object a person
        rejected: weak negatives alone would teach it "unlike the survey", not "unlike this
        near-miss", and leave nothing to validate it on.
        """
        n_pos, n_neg = len(self.positives), len(self.negatives)
        if n_pos == 0 or n_neg == 0:
            missing = []
            if n_pos == 0:
                missing.append("an accepted object (or an object seed)")
            if n_neg == 0:
                missing.append("a rejected object")
            raise ProbeDataError(
                f"cannot train a probe yet: it has {n_pos} positive and {n_neg} rejected "
                f"objects, and needs at least {' and '.join(missing)}; label more candidates")
        if not 0 <= self.unlabeled_weight <= 1:
            raise ProbeDataError(f"the unlabeled weight must be within [0, 1], got "
                                 f"{self.unlabeled_weight}")


def unit_rows(rows: np.ndarray) -> np.ndarray:
    """``rows`` (m, d) as float32 with each row scaled to unit length (zero rows stay zero)."""
    rows = np.asarray(rows, dtype=np.float32).reshape(-1, rows.shape[-1])
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1)


def sample_unlabeled(n_objects: int, exclude: np.ndarray, size: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Up to ``size`` distinct object ids drawn uniformly from [0, n_objects) minus ``exclude``.

    Draws with replacement and drops repeats and excluded ids (cheap at any N, unlike a
    permutation of a million ids), topping up until ``size`` or the pool is used up.

    Returns:
        (<= size,) int64, ascending.
    """
    exclude = np.unique(np.asarray(exclude, dtype=np.int64))
    available = n_objects - exclude.size
    size = min(size, available)
    if size <= 0:
        return np.zeros(0, dtype=np.int64)
    if size * 4 > available:  # a large share of the pool: take a permutation of it
        pool = np.setdiff1d(np.arange(n_objects, dtype=np.int64), exclude)
        return np.sort(rng.choice(pool, size=size, replace=False))
    chosen = np.zeros(0, dtype=np.int64)
    while chosen.size < size:
        draw = rng.integers(0, n_objects, size=2 * (size - chosen.size), dtype=np.int64)
        draw = draw[~np.isin(draw, exclude)]
        chosen = np.union1d(chosen, draw)
    return np.sort(rng.choice(chosen, size=size, replace=False))


def assemble_training_set(bundle: Searcher, positive_ids: np.ndarray,
                          negative_ids: np.ndarray, unlabeled_count: int,
                          unlabeled_weight: float, seed: int,
                          extra_positives: np.ndarray | None = None,
                          exclude_from_unlabeled: np.ndarray | None = None) -> TrainingSet:
    """The rows of a probe fit from object ids.

    Args:
        bundle: where the representations are (its float16 originals).
        positive_ids, negative_ids: labeled object ids (disjoint).
        unlabeled_count: how many weak negatives to draw (0: none).
        unlabeled_weight: their weight relative to a labeled object (0 to 1).
        seed: the draw's seed (a run's draw is reproducible).
        extra_positives: (m, d) positive vectors that are not survey objects (uploaded-cutout
            seeds), or None.
        exclude_from_unlabeled: further ids never drawn as weak negatives (seeds, and objects
            whose labels disagree).

    Raises:
        ProbeDataError: an id is outside the bundle, or an object is both positive and negative.
    """
    positive_ids = np.unique(np.asarray(positive_ids, dtype=np.int64))
    negative_ids = np.unique(np.asarray(negative_ids, dtype=np.int64))
    labeled = np.union1d(positive_ids, negative_ids)
    if labeled.size and (labeled[0] < 0 or labeled[-1] >= bundle.n):
        raise ProbeDataError(f"labeled objects outside this bundle's ids [0, {bundle.n}): the "
                             "labels were made on another survey")
    if np.intersect1d(positive_ids, negative_ids).size:
        raise ProbeDataError("an object cannot be both a positive and a negative")
    exclude = labeled if exclude_from_unlabeled is None else np.union1d(
        labeled, np.asarray(exclude_from_unlabeled, dtype=np.int64))
    weak = (sample_unlabeled(bundle.n, exclude, unlabeled_count, np.random.default_rng(seed))
            if unlabeled_weight > 0 else np.zeros(0, dtype=np.int64))
    positives = unit_rows(bundle.vectors_of(positive_ids))
    if extra_positives is not None and len(extra_positives):
        positives = np.concatenate([positives, unit_rows(extra_positives)])
    return TrainingSet(positives=positives, negatives=unit_rows(bundle.vectors_of(negative_ids)),
                       unlabeled=unit_rows(bundle.vectors_of(weak)),
                       unlabeled_weight=float(unlabeled_weight))
