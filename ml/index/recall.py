"""Recall of a bundle's index against exact search, for ``galsearch evaluate``.

recall@k is the fraction of the exact top-k (cosine on the float16 originals, the object
itself included) that the index path returns in its top k, averaged over random query objects.
The index path is the query layer's (candidates from the Faiss index re-ranked exactly), not the
precomputed arrays, so the figure measures what a query the arrays cannot answer gets.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ml.index.knn import exact_topk
from ml.index.query import Searcher
from ml.index.vectors import as_float32


def ann_recall(bundle: Searcher, n_queries: int = 1000, k: int = 100,
               seed: int = 0) -> dict[str, Any]:
    """recall@k of ``bundle``'s index path against exact search over random objects.

    Returns:
        {"recall_at_k", "min_recall", "k", "n_queries", "index", "latency_ms_p50",
        "latency_ms_p99"}; latencies are of the index path, one query at a time.
    """
    n = bundle.n
    k = min(k, n)
    rng = np.random.default_rng(seed)
    query_ids = np.sort(rng.choice(n, size=min(n_queries, n), replace=False))
    queries = as_float32(bundle.vectors[query_ids])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact_ids, _ = exact_topk(queries, bundle.vectors, k)
    recalls = np.empty(query_ids.size)
    latencies = np.empty(query_ids.size)
    for i in range(query_ids.size):
        t0 = time.perf_counter()
        ids, _ = bundle.search_vector(queries[i], k)
        latencies[i] = time.perf_counter() - t0
        truth = exact_ids[i][exact_ids[i] >= 0]
        recalls[i] = np.intersect1d(ids, truth).size / truth.size
    return {
        "recall_at_k": float(recalls.mean()),
        "min_recall": float(recalls.min()),
        "k": int(k),
        "n_queries": int(query_ids.size),
        "index": bundle.index.params.kind,
        "latency_ms_p50": float(np.percentile(latencies, 50) * 1e3),
        "latency_ms_p99": float(np.percentile(latencies, 99) * 1e3),
    }
