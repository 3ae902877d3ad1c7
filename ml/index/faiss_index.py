"""The Faiss index of a search bundle: which index, how it is built, and how it is searched.

Choice rule (:func:`choose_params`, ``--index auto``):

- ``flat`` (``IndexFlatIP``, exact inner product of the unit vectors) when an exact scan is
  cheap: N * d <= 2**23 (a 32 MB float32 scan, a few ms; e.g. N <= 4096 at d = 2048,
  N <= 65536 at d = 128).
- ``hnsw`` up to N = 4M: a learned orthogonal projection (PCA to d' = min(d, 256) dimensions,
  then a random rotation), and an HNSW graph (M = 32) over the projected float32 vectors:
  d' * 4 + ~2 M * 4 bytes a vector, about 1.3 KB, so 4M objects take ~5 GB of page cache. On
  clustered 2048-d data it reaches recall@100 ~ 0.997 at ~2 ms a query (benchmarks/search.py).
- ``ivfpq`` beyond: the same projection, an inverted file of nlist ~ 4 sqrt(N) k-means cells,
  nprobe = max(64, nlist / 16) of them visited, and product-quantised residuals of d'/8 bytes
  (32 bytes at d' = 256). It scales to tens of millions of objects (42M x 40 B = 1.7 GB) where a
  graph does not fit.

The approximate kinds return candidates (2-4 per requested result, at least 256) that the query
layer re-ranks exactly on the float16 originals (:mod:`ml.index.query`), so returned order is
true cosine order and the index only decides which objects are looked at.

The vectors are unit length, so cosine order is L2 order; the approximate indexes use the L2
metric, under which the projection's centring changes nothing (an inner product index would be
biased by the mean). A probe's weight vector w ranks objects by x . w = |w| cos(x, w), so a
maximum-inner-product query is the cosine query of w / |w|: the same index answers both.

Searches take their parameters per call (``SearchParametersIVF`` / ``SearchParametersHNSW``) and
never mutate the index, so one loaded index serves concurrent threads. Allowed/excluded ids go
into a Faiss ``IDSelector``; when few ids are allowed, nprobe / efSearch grow in proportion so
that about as many allowed vectors are still visited. Indexes are loaded memory-mapped: IVF
lists with ``IO_FLAG_MMAP``, flat and HNSW storage with ``IO_FLAG_MMAP_IFC``. Training (k-means)
runs on GPUs when faiss-gpu sees any (``faiss.get_num_gpus()``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import faiss
import numpy as np
from tqdm.auto import tqdm

from ml.index.vectors import as_float32

INDEX_KINDS = ("flat", "ivfpq", "hnsw")
FLAT_MAX_ELEMENTS = 2**23  # N * d at or below which an exact scan is the index
HNSW_MAX_N = 4_000_000  # above: ivfpq (a graph over ~1.3 KB vectors no longer fits comfortably)
MAX_REDUCED_DIM = 256
ADD_BATCH_ROWS = 16_384
SINGLE_THREAD_MAX_QUERIES = 16  # smaller searches run on one OpenMP thread


class IndexBuildError(ValueError):
    """The requested index cannot be built for this data."""


@dataclass(frozen=True)
class IndexParams:
    """Everything that defines an index: stored in the bundle manifest.

    Attributes:
        kind: ``flat``, ``ivfpq`` or ``hnsw``.
        dim: input dimension d.
        reduced_dim: d' after the orthogonal projection (approximate kinds).
        nlist: inverted lists (ivfpq).
        pq_m: product-quantiser bytes per vector (ivfpq, 8 bits per sub-quantiser).
        nprobe: lists visited per query (ivfpq).
        hnsw_m: graph degree (hnsw).
        ef_construction, ef_search: HNSW beam widths at build and query time.
        candidates_per_result: re-ranking depth, candidates = max(min_candidates, k * this).
        min_candidates: at least this many candidates are re-ranked.
        train_size: vectors sampled to train the projection, k-means and PQ.
        seed: sampling and rotation seed.
    """

    kind: str
    dim: int
    reduced_dim: int = 0
    nlist: int = 0
    pq_m: int = 0
    nprobe: int = 0
    hnsw_m: int = 0
    ef_construction: int = 0
    ef_search: int = 0
    candidates_per_result: int = 1
    min_candidates: int = 0
    train_size: int = 0
    seed: int = 1234

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, record: dict) -> IndexParams:
        return cls(**record)

    def n_candidates(self, k: int, n: int) -> int:
        """Candidates to re-rank for k results among n objects."""
        if self.kind == "flat":
            return min(k, n)
        return min(n, max(self.min_candidates, k * self.candidates_per_result))


def choose_params(n: int, dim: int, kind: str = "auto", **overrides) -> IndexParams:
    """The index for N vectors of dimension d (see the module docstring for the rule).

    Args:
        n, dim: the bundle's size.
        kind: ``auto`` or one of :data:`INDEX_KINDS`.
        overrides: any :class:`IndexParams` field (e.g. ``nprobe=64``).
    """
    if kind == "auto":
        if n * dim <= FLAT_MAX_ELEMENTS or n < 1000 or dim < 8:
            kind = "flat"
        else:
            kind = "hnsw" if n <= HNSW_MAX_N else "ivfpq"
    if kind not in INDEX_KINDS:
        raise IndexBuildError(f"unknown index kind {kind!r}; choose auto or one of {INDEX_KINDS}")
    if kind == "flat":
        params = IndexParams(kind="flat", dim=dim)
    else:
        if dim < 8:
            raise IndexBuildError(f"{kind} needs at least 8 dimensions (got {dim}); use flat")
        reduced = min(dim, MAX_REDUCED_DIM) // 8 * 8
        if kind == "ivfpq":
            # ~4 sqrt(N) lists (a power of two), each trained with >= 39 points per centroid
            nlist = 2 ** round(math.log2(max(16.0, 4.0 * math.sqrt(n))))
            nlist = int(max(1, min(nlist, n // 39, 65_536)))
            if nlist < 4 or n < 256 * 39:
                raise IndexBuildError(
                    f"ivfpq needs at least {256 * 39} vectors to train its quantisers (got {n}); "
                    "use --index flat or hnsw"
                )
            params = IndexParams(
                kind="ivfpq", dim=dim, reduced_dim=reduced, nlist=nlist, pq_m=reduced // 8,
                nprobe=min(nlist, max(64, nlist // 16)), candidates_per_result=4,
                min_candidates=256,
                train_size=min(n, max(40 * nlist, 65_536)),
            )
        else:
            params = IndexParams(
                kind="hnsw", dim=dim, reduced_dim=reduced, hnsw_m=32, ef_construction=80,
                ef_search=128, candidates_per_result=2, min_candidates=256,
                train_size=min(n, 65_536),
            )
    return dataclasses.replace(params, **overrides) if overrides else params


# -- building ----------------------------------------------------------------------------------
def _sample_rows(vectors: np.ndarray, size: int, seed: int) -> np.ndarray:
    n = vectors.shape[0]
    if size >= n:
        return as_float32(vectors[:])
    ids = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
    return as_float32(vectors[ids])


def _projection(sample: np.ndarray, reduced_dim: int, seed: int) -> faiss.LinearTransform:
    """PCA to reduced_dim followed by a random rotation, as a Faiss LinearTransform y = A x + b."""
    d = sample.shape[1]
    mean = sample.mean(axis=0, dtype=np.float64)
    centred = sample - mean.astype(np.float32)
    cov = (centred.T @ centred).astype(np.float64) / max(1, sample.shape[0] - 1)  # (d, d)
    _, eigvecs = np.linalg.eigh(cov)
    top = eigvecs[:, ::-1][:, :reduced_dim]  # (d, d'), by decreasing variance
    rotation, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal(
        (reduced_dim, reduced_dim)))
    a = (rotation @ top.T).astype(np.float32)  # (d', d), orthonormal rows
    b = (-(a.astype(np.float64) @ mean)).astype(np.float32)
    lt = faiss.LinearTransform(d, reduced_dim, True)
    faiss.copy_array_to_vector(a.ravel(), lt.A)
    faiss.copy_array_to_vector(b, lt.b)
    lt.is_trained = True
    lt.is_orthonormal = True
    return lt


def _train_centroids(x: np.ndarray, nlist: int, seed: int) -> np.ndarray:
    # 10 Lloyd iterations on <= 40 points per centroid: the cells only need to be balanced and
    # local, since re-ranking fixes the order (Faiss' defaults cost ~5x more for no recall gain)
    kmeans = faiss.Kmeans(x.shape[1], nlist, niter=10, seed=seed, max_points_per_centroid=40,
                          gpu=faiss.get_num_gpus() > 0)
    kmeans.train(x)
    return kmeans.centroids


def build_index(vectors: np.ndarray, params: IndexParams, progress: bool = True) -> faiss.Index:
    """Train and fill the index described by ``params`` from the float16 unit vectors (N, d)."""
    n, d = vectors.shape
    if d != params.dim:
        raise IndexBuildError(f"index parameters are for d = {params.dim}, vectors have d = {d}")
    if params.kind == "flat":
        index = faiss.IndexFlatIP(d)
        sub = index
        transform = None
    else:
        sample = _sample_rows(vectors, params.train_size, params.seed)
        transform = _projection(sample, params.reduced_dim, params.seed)
        a, b = _affine(transform)
        projected = sample @ a.T + b
        if params.kind == "ivfpq":
            quantizer = faiss.IndexFlatL2(params.reduced_dim)
            quantizer.add(_train_centroids(projected, params.nlist, params.seed))
            sub = faiss.IndexIVFPQ(quantizer, params.reduced_dim, params.nlist, params.pq_m, 8)
            # the residual-to-centroid tables would cost nlist * 256 * pq_m floats per process
            sub.use_precomputed_table = -1
            sub.pq.cp.seed = params.seed
            sub.pq.cp.niter = 15
            sub.pq.cp.max_points_per_centroid = 64  # 16k residuals per 256-centroid codebook
            # the quantizer is trained, so this trains the residual PQ: 32 k-means of 8-d
            # points whose tiny BLAS calls gain nothing from threads (3x faster on one here)
            with omp_threads(1):
                sub.train(projected)
        else:
            sub = faiss.IndexHNSWFlat(params.reduced_dim, params.hnsw_m)
            sub.hnsw.efConstruction = params.ef_construction
        # the Python wrappers keep transform, sub-index and quantizer alive with the index
        index = faiss.IndexPreTransform(transform, sub)
    for lo in tqdm(range(0, n, ADD_BATCH_ROWS), desc=f"adding to {params.kind} index",
                   unit="chunk", disable=not progress):
        rows = as_float32(vectors[lo:lo + ADD_BATCH_ROWS])
        # project with NumPy's BLAS (several times faster here than Faiss' bundled one)
        sub.add(rows if transform is None else rows @ a.T + b)
    index.ntotal = sub.ntotal
    return index


def _affine(transform: faiss.LinearTransform) -> tuple[np.ndarray, np.ndarray]:
    """(A (d', d), b (d',)) of y = A x + b."""
    a = faiss.vector_to_array(transform.A).reshape(transform.d_out, transform.d_in)
    return a, faiss.vector_to_array(transform.b)


# -- loading and searching ---------------------------------------------------------------------
class FaissIndex:
    """A built index plus its parameters; returns candidate ids for unit query vectors."""

    def __init__(self, index: faiss.Index, params: IndexParams) -> None:
        self.params = params
        self.index = index
        if isinstance(index, faiss.IndexPreTransform):
            self._a, self._b = _affine(faiss.downcast_VectorTransform(index.chain.at(0)))
            self._sub = faiss.downcast_index(index.index)
        else:
            self._a = self._b = None
            self._sub = index
        if isinstance(self._sub, faiss.IndexIVF):
            self._sub.use_precomputed_table = -1

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def save(self, path: str | os.PathLike) -> None:
        faiss.write_index(self.index, os.fspath(path))

    @classmethod
    def load(cls, path: str | os.PathLike, params: IndexParams, mmap: bool = True) -> FaissIndex:
        """Read an index file, memory-mapped where its type allows (shared between processes)."""
        flags = 0
        if mmap:
            flags = faiss.IO_FLAG_MMAP if params.kind == "ivfpq" else faiss.IO_FLAG_MMAP_IFC
        if params.kind == "ivfpq":
            flags |= faiss.IO_FLAG_SKIP_PRECOMPUTE_TABLE
        return cls(faiss.read_index(os.fspath(path), flags), params)

    def search(self, queries: np.ndarray, n_candidates: int, allowed: np.ndarray | None = None,
               excluded: np.ndarray | None = None) -> np.ndarray:
        """Candidate ids, (m, n_candidates) int64, -1 where fewer were found.

        Args:
            queries: (m, d) float32 unit vectors.
            n_candidates: how many to return per query.
            allowed: (N,) bool mask of searchable ids (already without the excluded ones).
            excluded: ids never returned (used when no mask is given).
        """
        # einsum, not BLAS: a small product on one thread has no thread wake-up latency
        x = queries if self._a is None else np.einsum("md,pd->mp", queries, self._a) + self._b
        x = np.ascontiguousarray(x, dtype=np.float32)
        selector, keep_alive = _selector(allowed, excluded)
        # visit about as many allowed vectors as an unfiltered search would, up to 16x the work
        # (beyond that the query layer's exact scan of the allowed ids is the better tool)
        fraction = 1.0 if allowed is None else max(1 / 16, allowed.mean())
        p = self.params
        if p.kind == "ivfpq":
            nprobe = min(p.nlist, math.ceil(p.nprobe / fraction))
            params = faiss.SearchParametersIVF(nprobe=nprobe, sel=selector)
        elif p.kind == "hnsw":
            ef = max(p.ef_search, n_candidates)
            params = faiss.SearchParametersHNSW(efSearch=min(self.ntotal, math.ceil(ef / fraction)),
                                                sel=selector)
        else:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
        with omp_threads(1 if x.shape[0] < SINGLE_THREAD_MAX_QUERIES else None):
            _, ids = self._sub.search(x, n_candidates, params=params)
        del keep_alive
        return ids


@contextlib.contextmanager
def omp_threads(n: int | None) -> Iterator[None]:
    """Run Faiss with n OpenMP threads (None: unchanged) inside the block.

    Single queries run on one thread: waking idle OpenMP threads for a few milliseconds of work
    costs scheduler slices on a busy machine (3x slower here under load). The setting is per
    calling thread (OpenMP's nthreads ICV), so concurrent threads are unaffected."""
    if n is None:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _selector(allowed: np.ndarray | None,
              excluded: np.ndarray | None) -> tuple[faiss.IDSelector | None, tuple]:
    """A Faiss IDSelector (and the Python objects it points into, to keep alive)."""
    if allowed is not None:
        bits = np.packbits(allowed, bitorder="little")  # bit i of byte i >> 3 is id i
        sel = faiss.IDSelectorBitmap(allowed.size, faiss.swig_ptr(bits))
        return sel, (bits,)
    if excluded is not None and excluded.size:
        ids = np.ascontiguousarray(excluded, dtype=np.int64)
        batch = faiss.IDSelectorBatch(ids.size, faiss.swig_ptr(ids))
        return faiss.IDSelectorNot(batch), (batch, ids)
    return None, ()
