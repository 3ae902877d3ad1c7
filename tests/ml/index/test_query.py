"""The query layer: arrays and index paths agree with each other and with brute force."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from index_testdata import brute_force

from ml.index.vectors import as_float32

K = 40  # the fixture bundle's stored k


def _expected(bundle, oid, k, window=None, exclude=(), allowed=None, include_self=False):
    mask = np.ones(bundle.n, bool) if allowed is None else allowed.copy()
    if window is not None:
        mask &= np.abs(bundle.mag_r.astype(np.float64) - float(bundle.mag_r[oid])) < window
    mask[list(exclude)] = False
    if not include_self:
        mask[oid] = False
    ids, sims = brute_force(bundle.vectors, bundle.vector(oid), mask)
    return ids[:k], sims[:k]


def _index_only(bundle):
    """The same bundle without its arrays: every answer comes from the index."""
    from ml.index.query import Searcher

    return Searcher(bundle.vectors, bundle.index, bundle.mag_r)


@pytest.mark.parametrize("window", [None, 0.5])
def test_neighbours_arrays_and_index_agree_with_brute_force(survey_and_bundle, window):
    _, bundle = survey_and_bundle
    index_only = _index_only(bundle)
    for oid in (0, 1, 17, 250, 599):
        want_ids, want_sims = _expected(bundle, oid, 10, window)
        for searcher in (bundle, index_only):
            ids, sims = searcher.neighbours(oid, k=10, mag_window=window)
            np.testing.assert_array_equal(ids, want_ids)
            np.testing.assert_allclose(sims, want_sims, atol=1e-3)
            assert ids.dtype == np.int64 and sims.dtype == np.float32


def test_uncovered_requests_fall_back_to_the_index(survey_and_bundle, monkeypatch):
    _, bundle = survey_and_bundle
    oid = 5
    # exclude most of the stored row: fewer than k remain in it, so the index must answer
    stored = bundle.knn.ids[oid]
    exclude = stored[1:35]
    calls = []
    original = type(bundle)._filtered
    monkeypatch.setattr(type(bundle), "_filtered",
                        lambda self, *a, **kw: calls.append(1) or original(self, *a, **kw))
    ids, _ = bundle.neighbours(oid, k=10, exclude=exclude)
    want_ids, _ = _expected(bundle, oid, 10, exclude=exclude)
    np.testing.assert_array_equal(ids, want_ids)
    assert calls, "the index path should have answered"
    calls.clear()
    ids, _ = bundle.neighbours(oid, k=K + 5)  # more than stored
    np.testing.assert_array_equal(ids, _expected(bundle, oid, K + 5)[0])
    assert calls
    calls.clear()
    bundle.neighbours(oid, k=10, exclude=exclude[:5])  # still covered by the arrays
    assert not calls


def test_other_windows_and_nan_magnitudes(survey_and_bundle):
    _, bundle = survey_and_bundle
    ids, _ = bundle.neighbours(3, k=8, mag_window=0.2)  # not stored: index path
    np.testing.assert_array_equal(ids, _expected(bundle, 3, 8, window=0.2)[0])
    nan_object = int(np.flatnonzero(np.isnan(bundle.mag_r))[0])
    for searcher in (bundle, _index_only(bundle)):
        ids, sims = searcher.neighbours(nan_object, k=8, mag_window=0.5)
        assert ids.size == 0 and sims.size == 0
        assert searcher.neighbours(nan_object, k=8)[0].size == 8  # no window: fine


def test_exclude_allowed_and_include_self(survey_and_bundle):
    _, bundle = survey_and_bundle
    rng = np.random.default_rng(0)
    allowed = rng.random(bundle.n) < 0.3
    exclude = set(rng.choice(bundle.n, 50, replace=False).tolist())
    for searcher in (bundle, _index_only(bundle)):
        for window in (None, 0.5):
            ids, _ = searcher.neighbours(9, k=12, mag_window=window, exclude=exclude,
                                         allowed=allowed)
            want, _ = _expected(bundle, 9, 12, window, exclude, allowed)
            np.testing.assert_array_equal(ids, want)
            assert not set(ids.tolist()) & exclude and allowed[ids].all()
        ids, sims = searcher.neighbours(9, k=3, include_self=True)
        assert ids[0] == 9 and sims[0] == pytest.approx(1.0, abs=2e-3)


def test_search_vector_and_batches(survey_and_bundle):
    _, bundle = survey_and_bundle
    q = np.random.default_rng(1).normal(size=bundle.dim)
    ids, sims = bundle.search_vector(q * 7.0, k=10)  # any length: normalised
    want_ids, want_sims = brute_force(bundle.vectors, q / np.linalg.norm(q))
    np.testing.assert_array_equal(ids, want_ids[:10])
    np.testing.assert_allclose(sims, want_sims[:10], rtol=1e-5, atol=1e-6)
    batch_ids, batch_sims = bundle.search_vector(np.stack([q, -q]), k=10)
    assert batch_ids.shape == batch_sims.shape == (2, 10)
    np.testing.assert_array_equal(batch_ids[0], ids)
    ids, _ = bundle.search_vector(q, k=10, mag_r=18.0, mag_window=0.5)
    mask = np.abs(bundle.mag_r.astype(np.float64) - 18.0) < 0.5
    np.testing.assert_array_equal(ids, brute_force(bundle.vectors, q / np.linalg.norm(q),
                                                   mask)[0][:10])
    with pytest.raises(ValueError, match="needs the query's mag_r"):
        bundle.search_vector(q, k=5, mag_window=0.5)


@pytest.mark.parametrize("combine", ["mean", "max"])
def test_several_seeds(survey_and_bundle, combine):
    _, bundle = survey_and_bundle
    seeds = bundle.vectors_of([4, 40, 400])
    unit = seeds / np.linalg.norm(seeds, axis=1, keepdims=True)
    ids, scores = bundle.search_vectors(seeds, k=15, combine=combine, exclude=[4, 40, 400])
    all_sims = as_float32(bundle.vectors) @ unit.T  # (N, 3)
    if combine == "max":
        score = all_sims.max(axis=1)
    else:
        centre = unit.mean(axis=0)
        score = as_float32(bundle.vectors) @ (centre / np.linalg.norm(centre))
    score[[4, 40, 400]] = -np.inf
    want = np.lexsort((np.arange(bundle.n), -score))[:15]
    np.testing.assert_array_equal(ids, want)
    np.testing.assert_allclose(scores, score[want], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="combine"):
        bundle.search_vectors(seeds, combine="median")


def test_top_by_weight_matches_brute_force(survey_and_bundle):
    _, bundle = survey_and_bundle
    w = np.random.default_rng(2).normal(size=bundle.dim) * 3.0
    exclude = [1, 2, 3]
    ids, scores = bundle.top_by_weight(w, k=20, exclude=exclude)
    score = as_float32(bundle.vectors).astype(np.float64) @ w
    score[exclude] = -np.inf
    want = np.lexsort((np.arange(bundle.n), -score))[:20]
    np.testing.assert_array_equal(ids, want)
    np.testing.assert_allclose(scores, score[want], rtol=1e-4)


def test_bad_arguments(survey_and_bundle):
    _, bundle = survey_and_bundle
    with pytest.raises(IndexError, match="outside"):
        bundle.neighbours(bundle.n)
    with pytest.raises(TypeError):
        bundle.neighbours(1.5)
    with pytest.raises(ValueError, match="k must be"):
        bundle.neighbours(1, k=0)
    with pytest.raises(ValueError, match="boolean mask"):
        bundle.neighbours(1, allowed=np.ones(3, bool))
    with pytest.raises(IndexError, match="exclude"):
        bundle.neighbours(1, exclude=[-1])


def test_concurrent_reads_match_serial(survey_and_bundle):
    _, bundle = survey_and_bundle
    index_only = _index_only(bundle)
    jobs = [(oid, w) for oid in range(0, 600, 37) for w in (None, 0.5, 0.3)]
    serial = [index_only.neighbours(o, k=15, mag_window=w)[0] for o, w in jobs]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda job: index_only.neighbours(job[0], k=15,
                                                                   mag_window=job[1])[0], jobs))
    for a, b in zip(serial, threaded, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_filters_through_the_index_selector(survey_and_bundle, monkeypatch, kind):
    """With the brute-force shortcut off, windows and masks go through Faiss IDSelectors."""
    import ml.index.query as query
    from ml.index.faiss_index import FaissIndex, build_index, choose_params

    monkeypatch.setattr(query, "EXACT_SUBSET_MAX_ELEMENTS", 0)
    _, bundle = survey_and_bundle
    params = choose_params(bundle.n, bundle.dim, kind)
    searcher = query.Searcher(bundle.vectors, FaissIndex(build_index(bundle.vectors, params,
                                                                     False), params),
                              bundle.mag_r)
    allowed = np.random.default_rng(3).random(bundle.n) < 0.5
    recalls = []
    for oid in range(0, 600, 50):
        for window, mask in ((0.5, None), (None, allowed), (0.5, allowed)):
            ids, sims = searcher.neighbours(oid, k=10, mag_window=window, exclude=[oid + 1],
                                            allowed=mask)
            want, _ = _expected(bundle, oid, 10, window, [oid + 1], mask)
            assert ids.size == want.size  # never short: the exact scan covers what Faiss misses
            assert (np.diff(sims) <= 0).all()
            if kind == "flat":
                np.testing.assert_array_equal(ids, want)
            if want.size:  # an object with a NaN magnitude has an empty window
                recalls.append(np.intersect1d(ids, want).size / want.size)
    assert np.mean(recalls) >= 0.95
