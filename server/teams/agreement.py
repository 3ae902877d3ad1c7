"""How much a campaign's labelers agree: Fleiss' kappa for the team, Cohen's kappa per pair.

The categories are the label values (accept, reject, unsure); only the team's own labels count
(labels imported from a source are not a rater).

Fleiss' kappa (Fleiss 1971) is computed over the objects with at least two labels. In a team
campaign the number of labels per object varies (an overlap of 2 with a third look now and
then), so each object's agreement uses its own number of raters n_i:

    P_i = (sum_j n_ij^2 - n_i) / (n_i (n_i - 1))      (the share of agreeing rater pairs)
    P   = mean_i P_i,   p_j = sum_i n_ij / sum_i n_i,  P_e = sum_j p_j^2
    kappa = (P - P_e) / (1 - P_e)

which is Fleiss' formula exactly when every object has the same number of raters (the
generalisation used e.g. by Fleiss, Levin & Paik, *Statistical Methods for Rates and
Proportions*, 3rd ed., ch. 18). Kappa is undefined (None) when every label falls in one
category (P_e = 1) or no object has two labels.

Cohen's kappa (Cohen 1960) for two labelers uses the objects both labeled: from their
confusion matrix M (3 x 3, n = sum M), p_o = trace(M) / n and p_e = sum_j row_j col_j / n^2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import and_, func, select
from sqlalchemy.orm import aliased

from server.extensions import db
from server.models import Label
from server.teams.consensus import VALUES


@dataclass(frozen=True)
class Fleiss:
    kappa: float | None
    items: int  # objects with at least two labels
    ratings: int  # labels on those objects
    observed: float | None  # P: mean share of agreeing pairs
    expected: float | None  # P_e: agreement expected by chance
    category_share: dict[str, float]  # p_j
    raters_min: int
    raters_max: int


@dataclass(frozen=True)
class Cohen:
    user_a: int
    user_b: int
    overlap: int  # objects both labeled
    observed: float  # p_o
    expected: float  # p_e
    kappa: float | None
    confusion: list[list[int]]  # [a's value][b's value], in VALUES order


def fleiss_kappa(counts: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """Fleiss' kappa of a table of counts, items with any number (>= 2) of raters.

    Args:
        counts: (N, C) how many raters put item i in category j; rows with fewer than two
            ratings are ignored.

    Returns:
        (kappa, P, P_e); kappa is None when undefined (no item, or P_e = 1), P and P_e are None
        without items.
    """
    counts = np.asarray(counts, dtype=np.float64)
    n_i = counts.sum(axis=1)
    counts, n_i = counts[n_i >= 2], n_i[n_i >= 2]
    if len(counts) == 0:
        return None, None, None
    p_items = ((counts ** 2).sum(axis=1) - n_i) / (n_i * (n_i - 1))
    observed = float(p_items.mean())
    shares = counts.sum(axis=0) / n_i.sum()
    expected = float((shares ** 2).sum())
    if np.isclose(expected, 1.0):
        return None, observed, expected
    return (observed - expected) / (1.0 - expected), observed, expected


def cohen_kappa(confusion: np.ndarray) -> tuple[float | None, float, float]:
    """Cohen's kappa of a (C, C) confusion matrix: (kappa or None if undefined, p_o, p_e)."""
    confusion = np.asarray(confusion, dtype=np.float64)
    n = confusion.sum()
    if n == 0:
        return None, 0.0, 0.0
    observed = float(np.trace(confusion) / n)
    expected = float((confusion.sum(axis=1) * confusion.sum(axis=0)).sum() / n ** 2)
    if np.isclose(expected, 1.0):
        return None, observed, expected
    return (observed - expected) / (1.0 - expected), observed, expected


def campaign_fleiss(campaign_id: int) -> Fleiss:
    """Fleiss' kappa of the campaign's team labels (objects with at least two)."""
    per_object = (select(Label.object_id, Label.value, func.count().label("n"))
                  .where(Label.campaign_id == campaign_id)
                  .group_by(Label.object_id, Label.value).subquery())
    raters = (select(Label.object_id).where(Label.campaign_id == campaign_id)
              .group_by(Label.object_id).having(func.count() >= 2).subquery())
    rows = db.session.execute(
        select(per_object.c.object_id, per_object.c.value, per_object.c.n)
        .join(raters, raters.c.object_id == per_object.c.object_id)).all()
    index: dict[int, int] = {}
    counts = np.zeros((len({r[0] for r in rows}), len(VALUES)), dtype=np.int64)
    for object_id, value, n in rows:
        counts[index.setdefault(object_id, len(index)), VALUES.index(value)] = n
    kappa, observed, expected = fleiss_kappa(counts)
    n_i = counts.sum(axis=1)
    total = int(n_i.sum())
    shares = {v: (float(counts[:, j].sum() / total) if total else 0.0)
              for j, v in enumerate(VALUES)}
    return Fleiss(kappa, len(counts), total, observed, expected, shares,
                  int(n_i.min()) if len(n_i) else 0, int(n_i.max()) if len(n_i) else 0)


def pairwise_cohen(campaign_id: int) -> list[Cohen]:
    """Cohen's kappa of every pair of labelers who labeled at least one object in common,
    ordered by (user_a, user_b) with user_a < user_b."""
    a, b = aliased(Label), aliased(Label)
    rows = db.session.execute(
        select(a.user_id, b.user_id, a.value, b.value, func.count())
        .join(b, and_(b.campaign_id == a.campaign_id, b.object_id == a.object_id,
                      b.user_id > a.user_id))
        .where(a.campaign_id == campaign_id)
        .group_by(a.user_id, b.user_id, a.value, b.value)).all()
    matrices: dict[tuple[int, int], np.ndarray] = {}
    for user_a, user_b, value_a, value_b, n in rows:
        matrix = matrices.setdefault((user_a, user_b), np.zeros((3, 3), dtype=np.int64))
        matrix[VALUES.index(value_a), VALUES.index(value_b)] = n
    out = []
    for (user_a, user_b), matrix in sorted(matrices.items()):
        kappa, observed, expected = cohen_kappa(matrix)
        out.append(Cohen(user_a, user_b, int(matrix.sum()), observed, expected, kappa,
                         matrix.tolist()))
    return out
