"""`galsearch index`: embeddings and bring-your-own inputs, and their errors."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from click.testing import CliRunner
from index_testdata import clustered, magnitudes, write_survey

from ml.index import open_bundle
from server.cli import main

N = 120


@pytest.fixture
def survey(tmp_path):
    return write_survey(tmp_path / "survey", magnitudes(N))


def _run(*args):
    return CliRunner().invoke(main, ["index", *map(str, args)])


def _embeddings(tmp_path, survey, fingerprint=None):
    folder = tmp_path / "emb"
    folder.mkdir()
    np.save(folder / "prehead.npy", clustered(N, dim=32).astype(np.float16))
    np.save(folder / "head.npy", clustered(N, dim=8, seed=4).astype(np.float16))
    ckpt = tmp_path / "release.pt"
    ckpt.write_bytes(b"a release checkpoint")
    (folder / "embed_manifest.json").write_text(json.dumps({
        "checkpoint": {"path": str(ckpt), "sha256": hashlib.sha256(ckpt.read_bytes()).hexdigest()},
        "survey": {"path": str(survey.path), "fingerprint": fingerprint or survey.fingerprint()},
        "n": N, "dims": {"prehead": 32, "head": 8},
    }))
    return folder


@pytest.mark.parametrize(("representation", "dim"), [("prehead", 32), ("head", 8)])
def test_from_embeddings(tmp_path, survey, representation, dim):
    folder = _embeddings(tmp_path, survey)
    result = _run("--embeddings", folder, "--survey", survey.path, "--out", tmp_path / "b",
                  "--representation", representation, "--k", 10)
    assert result.exit_code == 0, result.output
    b = open_bundle(tmp_path / "b", survey=survey)
    assert b.dim == dim and b.manifest["representation"] == representation
    assert b.checkpoint_path.read_bytes() == b"a release checkpoint"
    mags = np.asarray(b.mag_r, dtype=np.float64)
    np.testing.assert_allclose(mags, magnitudes(N), rtol=0, atol=1e-4, equal_nan=True)


def test_embeddings_of_another_survey(tmp_path, survey):
    folder = _embeddings(tmp_path, survey, fingerprint="0123456789abcdef")
    result = _run("--embeddings", folder, "--survey", survey.path, "--out", tmp_path / "b")
    assert result.exit_code != 0
    assert "were computed from the survey" in result.output
    assert not (tmp_path / "b").exists()


def test_unfinished_embeddings(tmp_path, survey):
    folder = tmp_path / "emb"
    folder.mkdir()
    result = _run("--embeddings", folder, "--survey", survey.path, "--out", tmp_path / "b")
    assert result.exit_code != 0 and "not the output of a finished" in result.output


def test_bring_your_own(tmp_path, survey):
    np.save(tmp_path / "mine.npy", clustered(N, dim=12))
    result = _run("--representations", tmp_path / "mine.npy", "--survey", survey.path,
                  "--out", tmp_path / "b", "--k", 5, "--mag-window", 0, "--index", "flat")
    assert result.exit_code == 0, result.output
    b = open_bundle(tmp_path / "b")
    assert b.manifest["representation"] == "external:mine.npy"
    assert b.manifest["checkpoint"]["sha256"] == "external" and b.checkpoint_path is None
    assert b.knn_magwin is None and b.knn.k == 5


@pytest.mark.parametrize(("array", "message"), [
    (np.ones(N), "2-D"),
    (np.ones((N + 1, 4)), f"{N + 1} rows but the survey has {N}"),
    (np.where(np.arange(N)[:, None] == 3, np.nan, 1.0) * np.ones((N, 4)), "NaN or inf"),
    (np.where(np.arange(N)[:, None] == 3, 0.0, 1.0) * np.ones((N, 4)), "all zeros"),
    (np.array(["x"] * N * 4).reshape(N, 4), "real numbers"),
])
def test_bring_your_own_errors(tmp_path, survey, array, message):
    np.save(tmp_path / "bad.npy", array)
    result = _run("--representations", tmp_path / "bad.npy", "--survey", survey.path,
                  "--out", tmp_path / "b")
    assert result.exit_code != 0
    assert message in result.output
    assert not (tmp_path / "b").exists()


def test_input_errors(tmp_path, survey):
    result = _run("--survey", survey.path, "--out", tmp_path / "b")
    assert result.exit_code != 0 and "exactly one of" in result.output
    (tmp_path / "x.npy").write_bytes(b"not numpy")
    result = _run("--representations", tmp_path / "x.npy", "--survey", survey.path,
                  "--out", tmp_path / "b")
    assert result.exit_code != 0 and "not a readable .npy" in result.output
