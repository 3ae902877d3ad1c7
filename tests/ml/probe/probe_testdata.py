"""Test data for the probe tests: a searcher over toy vectors with a planted rare class."""

from __future__ import annotations

import numpy as np

from ml.index.faiss_index import FaissIndex, build_index, choose_params
from ml.index.query import Searcher
from ml.probe import unit_rows


def toy_vectors(n: int = 400, dim: int = 16, rare: int = 30,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) float16 unit vectors, and (n,) bool: the ``rare`` objects of a planted class
    (shifted along the first axis, so a linear probe separates them)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim))
    x[:, 1] += 2.0  # a common direction, as real representations have
    labels = np.zeros(n, dtype=bool)
    labels[rng.choice(n, size=rare, replace=False)] = True
    x[labels, 0] += 8.0
    return unit_rows(x).astype(np.float16), labels


def toy_searcher(kind: str = "flat", **kwargs) -> tuple[Searcher, np.ndarray]:
    """A searcher over :func:`toy_vectors` with a ``kind`` index, and the class labels."""
    vectors, labels = toy_vectors(**kwargs)
    params = choose_params(*vectors.shape, kind)
    index = FaissIndex(build_index(vectors, params, progress=False), params)
    return Searcher(vectors, index), labels
