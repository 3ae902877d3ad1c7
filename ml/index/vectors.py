"""Representation vectors: validation, L2 normalisation, and the float16 memory-mapped originals.

A bundle stores every object's representation once, L2-normalised and in float16, as
``vectors.npy`` (N, d), row = object_id. Everything that needs exact cosines (re-ranking, the
similarity arrays, recall against exact search) reads these rows memory-mapped, so a 1M x 2048
bundle (4 GB) is never copied into a process and all server workers share the page cache. The
cosine of two objects is *defined* as the dot product of their stored float16 rows, computed in
float32: every exact path computes the same number.

Vectors computed elsewhere (``galsearch index --representations FILE.npy``) are checked here
before anything is built: 2-D, one row per survey object, finite, non-zero norm.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

VECTOR_DTYPE = np.dtype(np.float16)
# rows per chunk when scanning or converting: ~8 MB of float32 at d = 2048, so chunked passes
# over a memory-mapped file stay small in memory
CHUNK_ROWS = 1024


class RepresentationError(ValueError):
    """Representations that cannot be indexed (wrong shape, non-finite values, zero vectors)."""


def open_vectors(path: str | os.PathLike) -> np.ndarray:
    """A read-only memory map of a ``.npy`` array, (N, d)."""
    return np.load(path, mmap_mode="r")


def as_float32(rows: np.ndarray) -> np.ndarray:
    """Rows of the float16 originals as a fresh float32 array (the exact values, widened)."""
    return np.asarray(rows, dtype=np.float32)


def validate_representations(vectors: np.ndarray, n_objects: int, source: str,
                             progress: bool = False) -> None:
    """Check that ``vectors`` can be indexed as the representations of a survey's objects.

    Args:
        vectors: (N, d) array (a memory map is scanned chunk by chunk).
        n_objects: the survey's object count; row i must be object_id i.
        source: what to call the array in error messages (a file name).
        progress: show a progress bar over the scan.

    Raises:
        RepresentationError: saying what is wrong and what to do.
    """
    if vectors.ndim != 2:
        raise RepresentationError(
            f"{source}: representations must be a 2-D array (objects, dimensions); "
            f"got shape {vectors.shape}"
        )
    n, d = vectors.shape
    if vectors.dtype.kind not in "fiu":
        raise RepresentationError(
            f"{source}: representations must be real numbers; got dtype {vectors.dtype}"
        )
    if d < 1:
        raise RepresentationError(f"{source}: representations have zero dimensions")
    if n != n_objects:
        raise RepresentationError(
            f"{source} has {n} rows but the survey has {n_objects} objects; row i must be the "
            "representation of object_id i (the survey's row order), one row per object"
        )
    bad_rows: list[int] = []
    zero_rows: list[int] = []
    n_bad = n_zero = 0
    for lo in tqdm(range(0, n, CHUNK_ROWS), desc="checking representations", unit="chunk",
                   disable=not progress):
        block = np.asarray(vectors[lo:lo + CHUNK_ROWS], dtype=np.float64)
        finite = np.isfinite(block).all(axis=1)
        bad = np.flatnonzero(~finite)
        n_bad += bad.size
        bad_rows.extend((lo + bad[: max(0, 5 - len(bad_rows))]).tolist())
        zero = np.flatnonzero(finite & ~(np.abs(block) > 0).any(axis=1))
        n_zero += zero.size
        zero_rows.extend((lo + zero[: max(0, 5 - len(zero_rows))]).tolist())
    if n_bad:
        raise RepresentationError(
            f"{source}: {n_bad} rows hold NaN or inf values (object ids {bad_rows}"
            f"{', ...' if n_bad > len(bad_rows) else ''}); recompute or drop those objects "
            "from the survey before indexing"
        )
    if n_zero:
        raise RepresentationError(
            f"{source}: {n_zero} rows are all zeros (object ids {zero_rows}"
            f"{', ...' if n_zero > len(zero_rows) else ''}); a zero vector has no direction, so "
            "its cosine similarity is undefined: recompute those representations"
        )


def l2_normalise(block: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (computed in float64, so large inputs cannot overflow)."""
    block = np.asarray(block, dtype=np.float64)
    norms = np.linalg.norm(block, axis=1, keepdims=True)
    return block / norms


def normalise_query(vectors: np.ndarray, dim: int) -> np.ndarray:
    """Query vectors (d,) or (m, d) as float32 unit rows, (m, d).

    Raises:
        ValueError: wrong dimension, non-finite values or a zero vector.
    """
    q = np.asarray(vectors, dtype=np.float64)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2 or q.shape[1] != dim:
        raise ValueError(f"query vectors must have shape ({dim},) or (m, {dim}); got {q.shape}")
    if not np.isfinite(q).all():
        raise ValueError("query vectors hold NaN or inf values")
    norms = np.linalg.norm(q, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError("a query vector is all zeros; cosine similarity needs a direction")
    return (q / norms).astype(np.float32)


def write_normalised(vectors: np.ndarray, path: str | os.PathLike,
                     progress: bool = True) -> np.ndarray:
    """Write L2-normalised float16 rows of ``vectors`` to a ``.npy`` file, chunk by chunk.

    Returns:
        the written file, memory-mapped read-only, (N, d) float16.
    """
    path = Path(path)
    n, d = vectors.shape
    out = np.lib.format.open_memmap(path, mode="w+", dtype=VECTOR_DTYPE, shape=(n, d))
    for lo in tqdm(range(0, n, CHUNK_ROWS), desc="normalising vectors", unit="chunk",
                   disable=not progress):
        out[lo:lo + CHUNK_ROWS] = l2_normalise(vectors[lo:lo + CHUNK_ROWS]).astype(VECTOR_DTYPE)
    out.flush()
    del out
    return open_vectors(path)
