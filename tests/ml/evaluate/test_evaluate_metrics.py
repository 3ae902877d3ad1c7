"""Retrieval maths on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.evaluate.metrics import (
    average_precision,
    class_retrieval,
    invariance_ranks,
    invariance_summary,
    precision_at,
    ranked_relevance,
)


def test_average_precision_of_a_perfect_ranking_is_one():
    ranked = torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0]])
    assert average_precision(ranked).item() == pytest.approx(1.0)


def test_average_precision_of_known_rankings():
    # relevant at ranks 1 and 3: (1/1 + 2/3) / 2
    assert average_precision(torch.tensor([[1.0, 0.0, 1.0, 0.0]])).item() == pytest.approx(5 / 6)
    # relevant at ranks 2 and 4: (1/2 + 2/4) / 2
    assert average_precision(torch.tensor([[0.0, 1.0, 0.0, 1.0]])).item() == pytest.approx(0.5)
    # nothing relevant: undefined
    assert torch.isnan(average_precision(torch.tensor([[0.0, 0.0]]))).item()


def test_ranked_relevance_orders_by_similarity():
    sims = torch.tensor([[0.1, 0.9, 0.5]])
    relevant = torch.tensor([[True, False, True]])
    assert ranked_relevance(sims, relevant).tolist() == [[0.0, 1.0, 1.0]]
    assert precision_at(torch.tensor([[1.0, 0.0, 1.0, 1.0]]), 2).item() == pytest.approx(0.5)


def test_class_retrieval_on_a_hand_computed_layout():
    # 1-D directions: a0 = a1 (same class), b far from both, a2 between
    emb = np.array([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [0.7, 0.7]])
    labels = np.array(["a", "a", "b", "a"])
    out = class_retrieval(emb, labels, classes=["a", "b", "c"], ks=(1, 2))
    # query 0: ranking 1 (a), 3 (a), 2 (b) -> AP 1; query 1: same -> 1;
    # query 3: cosines to 0: .707, to 1: .714, to 2: .707 -> ranking 1 (a), then 0 and 2 tie
    # at .707 (stable order keeps 0 first) -> AP 1
    assert out["a"]["map"] == pytest.approx(1.0)
    assert out["a"]["precision@1"] == pytest.approx(1.0)
    assert out["a"]["precision@2"] == pytest.approx(1.0)
    # b has no other member: nothing to retrieve; c is absent
    assert out["b"] == {"n": 1, "map": None, "precision@1": None, "precision@2": None}
    assert out["c"]["n"] == 0 and out["c"]["map"] is None


def test_class_retrieval_mean_average_precision_value():
    # a query whose classmates come at ranks 2 and 3: AP = (1/2 + 2/3) / 2 = 7/12
    emb = np.array([[1.0, 0.0], [0.9, 0.1], [0.6, 0.4], [0.5, 0.5], [0.0, 1.0]])
    labels = np.array(["x", "y", "x", "x", "y"])
    out = class_retrieval(emb, labels, classes=["x"], ks=(2,))
    # query 0 -> 1 (y), 2 (x), 3 (x), 4 (y): AP 7/12
    # query 2 -> 3 (x), 1 (y), 0 (x), 4 (y): AP (1 + 2/3) / 2 = 5/6
    # query 3 -> 2 (x), 1 (y), 4 (y) vs 0 (x): cos(3,0)=.707, cos(3,4)=.707, tie: stable
    #            order puts 0 before 4 -> 2, 1, 0, 4: AP (1 + 2/3) / 2 = 5/6
    assert out["x"]["map"] == pytest.approx((7 / 12 + 5 / 6 + 5 / 6) / 3)
    assert out["x"]["precision@2"] == pytest.approx((0.5 + 0.5 + 0.5) / 3)


def test_invariance_ranks():
    originals = np.eye(4)
    # copies equal to their originals rank first
    assert invariance_ranks(originals, originals).tolist() == [0, 0, 0, 0]
    # copies 0 and 1 swapped: each original finds the other's copy first, its own never
    copies = originals[[1, 0, 2, 3]]
    ranks = invariance_ranks(originals, copies)
    assert ranks[2] == 0 and ranks[3] == 0
    assert ranks[0] >= 1 and ranks[1] >= 1
    assert invariance_summary(ranks, top=(1, 10)) == {"top1": 0.5, "top10": 1.0}


def test_degenerate_representations_do_not_score_well():
    # every vector equal: ties count against the copy, so nothing ranks first
    same = np.ones((5, 3))
    assert invariance_summary(invariance_ranks(same, same))["top1"] == 0.0
