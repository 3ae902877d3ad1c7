"""`galsearch evaluate --bundle`: retrieval through the index against exact search, figures."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from ml.evaluate.through_index import drop_self, ranking_metrics, retrieval_through_index
from ml.index import Searcher
from ml.index.faiss_index import FaissIndex, build_index, choose_params
from server.cli import main


def test_ranking_metrics_by_hand():
    labels = np.array(["a", "b", "a", "a", "b", "a"])
    # one query (an "a" not in the list) with 4 other a's in the survey; ranking: a b a -1
    ranked = np.array([[0, 1, 2, -1]])
    m = ranking_metrics(ranked, labels, "a", n_relevant=4, ks=(1, 2, 4, 10))
    # AP@4 = (1/4) (1/1 + 2/3)
    assert m["map@4"] == pytest.approx((1 + 2 / 3) / 4)
    assert m["precision@1"] == 1.0 and m["precision@2"] == 0.5 and m["precision@4"] == 0.5
    assert "precision@10" not in m  # deeper than the ranking
    # more relevant objects than the depth: normalised by the depth (1 = a perfect ranking)
    perfect = ranking_metrics(np.array([[0, 2, 3]]), labels, "a", n_relevant=4, ks=(1,))
    assert perfect["map@3"] == pytest.approx(1.0)


def test_drop_self_removes_the_query_and_cuts():
    ids = np.array([[5, 3, 9, 1], [2, 7, -1, -1]])
    sims = np.array([[1.0, 0.9, 0.8, 0.7], [0.95, 0.9, np.nan, np.nan]], dtype=np.float32)
    out_ids, out_sims = drop_self(ids, sims, np.array([5, 7]), depth=2)
    np.testing.assert_array_equal(out_ids, [[3, 9], [2, -1]])
    assert out_sims[0, 0] == pytest.approx(0.9) and np.isnan(out_sims[1, 1])


def _clustered(n=900, dim=16, n_classes=6, spread=0.6, seed=0):
    """Unit vectors around one random centre per class, overlapping (spread) so that classes
    are imperfectly separated, as real representations are."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    classes = rng.integers(0, n_classes, n)
    vectors = centres[classes] + spread * rng.standard_normal((n, dim)) / np.sqrt(dim) * 3
    vectors16 = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float16)
    return vectors16, np.array([f"c{c}" for c in classes])


@pytest.fixture(scope="module")
def clustered():
    return _clustered()


def test_a_flat_index_loses_nothing(clustered):
    vectors16, labels = clustered
    params = choose_params(len(vectors16), vectors16.shape[1], "flat")
    searcher = Searcher(vectors16, FaissIndex(build_index(vectors16, params, False), params))
    out = retrieval_through_index(searcher, labels, sorted(set(labels)), queries_per_class=15,
                                  depth=50)
    for row in out["classes"].values():
        assert row["exact"] == row["index"] and row["recall@50"] == 1.0
    s = out["summary"]
    assert s["relative_map_loss"] == 0.0 and s["within_tolerance"]
    assert 0 < s["exact_map@50"] <= 1


def test_a_poor_index_shows_its_loss(clustered):
    """An index built on badly perturbed copies proposes wrong candidates: re-ranking on the
    true vectors keeps the order exact but cannot recover what was never proposed."""
    vectors16, labels = clustered
    rng = np.random.default_rng(3)
    noisy = vectors16.astype(np.float32) + rng.normal(0, 0.5, vectors16.shape).astype(np.float32)
    noisy = (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float16)
    params = choose_params(len(vectors16), vectors16.shape[1], "flat")
    searcher = Searcher(vectors16, FaissIndex(build_index(noisy, params, False), params))
    out = retrieval_through_index(searcher, labels, sorted(set(labels)), queries_per_class=15,
                                  depth=50)
    recalls = [row["recall@50"] for row in out["classes"].values()]
    assert max(recalls) < 1.0
    s = out["summary"]
    assert s["index_map@50"] < s["exact_map@50"] and s["relative_map_loss"] > 0
    assert s["relative_map_loss"] == pytest.approx(1 - s["index_map@50"] / s["exact_map@50"])


def test_evaluate_a_bundle_end_to_end(tiny_survey, tiny_checkpoint, tmp_path):
    runner = CliRunner()
    emb, bundle, out = tmp_path / "emb", tmp_path / "bundle", tmp_path / "eval"
    done = runner.invoke(main, ["embed", "--checkpoint", str(tiny_checkpoint), "--survey",
                                str(tiny_survey), "--out", str(emb), "--workers", "0"])
    assert done.exit_code == 0, done.output
    done = runner.invoke(main, ["index", "--embeddings", str(emb), "--survey", str(tiny_survey),
                                "--out", str(bundle), "--k", "20"])
    assert done.exit_code == 0, done.output
    done = runner.invoke(main, [
        "evaluate", "--bundle", str(bundle), "--out", str(out), "--n-sample", "40",
        "--batch-size", "16", "--queries-per-class", "6", "--depth", "30",
        "--recall-queries", "8", "--recall-k", "5", "--map", "tsne", "--map-per-class", "20"])
    assert done.exit_code == 0, done.output
    data = json.loads((out / "evaluation.json").read_text())
    # the model's part, from the bundle's own model.pt
    assert set(data["representations"]) >= {"trained/prehead", "pca"}
    b = data["bundle"]
    assert b["n"] == 48 and b["index"]["kind"] == "flat"
    assert b["ann_recall"]["recall_at_k"] == 1.0 and b["ann_recall"]["k"] == 5
    retrieval = b["retrieval"]
    assert retrieval["depth"] == 30 and set(retrieval["classes"]) == {"blob", "ring"}
    assert all(r["queries"] == 6 and r["map_ratio"] == 1.0 for r in retrieval["classes"].values())
    assert retrieval["summary"]["within_tolerance"] is True
    assert data["figures"]["map_info"] == {"method": "tsne", "objects": 40, "per_class": 20}
    for name in ("neighbours.png", "map.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "evaluation.md").read_text()
    assert "copy ranked 1st" in md and "through the index against exact search" in md
    assert "within the 2% tolerance" in md and "![2-D map" in md


def test_evaluate_needs_a_checkpoint_and_survey_or_a_bundle(tiny_survey):
    result = CliRunner().invoke(main, ["evaluate", "--survey", str(tiny_survey)])
    assert result.exit_code != 0 and "--bundle" in result.output
