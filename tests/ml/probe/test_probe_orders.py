"""Probe orders over a bundle: top score, uncertainty and mix, exact prefixes, stable keys."""

from __future__ import annotations

import numpy as np
import pytest
from probe_testdata import toy_searcher

from ml.index.vectors import as_float32
from ml.probe import ProbeOrder, assemble_training_set, fit_probe


@pytest.fixture(scope="module")
def trained():
    """A flat searcher, its planted labels, and a probe trained on a few of them."""
    searcher, labels = toy_searcher()
    positives = np.flatnonzero(labels)[:5]
    negatives = np.flatnonzero(~labels)[:20]
    probe = fit_probe(assemble_training_set(searcher, positives, negatives, 100, 0.1, seed=0))
    return searcher, labels, probe


def brute_force(searcher, probe, strategy: str, exclude=(), allowed=None) -> list[int]:
    """The whole order by its definition (module docstring of ml.probe.orders)."""
    s = as_float32(searcher.vectors) @ probe.coef
    ids = np.arange(searcher.n)
    eligible = np.ones(searcher.n, bool) if allowed is None else allowed.copy()
    top = [i for i in np.lexsort((ids, -s)) if eligible[i]]
    distance = np.abs(s.astype(np.float64) + probe.intercept)
    unc = [i for i in np.lexsort((ids, distance)) if eligible[i]]
    if strategy == "top":
        order = top
    elif strategy == "uncertainty":
        order = unc
    else:
        key = {}
        for rank, i in enumerate(top):
            key[i] = 2 * rank
        for rank, i in enumerate(unc):
            key[i] = min(key[i], 2 * rank + 1)
        order = sorted(key, key=lambda i: (key[i], i))
    return [int(i) for i in order if i not in set(exclude)]


def test_separable_data_ranks_the_positives_first(trained):
    searcher, labels, probe = trained
    order = ProbeOrder(searcher, probe.coef, probe.intercept, "top")
    ids, values, complete = order.first(int(labels.sum()))
    assert set(ids) == set(np.flatnonzero(labels))  # including the 25 it never saw
    assert not complete and np.all(np.diff(values) <= 0)
    # the probabilities shown are the probe's: the positives above one half
    assert (order.probability(ids) > 0.5).all()
    np.testing.assert_allclose(order.probability(ids),
                               probe.probability(as_float32(searcher.vectors[ids])), rtol=1e-5)


@pytest.mark.parametrize("strategy", ["top", "uncertainty", "mix"])
def test_each_strategy_is_its_definition(trained, strategy):
    searcher, _, probe = trained
    order = ProbeOrder(searcher, probe.coef, probe.intercept, strategy)
    ids, _, complete = order.first(searcher.n)
    assert complete and ids.tolist() == brute_force(searcher, probe, strategy)


@pytest.mark.parametrize("strategy", ["top", "uncertainty", "mix"])
def test_short_requests_return_an_exact_prefix(trained, strategy):
    searcher, _, probe = trained
    exclude = np.arange(0, searcher.n, 7)
    full = brute_force(searcher, probe, strategy, exclude)
    order = ProbeOrder(searcher, probe.coef, probe.intercept, strategy)
    for k in (1, 10, 60, 200):
        ids, values, _ = order.first(k, exclude)
        assert ids.tolist() == full[:len(ids)], k
        assert not np.isin(ids, exclude).any()
        assert np.all(np.diff(values) <= 0)
    # larger requests know at least as much
    assert len(order.first(200, exclude)[0]) >= len(order.first(60, exclude)[0])


def test_mix_alternates_the_two_orders_and_labeling_never_moves_the_rest(trained):
    searcher, _, probe = trained
    top = brute_force(searcher, probe, "top")
    unc = brute_force(searcher, probe, "uncertainty")
    mixed = brute_force(searcher, probe, "mix")
    assert mixed[0] == top[0]
    assert mixed[1] == (unc[0] if unc[0] != top[0] else unc[1])
    order = ProbeOrder(searcher, probe.coef, probe.intercept, "mix")
    ids, _, _ = order.first(searcher.n)
    removed = ids[:30:3]
    later, _, _ = order.first(searcher.n, removed)
    assert later.tolist() == [i for i in ids.tolist() if i not in set(removed.tolist())]


def test_catalog_filter_and_approximate_index(trained):
    _, labels, _ = trained
    searcher, labels = toy_searcher("hnsw", n=2000, rare=60)
    probe = fit_probe(assemble_training_set(
        searcher, np.flatnonzero(labels)[:8], np.flatnonzero(~labels)[:30], 200, 0.1, seed=0))
    allowed = np.zeros(searcher.n, bool)
    allowed[::2] = True
    order = ProbeOrder(searcher, probe.coef, probe.intercept, "top", allowed=allowed)
    ids, _, _ = order.first(20)
    assert allowed[ids].all()
    assert ids.tolist() == brute_force(searcher, probe, "top", allowed=allowed)[:20]


def test_fingerprint_and_bad_probes(trained):
    searcher, _, probe = trained
    a = ProbeOrder(searcher, probe.coef, probe.intercept, "top", key="v1")
    assert a.fingerprint() == ProbeOrder(searcher, probe.coef, probe.intercept, "top",
                                         key="v1").fingerprint()
    assert a.fingerprint() != ProbeOrder(searcher, probe.coef, probe.intercept, "mix",
                                         key="v1").fingerprint()
    assert a.fingerprint() != ProbeOrder(searcher, probe.coef, probe.intercept, "top",
                                         key="v2").fingerprint()
    with pytest.raises(ValueError, match="unknown strategy"):
        ProbeOrder(searcher, probe.coef, probe.intercept, "best")
    with pytest.raises(ValueError, match="trained on another bundle"):
        ProbeOrder(searcher, probe.coef[:3], probe.intercept)
    with pytest.raises(ValueError, match="all zero"):
        ProbeOrder(searcher, np.zeros_like(probe.coef), 0.0)
