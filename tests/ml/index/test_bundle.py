"""Bundle round trip, the manifest checks (one test per mismatch), interrupted builds."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from index_testdata import clustered, magnitudes, write_survey

import ml.index.bundle as bundle_module
from ml.index import (
    BundleError,
    BundleFileMissingError,
    BundleMismatchError,
    SearchBundle,
    build_bundle,
    open_bundle,
)
from ml.index.vectors import RepresentationError

N = 300


@pytest.fixture
def built(tmp_path):
    vectors = clustered(N, dim=16)
    mag = magnitudes(N)
    survey = write_survey(tmp_path / "survey", mag)
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes(b"checkpoint bytes")
    out = build_bundle(tmp_path / "bundle", vectors, mag, survey.path, survey.fingerprint(),
                       "prehead", checkpoint=ckpt, index="hnsw", k=20, mag_window=0.5,
                       progress=False)
    return out, vectors, mag, survey


def _copy(out, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    return copy


def test_round_trip(built):
    out, vectors, mag, survey = built
    names = sorted(p.name for p in out.iterdir())
    assert names == ["index.faiss", "knn_ids.npy", "knn_magwin_ids.npy", "knn_magwin_sims.npy",
                     "knn_sims.npy", "mag_r.npy", "manifest.json", "model.pt", "vectors.npy"]
    b = open_bundle(out, survey=survey, verify="full")
    m = b.manifest
    assert (m["n"], m["dim"], m["metric"], m["dtype"]) == (N, 16, "cosine", "float16")
    assert m["representation"] == "prehead" and m["index"]["params"]["kind"] == "hnsw"
    assert m["knn"] == {"k": 20, "mag_window": 0.5, "method": "exact", "includes_self": True}
    assert m["survey"]["fingerprint"] == survey.fingerprint()
    assert m["checkpoint"]["sha256"] == m["files"]["model.pt"]["sha256"]
    assert b.checkpoint_path == out / "model.pt"
    assert isinstance(b.vectors, np.memmap) and b.vectors.dtype == np.float16
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(b.vectors.astype(np.float32), unit, atol=1e-3)
    np.testing.assert_array_equal(b.mag_r, mag)
    assert b.knn.ids.dtype == np.int32 and b.knn.sims.dtype == np.float16
    assert (b.knn.ids[:, 0] == np.arange(N)).all()  # k includes the object itself
    ids, _ = b.neighbours(7, k=5)
    assert ids.size == 5 and 7 not in ids
    assert "hnsw" in repr(b)
    assert not list(out.parent.glob(".*partial"))


def test_the_bundle_identity_is_its_manifest_hash_when_opened(built, tmp_path):
    out, _, _, survey = built
    copy = _copy(out, tmp_path)
    manifest = copy / "manifest.json"
    b = open_bundle(copy, survey=survey)
    assert b.manifest_sha256 == hashlib.sha256(manifest.read_bytes()).hexdigest()
    opened = b.manifest_sha256
    manifest.write_text(manifest.read_text() + " ")  # a bundle rebuilt in place later
    assert b.manifest_sha256 == opened  # what is served is what was opened
    assert open_bundle(copy, survey=survey).manifest_sha256 != opened


def test_missing_file_is_named(built, tmp_path):
    out = _copy(built[0], tmp_path)
    (out / "knn_magwin_sims.npy").unlink()
    with pytest.raises(BundleFileMissingError, match=r"knn_magwin_sims\.npy is missing"):
        SearchBundle.open(out)
    (out / "manifest.json").unlink()
    with pytest.raises(BundleFileMissingError, match=r"manifest\.json is missing"):
        SearchBundle.open(out)
    with pytest.raises(BundleFileMissingError, match="does not exist"):
        SearchBundle.open(tmp_path / "nowhere")


def test_size_mismatch(built, tmp_path):
    out = _copy(built[0], tmp_path)
    with open(out / "vectors.npy", "ab") as f:
        f.write(b"\0" * 64)
    with pytest.raises(BundleMismatchError, match=r"vectors.npy .* bytes but the manifest"):
        SearchBundle.open(out)


def test_shape_mismatch(built, tmp_path):
    out = _copy(built[0], tmp_path)
    ids = np.load(out / "knn_ids.npy")
    np.save(out / "knn_ids.npy", ids.reshape(N // 2, 40))  # same bytes, other shape
    with pytest.raises(BundleMismatchError, match=r"knn_ids.npy .* has shape \(150, 40\)"):
        SearchBundle.open(out)


@pytest.mark.parametrize(("key", "value"), [("n", N + 1), ("dim", 17)])
def test_n_and_dims_mismatch(built, tmp_path, key, value):
    out = _copy(built[0], tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest[key] = value
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleMismatchError, match="needs"):
        SearchBundle.open(out)


def test_checksum_mismatch(built, tmp_path):
    out = _copy(built[0], tmp_path)
    mag = np.load(out / "mag_r.npy")
    mag[3] += 1.0
    np.save(out / "mag_r.npy", mag)
    with pytest.raises(BundleMismatchError, match=r"mag_r\.npy .* checksum"):
        SearchBundle.open(out)


def test_index_mismatch(built, tmp_path):
    out = _copy(built[0], tmp_path)
    other = tmp_path / "other"
    build_bundle(other, clustered(N + 10, dim=16), magnitudes(N + 10), "s", "f", "x",
                 index="hnsw", k=0, progress=False)
    shutil.copyfile(other / "index.faiss", out / "index.faiss")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"]["index.faiss"] = json.loads(
        (other / "manifest.json").read_text())["files"]["index.faiss"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleMismatchError, match=r"index.faiss .* holds 310 vectors"):
        SearchBundle.open(out)


def test_survey_mismatch(built, tmp_path):
    out, _, mag, _ = built
    other = write_survey(tmp_path / "other", mag, seed=5, size=6)  # same N, other files
    with pytest.raises(BundleMismatchError, match="not the one the bundle"):
        SearchBundle.open(out, survey=other)
    smaller = write_survey(tmp_path / "smaller", mag[:-1])
    with pytest.raises(BundleMismatchError, match=f"has {N - 1} objects"):
        SearchBundle.open(out, survey=smaller)


def test_checkpoint_hash_is_checked(tmp_path):
    ckpt = tmp_path / "c.pt"
    ckpt.write_bytes(b"abc")
    with pytest.raises(BundleMismatchError, match="re-run `galsearch embed`"):
        build_bundle(tmp_path / "b", clustered(50), magnitudes(50), "s", "f", "prehead",
                     checkpoint=ckpt, checkpoint_sha256="0" * 64, progress=False)
    assert not (tmp_path / "b").exists()


def test_interrupted_build_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bundle_module, "all_pairs_topk", boom)
    with pytest.raises(KeyboardInterrupt):
        build_bundle(tmp_path / "b", clustered(50), magnitudes(50), "s", "f", "x", k=5,
                     progress=False)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_and_overwrite(tmp_path):
    args = (clustered(50), magnitudes(50), "s", "f", "x")
    build_bundle(tmp_path / "b", *args, k=5, progress=False)
    with pytest.raises(BundleError, match="already exists"):
        build_bundle(tmp_path / "b", *args, k=5, progress=False)
    build_bundle(tmp_path / "b", *args, k=7, mag_window=None, overwrite=True, progress=False)
    b = SearchBundle.open(tmp_path / "b")
    assert b.knn.k == 7 and b.knn_magwin is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_bad_representations_are_rejected(tmp_path):
    bad = clustered(50)
    bad[4] = 0
    with pytest.raises(RepresentationError, match="all zeros"):
        build_bundle(tmp_path / "b", bad, magnitudes(50), "s", "f", "x", progress=False)
    with pytest.raises(RepresentationError, match="49 rows but the survey has 50"):
        build_bundle(tmp_path / "b", clustered(49), magnitudes(50), "s", "f", "x",
                     progress=False)
    assert list(tmp_path.iterdir()) == []
