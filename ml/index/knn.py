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
  Cosine similarity is symmetric, and so is the window (|Δmag| < w), so when the running top-k
  of every object fits in memory (N k 12 bytes, :data:`SYMMETRIC_MAX_HEAP_BYTES`) each pair of
  blocks is multiplied once and feeds both blocks' queries: half the BLAS work of the
  per-block pass, with the same arrays (up to the order of tied neighbours on some BLAS
  kernels: see :data:`SMALL_PRODUCT_MADDS`).
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
# objects per block of the symmetric pass: (2048, 2048) float32 similarities = 17 MB, plus their
# transposed copy. The diagonal blocks are the pass's waste over N^2 / 2 products (N = 100k:
# 49 blocks, 1225 products, 0.51 N^2 multiply-adds), and 2048-row products still run at full
# GEMM speed.
SYMMETRIC_BLOCK_ROWS = 2048
# The symmetric pass keeps the running top-k (float32 similarity + int64 id: 12 bytes an entry)
# of all N objects alive at once: 1.2 GB at N = 100k, k = 1000. Above this it falls back to the
# per-block pass, which holds one block's heaps at a time.
SYMMETRIC_MAX_HEAP_BYTES = 4 * 2**30
# OpenBLAS sends small products (m n d <= 1e6 multiply-adds) and m = 1 or n = 1 to kernels that
# sum the d products in another order than its packed GEMM, so one pair's float32 cosine could
# differ in the last bit between a tail block and a full one (and reorder near-ties). All-pairs
# products pad operands of fewer rows than this with zero rows to stay on the packed GEMM.
# With OpenBLAS' SkylakeX kernel that GEMM's result does not depend on the block shapes and both
# passes compute identical numbers; its Haswell kernel (which it also picks on AMD Zen) can give
# a pair another last bit at a tile's edge, so exact duplicates may tie in one pass and not in
# the other: the similarities stored (float16) are still equal, tied neighbours may be ordered
# differently (tests/ml/index/test_knn.py).
SMALL_PRODUCT_MADDS = 2e6
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
def symmetric_heap_bytes(n: int, k: int) -> int:
    """Memory of the symmetric pass's running top-k of n objects: float32 + int64 per entry."""
    return 12 * n * k


def all_pairs_topk(vectors: np.ndarray, k: int, out_ids: np.ndarray, out_sims: np.ndarray,
                   mag_r: np.ndarray | None = None, mag_window: float | None = None,
                   progress: bool = True, symmetric: bool | None = None) -> None:
    """Fill out_ids (N, k) int32 / out_sims (N, k) float16 with every object's exact top-k.

    Two passes give identical arrays:

    - symmetric: blocks of objects (in magnitude order with a window) are taken in pairs
      (I, J), J >= I; one float32 product S = V_I V_J^T feeds the running top-k of block I's
      objects (candidates J, rows of S) and of block J's (candidates I, rows of a transposed
      copy of S), the diagonal block once: about half the flops of the per-block pass. Every
      object's running top-k is alive until its block is finished, which takes
      ``symmetric_heap_bytes(N, k)`` = 12 N k bytes (1.2 GB at N = 100k, k = 1000), plus two
      (2048, 2048) float32 similarity blocks and the two blocks' float32 rows.
    - per block: one block of queries at a time against all candidates (one block's heaps).

    Each object's candidates reach its heap in increasing order in both passes, and the
    similarities are float32 dot products through the same packed GEMM (:func:`_similarities`),
    so ties at the k-th place are broken alike and the arrays are equal where the BLAS kernel
    gives a pair the same bits in any block (see :data:`SMALL_PRODUCT_MADDS` for the others).

    Args:
        vectors: (N, d) float16 L2-normalised originals.
        k: neighbours per object, the object itself included.
        out_ids, out_sims: arrays to fill (memory maps of the bundle files).
        mag_r: (N,) r magnitudes; with ``mag_window`` restricts each row to |Δmag_r| < window.
        mag_window: half-width of the window in magnitudes, or None for no window.
        progress: show a progress bar.
        symmetric: force the symmetric (True) or per-block (False) pass; None: symmetric when
            its heaps fit in :data:`SYMMETRIC_MAX_HEAP_BYTES`.
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
    if symmetric is None:
        symmetric = symmetric_heap_bytes(n_ranked, k) <= SYMMETRIC_MAX_HEAP_BYTES

    def rows(p0: int, p1: int) -> np.ndarray:
        """float32 rows of the objects at positions [p0, p1) of the order."""
        if mag_window is None:  # database rows are a plain slice of the file
            return as_float32(vectors[p0:p1])
        return as_float32(_gather_rows(vectors, order[p0:p1]))

    def store(top: RunningTopK, p0: int, p1: int) -> None:
        ids, block_sims = top.result()
        out_ids[order[p0:p1]] = ids.astype(np.int32)
        out_sims[order[p0:p1]] = block_sims.astype(np.float16)

    label = "all-pairs top-k" + ("" if mag_window is None else f" (|Δmag_r| < {mag_window})")
    with tqdm(total=n_ranked, desc=label, unit="obj", disable=not progress) as bar:
        if symmetric:
            _all_pairs_symmetric(rows, store, order, n_ranked, lo_all, hi_all, k, bar)
        else:
            _all_pairs_per_block(rows, store, order, n_ranked, lo_all, hi_all, k, bar)


def _similarities(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b.T for float32 row blocks (m, d) and (n, d), always through OpenBLAS' packed GEMM.

    Returns:
        (m, n) float32, C-contiguous; the same bits for a pair whatever blocks it came in.
    """
    m, n, d = a.shape[0], b.shape[0], a.shape[1]
    min_rows = max(16, int(np.ceil(np.sqrt(SMALL_PRODUCT_MADDS / max(d, 1)))))
    if m >= min_rows and n >= min_rows:
        return a @ b.T
    return np.ascontiguousarray((_pad_rows(a, min_rows) @ _pad_rows(b, min_rows).T)[:m, :n])


def _pad_rows(a: np.ndarray, min_rows: int) -> np.ndarray:
    if a.shape[0] >= min_rows:
        return a
    out = np.zeros((min_rows, a.shape[1]), dtype=a.dtype)
    out[:a.shape[0]] = a
    return out


def _mask_outside_windows(sims: np.ndarray, lo: np.ndarray, hi: np.ndarray, c0: int,
                          c1: int) -> None:
    """Set -inf where candidate position c0 + j is outside query i's window [lo[i], hi[i])."""
    width = c1 - c0
    before = np.clip(lo - c0, 0, width)  # sims[i, :before[i]] precede the window
    after = np.clip(hi - c0, 0, width)  # sims[i, after[i]:] follow it
    for i in np.flatnonzero(before > 0):  # row slices: touches only the masked entries
        sims[i, :before[i]] = -np.inf
    for i in np.flatnonzero(after < width):
        sims[i, after[i]:] = -np.inf


def _all_pairs_per_block(rows, store, order, n_ranked, lo_all, hi_all, k, bar) -> None:
    """One block of queries at a time against the union of their windows."""
    for q0 in range(0, n_ranked, QUERY_BLOCK_ROWS):
        q1 = min(n_ranked, q0 + QUERY_BLOCK_ROWS)
        q = rows(q0, q1)
        lo, hi = lo_all[q0:q1], hi_all[q0:q1]
        top = RunningTopK(q1 - q0, k)
        for c0 in range(int(lo.min()), int(hi.max()), DB_CHUNK_ROWS):
            c1 = min(int(hi.max()), c0 + DB_CHUNK_ROWS)
            sims = _similarities(q, rows(c0, c1))  # (queries, chunk)
            _mask_outside_windows(sims, lo, hi, c0, c1)
            top.add(sims, order[c0:c1])
        store(top, q0, q1)
        bar.update(q1 - q0)


def _all_pairs_symmetric(rows, store, order, n_ranked, lo_all, hi_all, k, bar) -> None:
    """Block pairs (I, J >= I): one product for both blocks' heaps.

    Block B's heap receives candidate blocks 0..B-1 (transposed, while I < B runs) before
    B..end (its own row of pairs), i.e. in increasing position, as the per-block pass does.
    """
    edges = [*range(0, n_ranked, SYMMETRIC_BLOCK_ROWS), n_ranked]
    n_blocks = len(edges) - 1
    tops: list[RunningTopK | None] = [RunningTopK(edges[b + 1] - edges[b], k)
                                      for b in range(n_blocks)]
    for bi in range(n_blocks):
        a0, a1 = edges[bi], edges[bi + 1]
        lo_i, hi_i = lo_all[a0:a1], hi_all[a0:a1]
        vi = rows(a0, a1)
        for bj in range(bi, n_blocks):
            b0, b1 = edges[bj], edges[bj + 1]
            lo_j, hi_j = lo_all[b0:b1], hi_all[b0:b1]
            # each side tests its own queries' windows, so this needs no symmetry of the bounds
            i_wants_j = hi_i.max() > b0 and lo_i.min() < b1
            j_wants_i = bj > bi and hi_j.max() > a0 and lo_j.min() < a1
            if not (i_wants_j or j_wants_i):
                continue
            # a fresh float32 copy also on the diagonal: vi @ vi.T would go to syrk, not gemm
            sims = _similarities(vi, rows(b0, b1))  # (block I, block J)
            if j_wants_i:
                sims_t = _transpose(sims)
                _mask_outside_windows(sims_t, lo_j, hi_j, a0, a1)
                tops[bj].add(sims_t, order[a0:a1])
                del sims_t
            if i_wants_j:
                _mask_outside_windows(sims, lo_i, hi_i, b0, b1)
                tops[bi].add(sims, order[b0:b1])
            del sims
        store(tops[bi], a0, a1)  # block I has now seen every candidate block
        tops[bi] = None
        bar.update(a1 - a0)


def _transpose(a: np.ndarray, tile: int = 512) -> np.ndarray:
    """A contiguous copy of a.T, copied in row tiles (about twice as fast as numpy's copy)."""
    out = np.empty((a.shape[1], a.shape[0]), dtype=a.dtype)
    for r0 in range(0, a.shape[0], tile):
        out[:, r0:r0 + tile] = a[r0:r0 + tile].T
    return out


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
