"""Exact top-k and the all-pairs similarity arrays against brute force."""

from __future__ import annotations

import itertools

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


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("window", [None, 0.5, 0.05])
def test_all_pairs_match_brute_force(small_blocks, window, symmetric):
    n, k = 400, 30
    vectors16 = clustered(n).astype(np.float16)
    mag = magnitudes(n)
    ids = np.zeros((n, k), np.int32)
    sims = np.zeros((n, k), np.float16)
    knn.all_pairs_topk(vectors16, k, ids, sims, mag, window, progress=False, symmetric=symmetric)
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


# -- the symmetric pass (one product per block pair) against the per-block pass ----------------
@pytest.fixture
def symmetric_blocks(monkeypatch):
    # block edges of the two passes fall in different places, and N is a multiple of neither
    monkeypatch.setattr(knn, "QUERY_BLOCK_ROWS", 70)
    monkeypatch.setattr(knn, "DB_CHUNK_ROWS", 50)
    monkeypatch.setattr(knn, "SYMMETRIC_BLOCK_ROWS", 64)


def _both_passes(vectors16, k, mag, window):
    out = []
    for symmetric in (False, True):
        n = vectors16.shape[0]
        ids = np.zeros((n, k), np.int32)
        sims = np.zeros((n, k), np.float16)
        knn.all_pairs_topk(vectors16, k, ids, sims, mag, window, progress=False,
                           symmetric=symmetric)
        out.append((ids, sims))
    return out


def _assert_same_arrays(per_block, symmetric):
    np.testing.assert_array_equal(symmetric[0], per_block[0])
    # bit for bit, NaN padding included
    np.testing.assert_array_equal(symmetric[1].view(np.uint16), per_block[1].view(np.uint16))


@pytest.mark.parametrize("window", [None, 0.5, 0.05])
@pytest.mark.parametrize("dim", [24, 64])
def test_symmetric_pass_equals_per_block_pass(symmetric_blocks, window, dim):
    n, k = 437, 30
    vectors16 = clustered(n, dim).astype(np.float16)
    mag = magnitudes(n)  # every 53rd NaN: rows of padding in the window arrays
    per_block, symmetric = _both_passes(vectors16, k, mag, window)
    _assert_same_arrays(per_block, symmetric)
    ids, sims = symmetric
    if window is None:
        assert (ids[:, 0] == np.arange(n)).all()
    else:
        assert (ids[np.isnan(mag)] == -1).all() and np.isnan(sims[np.isnan(mag)].astype(float)).all()
    if window == 0.05:
        assert (ids[np.isfinite(mag)] == -1).any(axis=1).mean() > 0.5  # windows < k: padding


@pytest.mark.parametrize("window", [None, 0.5])
def test_symmetric_pass_matches_brute_force(symmetric_blocks, window):
    n, k = 301, 25
    vectors16 = clustered(n, seed=3).astype(np.float16)
    mag = magnitudes(n, seed=3).astype(np.float64)
    ids = np.zeros((n, k), np.int32)
    sims = np.zeros((n, k), np.float16)
    knn.all_pairs_topk(vectors16, k, ids, sims, mag, window, progress=False, symmetric=True)
    # all cosines from one GEMM (not gemv, whose sums may differ in the last bit and swap a
    # near-tie of this data); a copy so NumPy does not take the syrk path
    v = as_float32(vectors16)
    cosines = v @ v.copy().T
    for i in range(n):
        allowed = np.ones(n, bool) if window is None else np.abs(mag - mag[i]) < window
        cand = np.flatnonzero(allowed)
        ranked = cand[np.lexsort((cand, -cosines[i, cand]))]
        want_ids, want_sims = ranked[:k], cosines[i, ranked[:k]]
        got = ids[i][ids[i] >= 0]
        np.testing.assert_array_equal(got, want_ids)
        np.testing.assert_allclose(sims[i][: got.size].astype(np.float32), want_sims, atol=1e-3)
        assert np.isnan(sims[i][got.size:].astype(np.float32)).all()


def _assert_same_up_to_ties(per_block, symmetric):
    """The same similarities bit for bit, and per row the same ids except in the order of
    entries of equal stored similarity (and, in the last such group, which tied ids made the
    cut): what holds on every BLAS kernel (see ml/index/knn.py, SMALL_PRODUCT_MADDS)."""
    (ids_a, sims_a), (ids_b, sims_b) = per_block, symmetric
    np.testing.assert_array_equal(sims_b.view(np.uint16), sims_a.view(np.uint16))
    for row in range(ids_a.shape[0]):
        values = sims_a[row].view(np.uint16)
        groups = np.r_[0, np.flatnonzero(values[1:] != values[:-1]) + 1, values.size]
        for lo, hi in itertools.pairwise(groups[:-1]):  # all but the last group
            assert set(ids_a[row, lo:hi]) == set(ids_b[row, lo:hi]), (row, lo, hi)


@pytest.mark.parametrize("window", [None, 0.5])
def test_symmetric_pass_agrees_with_the_per_block_pass_on_ties(symmetric_blocks, window):
    # every row a copy of one of 40 vectors: rows full of ties, also at the k-th place. Whether
    # copies of one vector get bit-identical float32 cosines wherever they sit in a GEMM tile
    # depends on the BLAS kernel (OpenBLAS' SkylakeX one: yes; its Haswell one, which it picks
    # on AMD Zen: not always), so the two passes may order tied copies differently; they agree
    # on the similarities and on which objects are in each group of equal similarity.
    n, k = 437, 40
    src = np.random.default_rng(5).integers(0, 40, n)
    vectors16 = clustered(40).astype(np.float16)[src]
    mag = magnitudes(n)
    per_block, symmetric = _both_passes(vectors16, k, mag, window)
    _assert_same_up_to_ties(per_block, symmetric)
    ids, sims = symmetric
    n_tied = n_entries = 0
    for i in np.flatnonzero(np.isfinite(mag))[::7]:  # (NaN magnitude: an empty window row)
        row_ids = ids[i][ids[i] >= 0]
        row_sims = sims[i][: row_ids.size].astype(np.float32)
        assert (np.diff(row_sims) <= 0).all()
        # copies of one vector have equal stored similarities (float16)
        groups = src[row_ids]
        same = groups[1:] == groups[:-1]
        assert (row_sims[1:][same] == row_sims[:-1][same]).all()
        n_tied += same.sum()
        n_entries += row_ids.size
    assert n_tied > n_entries // 4  # the rows really are full of ties


@pytest.mark.parametrize("n", [1, 2, 17, 64, 65])
def test_symmetric_pass_small_n_and_k_beyond_n(symmetric_blocks, n):
    k = n + 5  # every row padded, also without a window
    vectors16 = clustered(max(n, 2), seed=1)[:n].astype(np.float16)
    mag = magnitudes(n, seed=2)
    for window in (None, 0.5):
        per_block, symmetric = _both_passes(vectors16, k, mag, window)
        _assert_same_arrays(per_block, symmetric)
    ids, sims = _both_passes(vectors16, k, mag, None)[1]
    assert (ids[:, n:] == -1).all() and np.isnan(sims[:, n:].astype(np.float32)).all()
    assert (np.sort(ids[:, :n], axis=1) == np.arange(n)).all()


def test_symmetric_pass_is_chosen_within_its_memory_bound(monkeypatch, symmetric_blocks):
    n, k = 120, 10
    vectors16 = clustered(n).astype(np.float16)
    ids = np.zeros((n, k), np.int32)
    sims = np.zeros((n, k), np.float16)

    def symmetric_pass(*args):
        raise AssertionError("symmetric pass used")

    monkeypatch.setattr(knn, "_all_pairs_symmetric", symmetric_pass)
    assert knn.symmetric_heap_bytes(n, k) == 12 * n * k
    monkeypatch.setattr(knn, "SYMMETRIC_MAX_HEAP_BYTES", 12 * n * k - 1)
    knn.all_pairs_topk(vectors16, k, ids, sims, progress=False)  # per-block: fits no heaps
    assert (ids[:, 0] == np.arange(n)).all()
    monkeypatch.setattr(knn, "SYMMETRIC_MAX_HEAP_BYTES", 12 * n * k)
    with pytest.raises(AssertionError, match="symmetric pass used"):
        knn.all_pairs_topk(vectors16, k, ids, sims, progress=False)
