"""Retrieval metrics of representations by exact cosine search (torch, no index).

Small pure functions on (N, D) arrays; every one is chunked over queries so that N x N
similarities never sit in memory at once. Conventions:

- similarity is the cosine of the vectors; an object never retrieves itself;
- ranks are pessimistic: a tie with the target counts against it, so a degenerate
  representation (every vector equal) scores as badly as it deserves, not perfectly;
- average precision of one query is the mean, over the relevant objects, of the precision at
  the rank where each is retrieved (the area under the precision-recall step curve); mean
  average precision of a class averages it over every object of the class as the query.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

QUERY_CHUNK = 512  # queries per similarity block: 512 x N float32


def unit_rows(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(N, D) -> float32 rows of unit length (zero rows stay zero)."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    return F.normalize(t.float(), dim=1)


def _chunks(n: int, size: int = QUERY_CHUNK) -> Iterator[tuple[int, int]]:
    for lo in range(0, n, size):
        yield lo, min(lo + size, n)


def invariance_ranks(originals: np.ndarray | torch.Tensor,
                     copies: np.ndarray | torch.Tensor) -> np.ndarray:
    """Rank of each object's augmented copy when the original is the query.

    The pool is the N originals and the N copies; each original queries all 2N - 1 others.
    Rank 0 means the copy is the nearest neighbour.

    Args:
        originals: (N, D) representations of the objects.
        copies: (N, D) representations of one augmented copy of each, in the same order.

    Returns:
        (N,) int64: how many other pool members are at least as similar as the copy.
    """
    a, b = unit_rows(originals), unit_rows(copies)
    if a.shape != b.shape:
        raise ValueError(f"originals {tuple(a.shape)} and copies {tuple(b.shape)} differ")
    n = a.shape[0]
    pool = torch.cat([a, b])  # (2N, D)
    ranks = torch.empty(n, dtype=torch.int64)
    for lo, hi in _chunks(n):
        rows = torch.arange(hi - lo)
        sims = a[lo:hi] @ pool.T  # (b, 2N)
        target = sims[rows, n + lo + rows].clone()
        sims[rows, lo + rows] = -torch.inf  # the query itself
        sims[rows, n + lo + rows] = -torch.inf  # the copy is not its own competitor
        ranks[lo:hi] = (sims >= target[:, None]).sum(dim=1)
    return ranks.numpy()


def invariance_summary(ranks: np.ndarray, top: Sequence[int] = (1, 10)) -> dict[str, float]:
    """Fraction of copies ranked within the first k, for each k: ``{"top1": ..., "top10": ...}``."""
    ranks = np.asarray(ranks)
    return {f"top{k}": float(np.mean(ranks < k)) for k in top}


def ranked_relevance(sims: torch.Tensor, relevant: torch.Tensor) -> torch.Tensor:
    """Relevance flags in retrieval order: (b, N) similarities and flags -> (b, N) float."""
    order = torch.argsort(sims, dim=1, descending=True, stable=True)
    return relevant.gather(1, order).float()


def average_precision(ranked: torch.Tensor) -> torch.Tensor:
    """AP of each row of relevance flags in retrieval order: (b, N) -> (b,), NaN if none."""
    hits = ranked.cumsum(dim=1)
    positions = torch.arange(1, ranked.shape[1] + 1, dtype=ranked.dtype)
    n_relevant = ranked.sum(dim=1)
    ap = (hits / positions * ranked).sum(dim=1) / n_relevant
    return torch.where(n_relevant > 0, ap, torch.full_like(ap, torch.nan))


def precision_at(ranked: torch.Tensor, k: int) -> torch.Tensor:
    """Fraction of relevant objects among the first k retrieved: (b, N) -> (b,)."""
    return ranked[:, :k].sum(dim=1) / k


def class_retrieval(embeddings: np.ndarray | torch.Tensor, labels: Sequence[str] | np.ndarray,
                    classes: Sequence[str] | None = None, ks: Sequence[int] = (10, 50, 100),
                    ) -> dict[str, dict[str, float | int | None]]:
    """Same-class retrieval: every object of a class queries all other objects.

    Args:
        embeddings: (N, D) representations.
        labels: (N,) class of each object.
        classes: classes to report (default: every label present), in this order.
        ks: cut-offs for precision@k.

    Returns:
        class -> ``{"n": objects, "map": mean AP, "precision@k": mean precision, ...}``;
        metrics are None for a class with fewer than 2 objects (nothing to retrieve).
    """
    x = unit_rows(embeddings)
    labels = np.asarray(labels)
    if labels.shape[0] != x.shape[0]:
        raise ValueError(f"{labels.shape[0]} labels for {x.shape[0]} embeddings")
    classes = list(classes) if classes is not None else sorted(set(labels.tolist()))
    out: dict[str, dict[str, float | int | None]] = {}
    for name in classes:
        members = np.flatnonzero(labels == name)
        row: dict[str, float | int | None] = {"n": int(members.size), "map": None}
        row.update({f"precision@{k}": None for k in ks})
        if members.size >= 2:
            is_member = torch.from_numpy(labels == name)
            aps, precisions = [], {k: [] for k in ks}
            for lo, hi in _chunks(members.size):
                queries = torch.from_numpy(members[lo:hi])
                sims = x[queries] @ x.T  # (b, N)
                rows = torch.arange(hi - lo)
                sims[rows, queries] = -torch.inf  # never retrieve the query itself
                relevant = is_member.expand(hi - lo, -1).clone()
                relevant[rows, queries] = False
                ranked = ranked_relevance(sims, relevant)
                aps.append(average_precision(ranked))
                for k in ks:
                    precisions[k].append(precision_at(ranked, k))
            row["map"] = float(torch.cat(aps).mean())
            for k in ks:
                row[f"precision@{k}"] = float(torch.cat(precisions[k]).mean())
        out[name] = row
    return out
