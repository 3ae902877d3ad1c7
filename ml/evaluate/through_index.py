"""Retrieval quality of a search bundle: through its index against exact search, per class.

The app answers a query from the bundle's index (candidates re-ranked exactly on the float16
originals), not from a brute-force scan. This module measures what that costs, on the bundle's
own stored vectors, with the truth of a simulated survey:

- for each class, up to ``queries_per_class`` of its objects (seeded draw) query the whole
  bundle for their ``depth`` nearest other objects, once by exact search
  (:func:`ml.index.knn.exact_topk`) and once through the index
  (:meth:`ml.index.Searcher.search_vector`, the path a query takes when the precomputed arrays
  do not cover it);
- each ranking gets the metrics of :mod:`ml.evaluate.metrics` cut at ``depth``: precision@k,
  and average precision AP@depth = Σ_{i ≤ depth} P(i) rel(i) / min(R, depth), R the class's
  other members in the bundle (the usual mAP@k of retrieval: 1 when the first min(R, depth)
  objects are all relevant). Both rankings are cut at the same depth, so their ratio is what
  the index loses; for a class with fewer than ``depth`` members AP@depth is the full-ranking
  AP less the relevant objects found past the depth;
- recall@depth of the index against exact, per class, and the bundle-wide ANN recall@k over
  random queries (:func:`ml.index.ann_recall`).

The summary compares the macro-averaged mAP@depth (mean over classes) of the index with exact
search: the issue's bar is a relative loss of at most 2%.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ml.evaluate.metrics import precision_at
from ml.index import Searcher, ann_recall
from ml.index.knn import exact_topk
from ml.index.vectors import as_float32

MAP_TOLERANCE = 0.02  # the bar: mAP through the index within 2% of exact


def class_queries(labels: np.ndarray, classes: Sequence[str], per_class: int,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """Up to ``per_class`` object ids of each class, a seeded draw, sorted."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in classes:
        members = np.flatnonzero(labels == name)
        if members.size > per_class:
            members = np.sort(rng.choice(members, size=per_class, replace=False))
        out[name] = members.astype(np.int64)
    return out


def drop_self(ids: np.ndarray, sims: np.ndarray, query_ids: np.ndarray,
              depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ranking without the query itself, cut (or -1 / NaN padded) to ``depth``."""
    out_ids = np.full((ids.shape[0], depth), -1, dtype=np.int64)
    out_sims = np.full((ids.shape[0], depth), np.nan, dtype=np.float32)
    for i, qid in enumerate(query_ids):
        keep = (ids[i] >= 0) & (ids[i] != qid)
        row_ids, row_sims = ids[i][keep][:depth], sims[i][keep][:depth]
        out_ids[i, :row_ids.size], out_sims[i, :row_sims.size] = row_ids, row_sims
    return out_ids, out_sims


def ranking_metrics(ranked_ids: np.ndarray, labels: np.ndarray, name: str, n_relevant: int,
                    ks: Sequence[int]) -> dict[str, float]:
    """Mean precision@k and AP@depth of rankings (m, depth) of object ids (-1: none)."""
    relevant = torch.from_numpy((ranked_ids >= 0) & (labels[np.maximum(ranked_ids, 0)] == name))
    ranked = relevant.double()
    depth = ranked.shape[1]
    hits = ranked.cumsum(dim=1)
    positions = torch.arange(1, depth + 1, dtype=ranked.dtype)
    ap = (hits / positions * ranked).sum(dim=1) / max(1, min(n_relevant, depth))
    out = {f"map@{depth}": float(ap.mean())}
    for k in ks:
        if k <= depth:
            out[f"precision@{k}"] = float(precision_at(ranked, k).mean())
    return out


def retrieval_through_index(bundle: Searcher, labels: np.ndarray, classes: Sequence[str],
                            queries_per_class: int = 200, depth: int = 1000,
                            ks: Sequence[int] = (10, 50, 100), seed: int = 0,
                            progress: bool = False) -> dict[str, Any]:
    """Per-class retrieval by exact search and through the index (see the module docstring).

    Args:
        bundle: an opened bundle (or any Searcher).
        labels: (N,) class of every object of the bundle.
        classes: the classes to report, in order.
        queries_per_class: query objects per class.
        depth: ranking depth of both searches (capped at N - 1).
        ks: precision cut-offs.
        seed: seed of the query draw.
        progress: show a progress bar over the classes.

    Returns:
        ``{"depth", "queries_per_class", "classes": {class: {"n", "queries", "exact": {...},
        "index": {...}, "recall@depth", "map_ratio"}}, "summary": {...}}``.
    """
    labels = np.asarray(labels)
    if labels.shape != (bundle.n,):
        raise ValueError(f"{labels.shape[0]} labels for a bundle of {bundle.n} objects")
    depth = max(1, min(depth, bundle.n - 1))
    queries = class_queries(labels, classes, queries_per_class, seed)
    per_class: dict[str, Any] = {}
    seconds = {"exact": 0.0, "index": 0.0}
    names = list(classes)
    if progress:
        from tqdm import tqdm

        names = tqdm(names, desc="retrieval through the index", unit="class")
    for name in names:
        ids = queries[name]
        n_class = int(np.sum(labels == name))
        row: dict[str, Any] = {"n": n_class, "queries": int(ids.size)}
        if ids.size == 0 or n_class < 2:
            per_class[name] = {**row, "exact": None, "index": None, f"recall@{depth}": None,
                               "map_ratio": None}
            continue
        q = as_float32(bundle.vectors[ids])
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        t0 = time.perf_counter()
        exact_ids, exact_sims = exact_topk(q, bundle.vectors, depth + 1)
        seconds["exact"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        index_ids, index_sims = bundle.search_vector(q, depth + 1)
        seconds["index"] += time.perf_counter() - t0
        exact_ids, _ = drop_self(exact_ids, exact_sims, ids, depth)
        index_ids, _ = drop_self(index_ids, index_sims, ids, depth)
        row["exact"] = ranking_metrics(exact_ids, labels, name, n_class - 1, ks)
        row["index"] = ranking_metrics(index_ids, labels, name, n_class - 1, ks)
        recall = [np.intersect1d(a[a >= 0], b[b >= 0]).size / max(1, int((a >= 0).sum()))
                  for a, b in zip(exact_ids, index_ids, strict=True)]
        row[f"recall@{depth}"] = float(np.mean(recall))
        exact_map, index_map = row["exact"][f"map@{depth}"], row["index"][f"map@{depth}"]
        row["map_ratio"] = index_map / exact_map if exact_map > 0 else None
        per_class[name] = row

    measured = [r for r in per_class.values() if r["exact"] is not None]
    exact_map = float(np.mean([r["exact"][f"map@{depth}"] for r in measured])) if measured else None
    index_map = float(np.mean([r["index"][f"map@{depth}"] for r in measured])) if measured else None
    loss = (1.0 - index_map / exact_map) if exact_map else None
    return {
        "depth": depth,
        "queries_per_class": queries_per_class,
        "seed": seed,
        "classes": per_class,
        "summary": {
            f"exact_map@{depth}": exact_map,
            f"index_map@{depth}": index_map,
            "relative_map_loss": loss,
            "tolerance": MAP_TOLERANCE,
            "within_tolerance": None if loss is None else bool(loss <= MAP_TOLERANCE),
            "seconds": {k: round(v, 3) for k, v in seconds.items()},
        },
    }


def bundle_quality(bundle, labels: np.ndarray | None, classes: Sequence[str] | None,
                   queries_per_class: int = 200, depth: int = 1000,
                   recall_queries: int = 1000, recall_k: int = 100, seed: int = 0,
                   progress: bool = False) -> dict[str, Any]:
    """ANN recall@k of the bundle's index and, with truth labels, per-class retrieval through
    the index against exact search; JSON-ready."""
    manifest = getattr(bundle, "manifest", {})
    result: dict[str, Any] = {
        "bundle": str(getattr(bundle, "path", "")),
        "n": int(bundle.n),
        "dim": int(bundle.dim),
        "representation": manifest.get("representation"),
        "index": manifest.get("index", {}).get("params", {"kind": bundle.index.params.kind}),
        "knn_arrays": manifest.get("knn"),
        "ann_recall": ann_recall(bundle, n_queries=recall_queries, k=recall_k, seed=seed),
        "retrieval": None,
    }
    if labels is not None and classes is not None:
        result["retrieval"] = retrieval_through_index(
            bundle, labels, classes, queries_per_class, depth, seed=seed, progress=progress)
    return result
