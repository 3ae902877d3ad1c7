"""`galsearch evaluate` end to end on a tiny survey and a tiny checkpoint."""

from __future__ import annotations

import json

import numpy as np
import torch
from click.testing import CliRunner

from ml.encoder import Encoder
from ml.evaluate.baselines import PixelPCA
from server.cli import main


def test_evaluate_writes_json_and_markdown(tiny_survey, tiny_checkpoint, tmp_path):
    out = tmp_path / "eval"
    result = CliRunner().invoke(main, [
        "evaluate", "--checkpoint", str(tiny_checkpoint), "--survey", str(tiny_survey),
        "--n-sample", "40", "--out", str(out), "--batch-size", "16"])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "evaluation.json").read_text())
    assert data["n_sample"] == 40 and data["checkpoint_sha256"]
    reps = data["representations"]
    assert set(reps) == {"trained/prehead", "trained/head", "random/prehead", "random/head",
                         "pca"}
    assert reps["trained/prehead"]["dim"] == 64 and reps["trained/head"]["dim"] == 128
    for entry in reps.values():
        assert 0 <= entry["invariance"]["top1"] <= entry["invariance"]["top10"] <= 1
        assert set(entry["classes"]) == {"blob", "ring"}
        assert all(0 < c["map"] <= 1 for c in entry["classes"].values())
    assert sum(data["class_counts"].values()) == 40
    md = (out / "evaluation.md").read_text()
    assert "copy ranked 1st" in md and "| ring |" in md


def test_evaluate_reports_a_bad_checkpoint_clearly(tiny_survey, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    result = CliRunner().invoke(main, ["evaluate", "--checkpoint", str(bad),
                                       "--survey", str(tiny_survey)])
    assert result.exit_code != 0
    assert "not a readable PyTorch checkpoint" in result.output


def test_encoder_embeds_and_agrees_with_its_views(tiny_checkpoint):
    encoder = Encoder.from_checkpoint(tiny_checkpoint)
    assert encoder.dims == {"prehead": 64, "head": 128} and len(encoder.sha256) == 64
    images = np.random.default_rng(0).normal(0, 0.01, (5, 3, 40, 40)).astype(np.float32)
    reps = encoder.embed(images, batch_size=2)
    assert reps["prehead"].shape == (5, 64) and reps["head"].shape == (5, 128)
    assert reps["prehead"].dtype == np.float32
    views = encoder.preprocess(torch.from_numpy(images))
    assert views.shape == (5, 3, 16, 16)  # crop 24, out_size 16
    np.testing.assert_allclose(encoder.embed_views(views)["head"], reps["head"], rtol=1e-5,
                               atol=1e-6)


def test_pixel_pca_is_fitted_on_the_views():
    views = torch.rand(20, 3, 4, 4)
    pca = PixelPCA(n_components=128).fit(views)
    coords = pca.transform(views)
    assert coords.shape == (20, 19)  # capped at N - 1 components
    assert pca.explained_variance_ratio > 0.99
