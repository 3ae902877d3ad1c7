"""Probe maths: the training set, class balancing, the choice of C, the metrics."""

from __future__ import annotations

import numpy as np
import pytest
from probe_testdata import toy_searcher

from ml.probe import (
    ProbeDataError,
    ProbeLabels,
    ProbeSettings,
    TrainingSet,
    assemble_training_set,
    balanced_weights,
    fit_probe,
    sample_unlabeled,
    train_probe,
    unit_rows,
)


def test_balanced_weights_give_each_class_half():
    y = np.array([True, True, False, False, False, False])
    raw = np.array([1, 1, 1, 1, 0.1, 0.1])
    w = balanced_weights(y, raw)
    assert w[y].sum() == pytest.approx(raw.sum() / 2)
    assert w[~y].sum() == pytest.approx(raw.sum() / 2)
    # within a class the ratios of the raw weights are kept (weak negatives stay weak)
    assert w[4] / w[2] == pytest.approx(0.1)


def test_sample_unlabeled_is_distinct_uniform_and_avoids_excluded():
    rng = np.random.default_rng(0)
    exclude = np.arange(0, 1000, 2)
    ids = sample_unlabeled(1000, exclude, 300, rng)
    assert len(ids) == 300 == len(np.unique(ids))
    assert not np.isin(ids, exclude).any()
    # asking for more than there is returns all that is left
    assert len(sample_unlabeled(10, np.arange(7), 50, rng)) == 3
    # rare draws from a large pool: roughly uniform over it
    big = sample_unlabeled(1_000_000, np.arange(10), 2000, rng)
    assert len(big) == 2000 and 0.4 < np.mean(big < 500_000) < 0.6


def test_assemble_reads_unit_rows_of_the_bundle_and_skips_labeled_in_the_sample():
    searcher, labels = toy_searcher()
    positives = np.flatnonzero(labels)[:4]
    negatives = np.flatnonzero(~labels)[:6]
    data = assemble_training_set(searcher, positives, negatives, unlabeled_count=50,
                                 unlabeled_weight=0.2, seed=1,
                                 extra_positives=np.ones((1, searcher.dim)),
                                 exclude_from_unlabeled=[0, 1, 2])
    assert data.counts() == {"n_positive": 5, "n_negative": 6, "n_unlabeled": 50}
    np.testing.assert_allclose(np.linalg.norm(data.unlabeled, axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(data.positives[:4], unit_rows(searcher.vectors_of(positives)))
    # the weak negatives are the draw of the seed, never labeled or excluded objects
    again = assemble_training_set(searcher, positives, negatives, 50, 0.2, seed=1,
                                  exclude_from_unlabeled=[0, 1, 2])
    np.testing.assert_array_equal(data.unlabeled, again.unlabeled)
    labeled_rows = unit_rows(searcher.vectors_of(np.r_[positives, negatives, [0, 1, 2]]))
    assert not (data.unlabeled[:, None, :] == labeled_rows[None]).all(axis=2).any()
    with pytest.raises(ProbeDataError, match="both a positive and a negative"):
        assemble_training_set(searcher, [5], [5], 0, 0.1, seed=0)
    with pytest.raises(ProbeDataError, match="outside this bundle"):
        assemble_training_set(searcher, [searcher.n], [1], 0, 0.1, seed=0)


@pytest.mark.parametrize("positives, negatives, missing", [
    (3, 0, "a rejected object"), (0, 3, "an accepted object"), (0, 0, "and a rejected")])
def test_a_probe_needs_both_classes(positives, negatives, missing):
    rng = np.random.default_rng(0)
    data = TrainingSet(unit_rows(rng.normal(size=(positives, 4))),
                       unit_rows(rng.normal(size=(negatives, 4))),
                       unit_rows(rng.normal(size=(20, 4))), 0.1)
    with pytest.raises(ProbeDataError, match=f"cannot train a probe yet.*{missing}"):
        fit_probe(data)


def _separable(n_pos: int, n_neg: int, dim: int = 8, seed: int = 0) -> TrainingSet:
    rng = np.random.default_rng(seed)
    centre = np.zeros(dim)
    centre[0] = 3
    pos = rng.normal(size=(n_pos, dim)) * 0.3 + centre
    neg = rng.normal(size=(n_neg, dim)) * 0.3 - centre
    weak = rng.normal(size=(40, dim)) * 0.3 - centre
    return TrainingSet(unit_rows(pos), unit_rows(neg), unit_rows(weak), 0.1)


def test_separable_labels_give_a_perfect_cross_validated_probe():
    data = _separable(12, 15)
    probe = fit_probe(data, seed=3)
    m = probe.metrics
    assert m["c_chosen_by"] == "cross-validation" and m["converged"]
    assert m["cv"]["folds"] == 5 and m["cv"]["roc_auc"] == 1.0
    assert m["cv"]["precision_at_top"] == 1.0 and m["cv"]["precision_at_top_k"] == 12
    assert (m["n_positive"], m["n_negative"], m["n_unlabeled"]) == (12, 15, 40)
    assert (probe.probability(data.positives) > 0.5).all()
    assert (probe.probability(data.negatives) < 0.5).all()
    assert probe.coef.dtype == np.float32 and probe.coef.shape == (8,)


def test_c_is_the_grid_value_with_the_best_held_out_auc():
    rng = np.random.default_rng(4)
    # overlapping classes in many dimensions: regularisation matters
    dim = 40
    signal = np.zeros(dim)
    signal[:3] = 0.4
    pos = rng.normal(size=(10, dim)) + signal
    neg = rng.normal(size=(14, dim)) - signal
    data = TrainingSet(unit_rows(pos), unit_rows(neg), unit_rows(rng.normal(size=(30, dim))),
                       0.1)
    settings = ProbeSettings(c_grid=(0.01, 1.0, 100.0))
    probe = fit_probe(data, settings, seed=0)
    by_c = {float(c): auc for c, auc in probe.metrics["cv"]["roc_auc_by_c"].items()}
    best = max(by_c.values())
    chosen = min(c for c, auc in by_c.items() if auc == best)
    assert chosen == probe.C
    assert probe.metrics["cv"]["roc_auc"] == best
    # the same seed gives the same folds and the same choice
    assert fit_probe(data, settings, seed=0).C == probe.C


def test_few_labels_use_the_default_c_and_claim_no_metrics():
    probe = fit_probe(_separable(3, 20), ProbeSettings(default_c=7.0))
    assert probe.C == 7.0 and probe.metrics["c_chosen_by"] == "default"
    assert probe.metrics["cv"] is None
    assert "fewer than 5 labeled objects of each class" in probe.metrics["cv_skipped"]


def test_class_balancing_lets_a_few_positives_count():
    """Three positives against 200 negatives: balanced, the probe calls its positives
    positive; the same rows unweighted would leave them all below 0.5."""
    rng = np.random.default_rng(5)
    dim = 6
    direction = np.zeros(dim)
    direction[0] = 1
    pos = unit_rows(rng.normal(size=(3, dim)) * 0.6 + direction)
    neg = unit_rows(rng.normal(size=(200, dim)) * 0.6 - 0.2 * direction)
    probe = fit_probe(TrainingSet(pos, neg, np.zeros((0, dim), np.float32), 0.0),
                      ProbeSettings(default_c=1.0))
    assert (probe.probability(pos) > 0.5).all()
    from sklearn.linear_model import LogisticRegression

    plain = LogisticRegression(C=1.0).fit(np.r_[pos, neg], np.r_[np.ones(3), np.zeros(200)])
    assert (plain.predict_proba(pos)[:, 1] < 0.5).all()


def test_weak_negatives_with_zero_weight_take_no_part():
    data = _separable(6, 6)
    without = TrainingSet(data.positives, data.negatives, data.unlabeled[:0], 0.0)
    zero = TrainingSet(data.positives, data.negatives, data.unlabeled, 0.0)
    settings = ProbeSettings(default_c=1.0, min_per_class_for_cv=10)
    np.testing.assert_allclose(fit_probe(zero, settings).coef, fit_probe(without, settings).coef)


def test_campaign_recipe_counts_seeds_unless_rejected_and_never_draws_them():
    searcher, labels = toy_searcher()
    rare = np.flatnonzero(labels)
    common = np.flatnonzero(~labels)
    recipe = ProbeLabels(accepted=rare[:3], rejected=np.r_[common[:5], rare[4]],
                         disputed=common[5:7], seed_ids=[rare[3], rare[4]],
                         seed_vectors=np.ones((1, searcher.dim)))
    assert recipe.positive_ids().tolist() == sorted(rare[:4].tolist())  # rare[4] was rejected
    probe = train_probe(searcher, recipe, unlabeled_count=searcher.n, unlabeled_weight=0.1)
    m = probe.metrics
    assert (m["n_positive"], m["n_negative"]) == (5, 6)  # 4 ids and the uploaded vector
    # every object but the labeled, disputed and seed ones was drawn
    assert m["n_unlabeled"] == searcher.n - len(set(rare[:5]) | set(common[:7]))
    again = train_probe(searcher, recipe, unlabeled_count=50, seed=3)
    assert np.array_equal(again.coef, train_probe(searcher, recipe, 50, seed=3).coef)
