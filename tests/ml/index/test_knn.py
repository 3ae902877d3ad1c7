"""Exact top-k and the all-pairs similarity arrays against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from index_testdata import brute_force, clustered, magnitudes

import ml.index.knn as knn
from ml.index.vectors import as_float32


@pytest.fixture
def small_blocks(monkeypatch):
    # several query blocks and database chunks, so block and window edges are exercised
    monkeypatch.setattr(knn, "QUERY_BLOCK_ROWS", 70)
    monkeypatch.setattr(knn, "DB_CHUNK_ROWS", 50)


def _expected_row(vectors16, mag, i, k, window):
    allowed = None
    if window is not None:
        allowed = np.abs(mag.astype(np.float64) - float(mag[i])) < window  # NaN: False
    ids, sims = brute_force(vectors16, as_float32(vectors16[i]), allowed)
    return ids[:k], sims[:k]


@pytest.mark.parametrize("window", [None, 0.5, 0.05])
def test_all_pairs_match_brute_force(small_blocks, window):
    n, k = 400, 30
    vectors16 = clustered(n).astype(np.float16)
    mag = magnitudes(n)
    ids = np.zeros((n, k), np.int32)
    sims = np.zeros((n, k), np.float16)
    knn.all_pairs_topk(vectors16, k, ids, sims, mag, window, progress=False)
    padded_rows = 0
    for i in range(n):
        want_ids, want_sims = _expected_row(vectors16, mag, i, k, window)
        got = ids[i][ids[i] >= 0]
        np.testing.assert_array_equal(got, want_ids)
        np.testing.assert_allclose(sims[i][: got.size].astype(np.float32), want_sims, atol=1e-3)
        assert np.isnan(sims[i][got.size:].astype(np.float32)).all()
        padded_rows += got.size < k
        if window is not None and np.isnan(mag[i]):
            assert got.size == 0  # a NaN magnitude is in no window, not even its own
        elif got.size:
            assert got[0] == i  # the object itself comes first
    if window == 0.05:
        assert padded_rows > n // 2  # narrow windows hold fewer than k objects


def test_exact_topk_with_candidates_and_padding():
    vectors16 = clustered(300).astype(np.float16)
    q = as_float32(vectors16[[3, 7]])
    candidates = np.arange(0, 300, 7)
    ids, sims = knn.exact_topk(q, vectors16, 50, candidates)
    for row in range(2):
        mask = np.zeros(300, bool)
        mask[candidates] = True
        want_ids, want_sims = brute_force(vectors16, q[row], mask)
        np.testing.assert_array_equal(ids[row][: want_ids.size], want_ids)
        np.testing.assert_allclose(sims[row][: want_ids.size], want_sims, rtol=1e-5, atol=1e-6)
        assert (ids[row][want_ids.size:] == -1).all()  # 43 candidates < k = 50


def test_window_bounds_are_strict_and_nan_safe():
    order, sorted_mag = knn.magnitude_order(np.array([18.0, np.nan, 17.5, 18.5, 18.2]))
    assert order[-1] == 1 and sorted_mag.size == 4
    lo, hi = knn.window_bounds(sorted_mag, np.array([18.0, np.nan]), 0.5)
    # |17.5 - 18| = 0.5 and |18.5 - 18| = 0.5 are not < 0.5: only 18.0 and 18.2
    np.testing.assert_array_equal(order[lo[0]:hi[0]], [0, 4])
    assert lo[1] == hi[1]


def test_all_pairs_via_search_equals_exact_with_an_exact_search(small_blocks):
    n, k = 200, 15
    vectors16 = clustered(n).astype(np.float16)
    mag = magnitudes(n)

    def search(queries, allowed):
        return knn.exact_topk(queries, vectors16, k,
                              None if allowed is None else np.flatnonzero(allowed))

    for window in (None, 0.5):
        a_ids = np.zeros((n, k), np.int32)
        a_sims = np.zeros((n, k), np.float16)
        b_ids, b_sims = a_ids.copy(), a_sims.copy()
        knn.all_pairs_topk(vectors16, k, a_ids, a_sims, mag, window, progress=False)
        knn.all_pairs_from_search(search, vectors16, k, b_ids, b_sims, mag, window, batch=64,
                                  progress=False)
        np.testing.assert_array_equal(a_ids, b_ids)
