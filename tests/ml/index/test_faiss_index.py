"""Every index kind against brute force; the choice rule; save / memory-mapped load."""

from __future__ import annotations

import numpy as np
import pytest
from index_testdata import brute_force, clustered

from ml.index.faiss_index import (
    FaissIndex,
    IndexBuildError,
    build_index,
    choose_params,
)
from ml.index.query import Searcher
from ml.index.vectors import as_float32

N_IVF = 10_000  # ivfpq needs 256 * 39 vectors to train its codebooks


@pytest.fixture(scope="module")
def data():
    vectors16 = clustered(N_IVF, dim=16, seed=3).astype(np.float16)
    queries = as_float32(vectors16[::500])
    return vectors16, queries / np.linalg.norm(queries, axis=1, keepdims=True)


def test_choice_rule():
    assert choose_params(4096, 2048).kind == "flat"
    assert choose_params(65_536, 128).kind == "flat"
    hnsw = choose_params(100_000, 2048)
    assert (hnsw.kind, hnsw.reduced_dim) == ("hnsw", 256)
    ivf = choose_params(10_000_000, 2048)
    assert (ivf.kind, ivf.reduced_dim, ivf.pq_m) == ("ivfpq", 256, 32)
    assert ivf.nlist == 2 ** round(np.log2(4 * np.sqrt(10_000_000)))
    assert choose_params(100_000, 2048, "ivfpq", nprobe=7).nprobe == 7
    with pytest.raises(IndexBuildError, match="at least 9984 vectors"):
        choose_params(5000, 64, "ivfpq")
    with pytest.raises(IndexBuildError, match="unknown index kind"):
        choose_params(5000, 64, "lsh")


def test_flat_is_exact(data):
    vectors16, queries = data
    params = choose_params(N_IVF, 16, "flat")
    searcher = Searcher(vectors16, FaissIndex(build_index(vectors16, params, False), params))
    for q in queries:
        ids, sims = searcher.search_vector(q, 50)
        want_ids, want_sims = brute_force(vectors16, q)
        np.testing.assert_array_equal(ids, want_ids[:50])
        np.testing.assert_allclose(sims, want_sims[:50], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["hnsw", "ivfpq"])
def test_approximate_kinds_recall_and_exact_order(data, kind, tmp_path):
    vectors16, queries = data
    params = choose_params(N_IVF, 16, kind)
    built = FaissIndex(build_index(vectors16, params, False), params)
    built.save(tmp_path / "index.faiss")
    loaded = FaissIndex.load(tmp_path / "index.faiss", params, mmap=True)
    recalls = []
    for index in (built, loaded):
        searcher = Searcher(vectors16, index)
        for q in queries:
            ids, sims = searcher.search_vector(q, 50)
            want_ids, _ = brute_force(vectors16, q)
            recalls.append(np.intersect1d(ids, want_ids[:50]).size / 50)
            # re-ranked on the originals: returned objects are in true cosine order
            exact = as_float32(vectors16[ids]) @ q
            np.testing.assert_allclose(sims, exact, rtol=1e-5, atol=1e-6)
            assert (np.diff(sims) <= 0).all()
    assert np.mean(recalls) >= 0.95, recalls
    # the memory-mapped copy answers exactly like the built one
    assert recalls[: len(queries)] == recalls[len(queries):]


def test_selector_filters_candidates(data):
    vectors16, queries = data
    params = choose_params(N_IVF, 16, "hnsw")
    index = FaissIndex(build_index(vectors16, params, False), params)
    allowed = np.zeros(N_IVF, bool)
    allowed[::3] = True
    cand = index.search(queries[:2], 100, allowed=allowed)
    assert (cand >= 0).sum() > 0 and allowed[cand[cand >= 0]].all()
    excluded = np.arange(0, N_IVF, 2)
    cand = index.search(queries[:2], 100, excluded=excluded)
    assert not np.isin(cand[cand >= 0], excluded).any()
