"""A probe's candidate orders over a whole bundle: top score, uncertainty, and a mix of both.

A probe scores object x by s = w . x (its probability is sigmoid(s + b)). The ranking of all N
objects by s is a maximum-inner-product query: :meth:`ml.index.query.Searcher.top_by_weight`
asks the bundle's index for the K best, and each returned object is then re-scored here
exactly on its float16 original with a fixed summation order (``einsum``), so an object's score
is the same number in every request and a cursor on it stays valid.

Each strategy is a total order, the same in every request for one probe, written as a sort
value (higher first; ties by ascending object id) so that cursor pages work unchanged
(:func:`server.candidates.page`):

- ``top``: s. The probe's best guesses first (exploitation).
- ``uncertainty``: -|s + b|, probability nearest 0.5 first (the probe learns most from these).
  The K best by s hold every object with |s + b| < t - s_K (t = -b the boundary, s_K the K-th
  score) when s_K < t, so that part of the pool is exactly the order's prefix; the caller asks
  for a larger K when it is too short.
- ``mix``: the two alternated, top first: an object's key is min(2 r_top, 2 r_unc + 1) with r its
  rank in each order among *all* allowed objects, labeled ones included, so that labeling
  (which only removes objects) never moves the others. An object already placed by one order
  is skipped in the other.

:meth:`ProbeOrder.first` answers "the first k objects" and says whether they are all the
eligible objects there are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np
from scipy.special import expit

from ml.index.query import Searcher

STRATEGIES = ("top", "uncertainty", "mix")
DEFAULT_STRATEGY = "top"


class ProbeOrder:
    """One probe's order of the bundle's objects under one strategy.

    Args:
        bundle: the searcher over the representations the probe was trained on.
        coef: (d,) probe weights.
        intercept: the probe's bias b.
        strategy: one of :data:`STRATEGIES`.
        allowed: (N,) bool catalog filter (None: every object).
        key: what identifies the probe (its version) in :meth:`fingerprint`.
        filter_key: a description of ``allowed`` for :meth:`fingerprint`.
        never: object ids never returned (a campaign's seeds), in addition to each call's
            ``exclude``.
    """

    def __init__(self, bundle: Searcher, coef: np.ndarray, intercept: float,
                 strategy: str = DEFAULT_STRATEGY, allowed: np.ndarray | None = None,
                 key: str = "", filter_key: str = "",
                 never: Sequence[int] | np.ndarray = ()) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
        coef = np.asarray(coef, dtype=np.float32).ravel()
        if coef.shape != (bundle.dim,):
            raise ValueError(f"the probe has {coef.size} weights but the bundle's vectors have "
                             f"d = {bundle.dim}: it was trained on another bundle")
        if not np.linalg.norm(coef) > 0:
            raise ValueError("the probe's weights are all zero: it cannot rank anything")
        self.bundle, self.coef, self.intercept = bundle, coef, float(intercept)
        self.strategy, self.allowed = strategy, allowed
        self.key, self.filter_key = key, filter_key
        self.never = np.unique(np.asarray(never, dtype=np.int64))
        self.size = bundle.n if allowed is None else int(np.count_nonzero(allowed))

    def fingerprint(self) -> str:
        """A hash of what determines the order (probe, strategy, filters), for cursors."""
        text = json.dumps(["probe", self.key, self.strategy, self.filter_key,
                           hashlib.sha256(self.coef.tobytes()).hexdigest()[:16],
                           self.intercept])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def scores(self, ids: np.ndarray) -> np.ndarray:
        """s = w . x of the objects ``ids`` (m,), float64, the same number in every call."""
        vectors = self.bundle.vectors_of(ids)  # (m, d) float32
        return np.einsum("md,d->m", vectors, self.coef).astype(np.float64)

    def probability(self, ids: np.ndarray) -> np.ndarray:
        """The probe's probability for objects ``ids`` (m,)."""
        return expit(self.scores(ids) + self.intercept)

    def _pool(self, k: int, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """The k highest-scoring eligible objects, by exact score (desc, id asc); complete
        when they are every eligible object."""
        ids, _ = self.bundle.top_by_weight(self.coef, k, exclude=exclude, allowed=self.allowed)
        scores = self.scores(ids)
        order = np.lexsort((ids, -scores))
        return ids[order], scores[order], len(ids) < k or k >= self.size

    def _uncertain(self, ids: np.ndarray, scores: np.ndarray,
                   complete: bool) -> tuple[np.ndarray, np.ndarray]:
        """The exactly known prefix of the uncertainty order within a top-k pool: ids and
        distances |s + b| ascending (ties by id)."""
        distance = np.abs(scores + self.intercept)
        if not complete:
            boundary = -self.intercept
            lowest = scores[-1] if len(scores) else np.inf
            bound = boundary - lowest if lowest < boundary else 0.0
            keep = distance < bound
            ids, distance = ids[keep], distance[keep]
        order = np.lexsort((ids, distance))
        return ids[order], distance[order]

    def first(self, k: int, exclude: Sequence[int] | np.ndarray = ()
              ) -> tuple[np.ndarray, np.ndarray, bool]:
        """The first objects of the order, leaving out ``exclude``.

        Returns:
            ids (int64), sort values (float64, non-increasing; ties by ascending id) and
            whether these are all the eligible objects. Fewer than k ids with ``complete``
            False means only that many are known exactly; ask for a larger k.
        """
        exclude = np.union1d(np.asarray(exclude, dtype=np.int64), self.never)
        if self.strategy == "top":
            return self._pool(k, exclude)
        if self.strategy == "uncertainty":
            ids, scores, complete = self._pool(k, exclude)
            ids, distance = self._uncertain(ids, scores, complete)
            return ids, -distance, complete
        # mix: ranks among every allowed object, labeled ones included (see the docstring)
        ids, scores, complete = self._pool(k + exclude.size, np.zeros(0, dtype=np.int64))
        unc_ids, _ = self._uncertain(ids, scores, complete)
        key = 2.0 * np.arange(len(ids))  # top order: slots 0, 2, 4, ...
        sorter = np.argsort(ids)
        rows = sorter[np.searchsorted(ids, unc_ids, sorter=sorter)]
        key[rows] = np.minimum(key[rows], 2.0 * np.arange(len(unc_ids)) + 1)  # 1, 3, 5, ...
        if complete:
            known = np.ones(len(ids), bool)
        else:  # every object with a key below both lists' ends is in hand
            known = key < min(2.0 * len(ids), 2.0 * len(unc_ids) + 1)
        keep = known & ~np.isin(ids, exclude)
        ids, key = ids[keep], key[keep]
        order = np.lexsort((ids, key))
        return ids[order], -key[order], complete
