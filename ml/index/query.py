"""The query layer: neighbours of an object or of vectors, probe rankings, with filters.

Every answer is in true cosine order of the float16 originals (ties broken by object id):

- ``neighbours(object_id, k, ...)`` is answered from the precomputed similarity arrays when they
  cover the request: the stored row (top k_stored including the object itself, for the whole
  survey or within the stored magnitude window), minus the object itself, the excluded ids and
  the ids outside ``allowed``, still holds k entries, or the row was padded (so it lists every
  object of the window). Otherwise, and for any other window, it goes to the index.
- The index path asks the Faiss index (:mod:`ml.index.faiss_index`) for candidates under the
  filters and re-ranks them exactly on the float16 originals. When the filters leave few
  objects (allowed * d <= 2**22 elements) a brute-force scan of the allowed objects is both
  exact and faster; when the index returns fewer than k candidates for a filter it could not
  serve, the same exact scan answers instead, so results are never silently short.
- ``search_vector`` / ``search_vectors`` take query vectors (an uploaded cutout's embedding, a
  set of seeds: ``combine='mean'`` searches the normalised centroid, ``combine='max'`` ranks by
  the best cosine to any seed, exactly: the union of each seed's top k holds the answer).
- ``top_by_weight(w, k)`` ranks all objects by x . w (a linear probe's score without its bias):
  x . w = |w| cos(x, w), a cosine query of w / |w| on the same index, re-scored exactly.

Nothing here mutates shared state, so one :class:`Searcher` serves concurrent threads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ml.index.faiss_index import FaissIndex
from ml.index.knn import exact_topk, magnitude_order, window_bounds
from ml.index.vectors import as_float32, normalise_query

EXACT_SUBSET_MAX_ELEMENTS = 2**22  # allowed objects * d under which a brute-force scan answers
COMBINE_MODES = ("mean", "max")


@dataclass(frozen=True)
class KnnArrays:
    """Precomputed top-k rows: ids (N, k) int32 (-1 padding), sims (N, k) float16 (NaN padding)."""

    ids: np.ndarray
    sims: np.ndarray
    mag_window: float | None = None

    @property
    def k(self) -> int:
        return self.ids.shape[1]


class Searcher:
    """Queries over one set of representations.

    Args:
        vectors: (N, d) float16 L2-normalised originals (memory map).
        index: the Faiss index over them.
        mag_r: (N,) r magnitudes (NaN allowed), needed for magnitude windows.
        knn: precomputed top-k arrays without a window.
        knn_magwin: precomputed top-k arrays within ``knn_magwin.mag_window``.
    """

    def __init__(self, vectors: np.ndarray, index: FaissIndex, mag_r: np.ndarray | None = None,
                 knn: KnnArrays | None = None, knn_magwin: KnnArrays | None = None) -> None:
        self.vectors = vectors
        self.n, self.dim = vectors.shape
        self.index = index
        self.mag_r = mag_r
        self.knn = knn
        self.knn_magwin = knn_magwin
        if mag_r is not None:
            self._order, self._sorted_mag = magnitude_order(mag_r)
        else:
            self._order = self._sorted_mag = None

    # -- inputs --------------------------------------------------------------------------------
    def _object_id(self, object_id: int) -> int:
        if isinstance(object_id, bool) or not isinstance(object_id, int | np.integer):
            raise TypeError(f"object_id must be an integer, got {object_id!r}")
        if not 0 <= int(object_id) < self.n:
            raise IndexError(f"object_id {object_id} is outside this bundle's range [0, {self.n})")
        return int(object_id)

    def _ids(self, ids: Iterable[int] | np.ndarray, what: str) -> np.ndarray:
        arr = np.asarray(list(ids) if isinstance(ids, set | frozenset) else ids)
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64)
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{what} must be integer object ids, got dtype {arr.dtype}")
        arr = np.unique(arr.astype(np.int64).ravel())
        if arr[0] < 0 or arr[-1] >= self.n:
            raise IndexError(f"{what} holds ids outside [0, {self.n})")
        return arr

    def _allowed(self, allowed: np.ndarray | None) -> np.ndarray | None:
        if allowed is None:
            return None
        allowed = np.asarray(allowed)
        if allowed.dtype != bool or allowed.shape != (self.n,):
            raise ValueError(
                f"allowed must be a boolean mask of shape ({self.n},); got {allowed.dtype} "
                f"{allowed.shape}"
            )
        return allowed

    @staticmethod
    def _k(k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        return int(k)

    def _window_mask(self, mag: float, mag_window: float) -> np.ndarray:
        if self._sorted_mag is None:
            raise ValueError("this bundle has no r magnitudes, so it cannot apply a mag_window")
        if not mag_window > 0:
            raise ValueError(f"mag_window must be a positive number of magnitudes, got {mag_window}")
        lo, hi = window_bounds(self._sorted_mag, np.array([mag]), mag_window)
        mask = np.zeros(self.n, dtype=bool)
        mask[self._order[lo[0]:hi[0]]] = True
        return mask

    # -- public API ----------------------------------------------------------------------------
    def vector(self, object_id: int) -> np.ndarray:
        """The stored representation of an object, (d,) float32 (unit length up to float16)."""
        return as_float32(self.vectors[self._object_id(object_id)])

    def vectors_of(self, object_ids: Iterable[int] | np.ndarray) -> np.ndarray:
        """Stored representations of several objects in the given order, (m, d) float32."""
        ids = np.asarray(object_ids, dtype=np.int64).ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= self.n):
            raise IndexError(f"object ids outside [0, {self.n})")
        return as_float32(self.vectors[ids])

    def neighbours(self, object_id: int, k: int = 16, mag_window: float | None = None,
                   exclude: Iterable[int] | np.ndarray = (), allowed: np.ndarray | None = None,
                   include_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The k most similar objects to ``object_id``.

        Args:
            object_id: the query object.
            k: how many to return (fewer only when the filters leave fewer).
            mag_window: keep objects with |mag_r - mag_r(object)| < mag_window (None: all).
            exclude: object ids never returned (e.g. already labeled).
            allowed: (N,) bool mask; only True ids are returned.
            include_self: also return the object itself (it is excluded by default).

        Returns:
            ids (<= k,) int64 and cosine similarities (<= k,) float32, most similar first.
        """
        oid = self._object_id(object_id)
        k = self._k(k)
        excluded = self._ids(exclude, "exclude")
        if not include_self:
            excluded = np.union1d(excluded, [oid])
        allowed = self._allowed(allowed)
        arrays = self._arrays_for(mag_window)
        if arrays is not None:
            row_ids = arrays.ids[oid].astype(np.int64)
            present = row_ids >= 0
            keep = present & ~np.isin(row_ids, excluded)
            if allowed is not None:
                keep &= allowed[np.where(present, row_ids, 0)]
            # a padded row lists its whole window, so it answers any k
            if keep.sum() >= k or not present.all():
                take = np.flatnonzero(keep)[:k]
                return row_ids[take], arrays.sims[oid][take].astype(np.float32)
        mag = None if mag_window is None else float(self.mag_r[oid])
        ids, sims = self._filtered(self.vector(oid)[None, :], k, [mag], mag_window, excluded,
                                   allowed)
        return _trim(ids[0], sims[0])

    def search_vector(self, vector: np.ndarray, k: int = 16,
                      mag_r: float | np.ndarray | None = None, mag_window: float | None = None,
                      exclude: Iterable[int] | np.ndarray = (),
                      allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Objects most similar to a vector (d,), or to each row of (m, d).

        Args:
            vector: (d,) or (m, d); normalised here, any non-zero length is fine.
            k: results per query.
            mag_r: the query's r magnitude ((m,) for several), needed with ``mag_window``.
            mag_window, exclude, allowed: as in :meth:`neighbours`.

        Returns:
            for (d,): ids (<= k,) int64, sims (<= k,) float32; for (m, d): (m, k) arrays padded
            with -1 / NaN.
        """
        single = np.ndim(vector) == 1
        q = normalise_query(vector, self.dim)
        k = self._k(k)
        if mag_window is None:
            mags = [None] * q.shape[0]
        else:
            if mag_r is None:
                raise ValueError("mag_window needs the query's mag_r")
            mags = np.broadcast_to(np.asarray(mag_r, dtype=np.float64), (q.shape[0],)).tolist()
        ids, sims = self._filtered(q, k, mags, mag_window, self._ids(exclude, "exclude"),
                                   self._allowed(allowed))
        return _trim(ids[0], sims[0]) if single else (ids, sims)

    def search_vectors(self, vectors: np.ndarray, k: int = 16, combine: str = "mean",
                       mag_r: float | None = None, mag_window: float | None = None,
                       exclude: Iterable[int] | np.ndarray = (),
                       allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Objects most similar to a set of seed vectors (m, d), combined into one ranking.

        Args:
            vectors: (m, d) seeds.
            combine: ``mean`` (cosine to the normalised mean of the normalised seeds) or
                ``max`` (the best cosine to any seed).
            k, mag_r, mag_window, exclude, allowed: as in :meth:`search_vector`.

        Returns:
            ids (<= k,) int64 and combined scores (<= k,) float32, best first.
        """
        if combine not in COMBINE_MODES:
            raise ValueError(f"combine must be one of {COMBINE_MODES}, got {combine!r}")
        seeds = normalise_query(np.atleast_2d(vectors), self.dim)
        k = self._k(k)
        excluded = self._ids(exclude, "exclude")
        allowed = self._allowed(allowed)
        mags = [mag_r] * seeds.shape[0]
        if mag_window is not None and mag_r is None:
            raise ValueError("mag_window needs mag_r")
        if combine == "mean":
            centre = seeds.mean(axis=0)
            if not np.linalg.norm(centre) > 1e-6:
                raise ValueError("the seeds' mean is zero (opposite seeds); use combine='max'")
            ids, sims = self._filtered(normalise_query(centre, self.dim), k, mags[:1], mag_window,
                                       excluded, allowed)
            return _trim(ids[0], sims[0])
        ids, _ = self._filtered(seeds, k, mags, mag_window, excluded, allowed)
        union = np.unique(ids[ids >= 0])
        scores = (as_float32(self.vectors[union]) @ seeds.T).max(axis=1)
        order = np.lexsort((union, -scores))[:k]
        return union[order], scores[order].astype(np.float32)

    def top_by_weight(self, weight: np.ndarray, k: int = 100,
                      exclude: Iterable[int] | np.ndarray = (),
                      allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The k objects with the highest x . w (a linear probe's ranking), exactly re-scored.

        Returns:
            ids (<= k,) int64 and scores x . w (<= k,) float32, highest first.
        """
        w = np.asarray(weight, dtype=np.float64).ravel()
        norm = float(np.linalg.norm(w))
        ids, sims = self.search_vector(w, k, exclude=exclude, allowed=allowed)
        return ids, (sims.astype(np.float64) * norm).astype(np.float32)

    # -- internals -----------------------------------------------------------------------------
    def _arrays_for(self, mag_window: float | None) -> KnnArrays | None:
        if mag_window is None:
            return self.knn
        stored = self.knn_magwin
        if stored is not None and stored.mag_window is not None and np.isclose(
                mag_window, stored.mag_window, rtol=0, atol=1e-9):
            return stored
        return None

    def _filtered(self, queries: np.ndarray, k: int, mags: list, mag_window: float | None,
                  excluded: np.ndarray, allowed: np.ndarray | None
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Search unit queries (m, d); with a window each query has its own allowed set."""
        if mag_window is None:
            return self._search(queries, k, allowed, excluded)
        out_ids = np.full((queries.shape[0], k), -1, dtype=np.int64)
        out_sims = np.full((queries.shape[0], k), np.nan, dtype=np.float32)
        for i, mag in enumerate(mags):
            mask = self._window_mask(mag, mag_window)
            if allowed is not None:
                mask &= allowed
            out_ids[i], out_sims[i] = (a[0] for a in self._search(queries[i:i + 1], k, mask,
                                                                   excluded))
        return out_ids, out_sims

    def _search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None,
                excluded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of unit queries (m, d) among allowed minus excluded: (m, k) padded arrays."""
        if allowed is not None:
            allowed = allowed.copy()
            allowed[excluded] = False
            candidates = np.flatnonzero(allowed)
            if candidates.size * self.dim <= EXACT_SUBSET_MAX_ELEMENTS:
                return exact_topk(queries, self.vectors, k, candidates)
            n_allowed = candidates.size
        else:
            n_allowed = self.n - excluded.size
        n_candidates = self.index.params.n_candidates(k, self.n)
        found = self.index.search(queries, n_candidates, allowed,
                                  None if allowed is not None else excluded)
        ids, sims = self._rerank(queries, found, k)
        short = np.flatnonzero((ids >= 0).sum(axis=1) < min(k, n_allowed))
        if short.size:  # the index could not serve this filter: scan the allowed objects
            pool = (np.flatnonzero(allowed) if allowed is not None
                    else np.setdiff1d(np.arange(self.n), excluded))
            ids[short], sims[short] = exact_topk(queries[short], self.vectors, k, pool)
        return ids, sims

    def _rerank(self, queries: np.ndarray, candidates: np.ndarray,
                k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact cosines of each query's candidates on the float16 originals, top k of them."""
        m = queries.shape[0]
        out_ids = np.full((m, k), -1, dtype=np.int64)
        out_sims = np.full((m, k), np.nan, dtype=np.float32)
        for i in range(m):
            cand = np.unique(candidates[i][candidates[i] >= 0])  # ascending: sequential reads
            # einsum, not BLAS: one thread, so no thread wake-up latency under load
            sims = np.einsum("cd,d->c", as_float32(self.vectors[cand]), queries[i])
            order = np.lexsort((cand, -sims))[:k]
            out_ids[i, :order.size] = cand[order]
            out_sims[i, :order.size] = sims[order]
        return out_ids, out_sims


def _trim(ids: np.ndarray, sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = ids >= 0
    return ids[keep], sims[keep]
