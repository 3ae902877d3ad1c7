"""Exact top-k by cosine, and the all-pairs "similarity arrays" of a bundle.

Stein et al. (2021) precompute, for every object, its top-999 neighbours (k = 1000 counting the
object itself), optionally restricted to objects within half a magnitude in r
(|Δmag_r| < 0.5): a lookup is then one row read. Here:

- :func:`exact_topk` scans the float16 originals in chunks (float32 BLAS on each chunk) and
  keeps a running top-k: the exact answer, used for brute-force queries over small allowed
  subsets, for recall ground truth, and as the "exact NumPy" baseline.
- :func:`all_pairs_topk` fills the (N, k) arrays block by block. For the magnitude window the
  objects are sorted by mag_r, so each query's window is a contiguous range of that order and a
  block of consecutive queries only compares against the union of their ranges; entries outside
  a query's own window are masked. Without a window the same loop runs over the whole range.
- :func:`all_pairs_from_search` fills the same arrays through an approximate index when N is
  too large for an exact all-pairs pass on this machine (see :func:`exact_all_pairs_affordable`).

Rows are ordered by similarity, then object id (so ties are deterministic); a window holding
fewer than k objects is padded with id -1 and similarity NaN. An object whose mag_r is NaN is in
no window, its own included: its windowed row is all padding.
"""

from __future__ import annotations

from collections.abc import Callable

import faiss
import numpy as np
from tqdm.auto import tqdm

from ml.index.vectors import as_float32

DB_CHUNK_ROWS = 8192  # database rows compared per BLAS call
QUERY_BLOCK_ROWS = 4096  # queries per block: (4096, 8192) float32 similarities = 134 MB
# An exact all-pairs pass costs 2 N^2 d flops; at ~2e11 flop/s (2 cores, AVX-512) 1e14 is about
# ten minutes. Larger bundles build their arrays through the approximate index.
EXACT_ALL_PAIRS_MAX_FLOPS = 1e14


def exact_all_pairs_affordable(n: int, dim: int) -> bool:
    return 2.0 * n * n * dim <= EXACT_ALL_PAIRS_MAX_FLOPS


# -- magnitude windows -------------------------------------------------------------------------
def magnitude_order(mag_r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Object ids sorted by mag_r (NaN last), and the sorted finite magnitudes.

    Returns:
        order (N,) int64; sorted_mag (n_finite,) float64, sorted_mag[p] = mag_r[order[p]].
    """
    mag = np.asarray(mag_r, dtype=np.float64)
    order = np.argsort(mag, kind="stable")  # NaN sorts last
    n_finite = int(np.isfinite(mag).sum())
    return order.astype(np.int64), mag[order[:n_finite]]


def window_bounds(sorted_mag: np.ndarray, centre_mag: np.ndarray,
                  half_width: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions [lo, hi) in the magnitude order of the objects with |mag - centre| < half_width.

    A NaN centre gives an empty window. Both the arrays and the query layer use this function, so
    they agree on every boundary case.
    """
    centre = np.atleast_1d(np.asarray(centre_mag, dtype=np.float64))
    finite = np.isfinite(centre)
    safe = np.where(finite, centre, 0.0)
    lo = np.searchsorted(sorted_mag, safe - half_width, side="right")
    hi = np.searchsorted(sorted_mag, safe + half_width, side="left")
    lo = np.where(finite, lo, 0)
    hi = np.where(finite, np.maximum(hi, lo), 0)
    return lo.astype(np.int64), hi.astype(np.int64)


# -- running top-k -----------------------------------------------------------------------------
class RunningTopK:
    """The k largest similarities per query seen so far, merged chunk by chunk.

    Faiss' heaps (``float_minheap_array_t``) do the merging in C++, threaded over queries: a
    chunk costs one comparison per similarity once the heaps are full, where a NumPy partition
    of every chunk costs several times the matrix product that made it.
    """

    def __init__(self, n_queries: int, k: int) -> None:
        self.k = k
        self.sims = np.empty((n_queries, k), dtype=np.float32)
        self.ids = np.empty((n_queries, k), dtype=np.int64)
        self._heap = faiss.float_minheap_array_t()
        self._heap.nh = n_queries
        self._heap.k = k
        self._heap.val = faiss.swig_ptr(self.sims)
        self._heap.ids = faiss.swig_ptr(self.ids)
        self._heap.heapify()  # values -FLT_MAX, ids -1: -inf (masked) entries never enter

    def add(self, sims: np.ndarray, ids: np.ndarray) -> None:
        """Merge a chunk: sims (m, c) float32 (-inf = not allowed), ids (c,) int64."""
        if sims.shape[1] == 0:
            return
        sims = np.ascontiguousarray(sims, dtype=np.float32)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        # id_stride 0: every query row shares the chunk's ids
        self._heap.addn_with_ids(sims.shape[1], faiss.swig_ptr(sims), faiss.swig_ptr(ids), 0)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64 (m, k), sims float32 (m, k)) by similarity then id; -1 / NaN padding."""
        empty = self.ids < 0
        sims = np.where(empty, -np.inf, self.sims)
        order = np.lexsort((self.ids, -sims), axis=-1)
        sims = np.take_along_axis(sims, order, axis=1)
        ids = np.take_along_axis(self.ids, order, axis=1)
        empty = ids < 0
        return np.where(empty, -1, ids), np.where(empty, np.nan, sims).astype(np.float32)


def exact_topk(queries: np.ndarray, vectors: np.ndarray, k: int,
               candidate_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by cosine of unit queries against the float16 originals.

    Args:
        queries: (m, d) float32 unit vectors.
        vectors: (N, d) float16 originals (memory map).
        k: neighbours per query.
        candidate_ids: restrict the search to these object ids (None: all N).

    Returns:
        ids (m, k) int64 and sims (m, k) float32, -1 / NaN padded past the candidates.
    """
    n = vectors.shape[0]
    top = RunningTopK(queries.shape[0], k)
    if candidate_ids is None:
        for lo in range(0, n, DB_CHUNK_ROWS):
            hi = min(n, lo + DB_CHUNK_ROWS)
            top.add(queries @ as_float32(vectors[lo:hi]).T, np.arange(lo, hi, dtype=np.int64))
    else:
        ids = np.sort(np.asarray(candidate_ids, dtype=np.int64))
        for lo in range(0, ids.size, DB_CHUNK_ROWS):
            chunk = ids[lo:lo + DB_CHUNK_ROWS]
            top.add(queries @ as_float32(vectors[chunk]).T, chunk)
    return top.result()


# -- all pairs ---------------------------------------------------------------------------------
def all_pairs_topk(vectors: np.ndarray, k: int, out_ids: np.ndarray, out_sims: np.ndarray,
                   mag_r: np.ndarray | None = None, mag_window: float | None = None,
                   progress: bool = True) -> None:
    """Fill out_ids (N, k) int32 / out_sims (N, k) float16 with every object's exact top-k.

    Args:
        vectors: (N, d) float16 L2-normalised originals.
        k: neighbours per object, the object itself included.
        out_ids, out_sims: arrays to fill (memory maps of the bundle files).
        mag_r: (N,) r magnitudes; with ``mag_window`` restricts each row to |Δmag_r| < window.
        mag_window: half-width of the window in magnitudes, or None for no window.
        progress: show a progress bar.
    """
    n = vectors.shape[0]
    if mag_window is None:
        order = np.arange(n, dtype=np.int64)
        n_ranked = n
        lo_all = np.zeros(n, dtype=np.int64)
        hi_all = np.full(n, n, dtype=np.int64)
    else:
        if mag_r is None:
            raise ValueError("a magnitude window needs mag_r")
        order, sorted_mag = magnitude_order(mag_r)
        n_ranked = sorted_mag.size
        lo_all, hi_all = window_bounds(sorted_mag, sorted_mag, mag_window)
        unranked = order[n_ranked:]  # NaN magnitude: in no window
        out_ids[unranked] = -1
        out_sims[unranked] = np.nan
    contiguous = mag_window is None  # database rows are a plain slice of the file
    label = "all-pairs top-k" + ("" if mag_window is None else f" (|Δmag_r| < {mag_window})")
    with tqdm(total=n_ranked, desc=label, unit="obj", disable=not progress) as bar:
        for q0 in range(0, n_ranked, QUERY_BLOCK_ROWS):
            q1 = min(n_ranked, q0 + QUERY_BLOCK_ROWS)
            query_ids = order[q0:q1]
            q = as_float32(vectors[q0:q1] if contiguous else _gather_rows(vectors, query_ids))
            lo, hi = lo_all[q0:q1], hi_all[q0:q1]
            top = RunningTopK(q1 - q0, k)
            for c0 in range(int(lo.min()), int(hi.max()), DB_CHUNK_ROWS):
                c1 = min(int(hi.max()), c0 + DB_CHUNK_ROWS)
                chunk_ids = order[c0:c1]
                rows = vectors[c0:c1] if contiguous else _gather_rows(vectors, chunk_ids)
                sims = q @ as_float32(rows).T  # (queries, chunk)
                if lo.max() > c0 or hi.min() < c1:  # some query's window cuts this chunk
                    pos = np.arange(c0, c1)
                    sims[(pos < lo[:, None]) | (pos >= hi[:, None])] = -np.inf
                top.add(sims, chunk_ids)
            ids, block_sims = top.result()
            out_ids[query_ids] = ids.astype(np.int32)
            out_sims[query_ids] = block_sims.astype(np.float16)
            bar.update(q1 - q0)


def _gather_rows(vectors: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """vectors[ids] read in ascending id order (sequential pages), returned in the order of ids."""
    sort = np.argsort(ids)
    rows = vectors[ids[sort]]
    out = np.empty_like(rows)
    out[sort] = rows
    return out


def all_pairs_from_search(search: Callable[[np.ndarray, np.ndarray | None], tuple],
                          vectors: np.ndarray, k: int, out_ids: np.ndarray,
                          out_sims: np.ndarray, mag_r: np.ndarray | None = None,
                          mag_window: float | None = None, batch: int = 256,
                          progress: bool = True) -> None:
    """Fill the arrays through an approximate search (for N beyond an exact pass).

    Args:
        search: ``search(queries (m, d) float32, allowed (N,) bool | None) -> (ids, sims)``,
            each (m, k), sorted, -1 / NaN padded (the query layer's re-ranked index search).
        vectors, k, out_ids, out_sims, mag_r, mag_window, progress: as :func:`all_pairs_topk`.
        batch: queries per search call when there is no window.
    """
    n = vectors.shape[0]
    label = "all-pairs top-k via index" + ("" if mag_window is None else " (window)")
    with tqdm(total=n, desc=label, unit="obj", disable=not progress) as bar:
        if mag_window is None:
            for q0 in range(0, n, batch):
                q1 = min(n, q0 + batch)
                ids, sims = search(as_float32(vectors[q0:q1]), None)
                out_ids[q0:q1] = ids.astype(np.int32)
                out_sims[q0:q1] = sims.astype(np.float16)
                bar.update(q1 - q0)
            return
        if mag_r is None:
            raise ValueError("a magnitude window needs mag_r")
        order, sorted_mag = magnitude_order(mag_r)
        n_ranked = sorted_mag.size
        lo, hi = window_bounds(sorted_mag, sorted_mag, mag_window)
        unranked = order[n_ranked:]  # NaN magnitude: in no window
        out_ids[unranked] = -1
        out_sims[unranked] = np.nan
        bar.update(unranked.size)
        # objects in magnitude order: both window ends only move up, so the allowed mask slides
        # along the order with O(N) updates in all
        allowed = np.zeros(n, dtype=bool)
        a = b = 0
        for p in range(n_ranked):
            allowed[order[b:hi[p]]] = True
            allowed[order[a:lo[p]]] = False
            a, b = lo[p], hi[p]
            i = order[p]
            ids, sims = search(as_float32(vectors[i:i + 1]), allowed)
            out_ids[i] = ids[0].astype(np.int32)
            out_sims[i] = sims[0].astype(np.float16)
            bar.update(1)
