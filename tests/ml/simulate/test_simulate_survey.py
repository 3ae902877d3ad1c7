"""The survey driver and the command: determinism, truth.h5, the format, and failure safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from ml.simulate import objects
from ml.simulate.classes import CLASSES, class_counts, parse_rates
from ml.simulate.driver import SimulationError, simulate_survey
from ml.simulate.footprint import DEC_MAX_DEG, DEC_MIN_DEG, brickid, galactic_latitude_deg
from ml.simulate.truth import PARAM_NAMES
from ml.survey import Survey
from ml.survey_format import OPTIONAL_KEYS, TRUTH_FILENAME
from server.cli import main as galsearch

ROOT = Path(__file__).resolve().parents[3]
N, SIZE = 40, 48  # 40 objects: one full chunk of 32 and a partial one
RATES = parse_rates("lens=0.05,ring=0.05,merger=0.1,star=0.1,artefact=0.1")


def read_all(folder: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    with Survey(folder) as survey:
        images = survey.read_images(np.arange(survey.n))
        catalog = {name: survey.read_column(name) for name in survey.columns}
    return images, catalog


def truth_arrays(folder: Path) -> dict[str, np.ndarray]:
    with h5py.File(folder / TRUTH_FILENAME, "r") as f:
        out = {"object_id": f["object_id"][()], "label": f["label"][()]}
        out.update({f"params/{k}": v[()] for k, v in f["params"].items()})
    return out


@pytest.fixture(scope="module")
def survey_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "survey"
    simulate_survey(out, N, seed=7, rates=RATES, workers=2, size=SIZE, objects_per_file=16,
                    progress=False)
    return out


def test_same_seed_same_survey_with_any_number_of_workers(survey_dir, tmp_path):
    again = tmp_path / "one_worker"
    simulate_survey(again, N, seed=7, rates=RATES, workers=1, size=SIZE, objects_per_file=25,
                    progress=False)
    images_a, catalog_a = read_all(survey_dir)
    images_b, catalog_b = read_all(again)
    np.testing.assert_array_equal(images_a, images_b)
    for name in catalog_a:
        np.testing.assert_array_equal(catalog_a[name], catalog_b[name])
    truth_a, truth_b = truth_arrays(survey_dir), truth_arrays(again)
    for key in truth_a:
        np.testing.assert_array_equal(truth_a[key], truth_b[key])


def test_another_seed_another_survey(survey_dir, tmp_path):
    simulate_survey(tmp_path / "s8", 4, seed=8, rates=RATES, workers=1, size=SIZE,
                    progress=False)
    images_a, _ = read_all(survey_dir)
    images_b, _ = read_all(tmp_path / "s8")
    assert not np.allclose(images_a[:4], images_b)


def test_survey_follows_the_format(survey_dir):
    files = sorted(p.name for p in survey_dir.iterdir())
    assert files == ["survey-00000.h5", "survey-00001.h5", "survey-00002.h5", TRUTH_FILENAME]
    with Survey(survey_dir) as survey:
        assert survey.n == N and survey.image_shape == (3, SIZE, SIZE)
        assert set(OPTIONAL_KEYS) <= set(survey.columns)
        survey.validate_pixels()
        ra, dec = survey.read_column("ra"), survey.read_column("dec")
        assert (dec >= DEC_MIN_DEG).all() and (dec <= DEC_MAX_DEG).all()
        assert (np.abs(galactic_latitude_deg(ra, dec)) > 20).all()
        np.testing.assert_array_equal(survey.read_column("brickid"), brickid(ra, dec))
        np.testing.assert_array_equal(survey.read_column("objid"), np.arange(N))
        assert survey.read_column("source_type").dtype == np.dtype("S4")
        flux = survey.read_column("flux")
        assert (22.5 - 2.5 * np.log10(flux[:, 2]) < 20).all()


def test_truth_file(survey_dir):
    with h5py.File(survey_dir / TRUTH_FILENAME, "r") as f:
        assert f["object_id"].dtype == np.int64 and f["label"].dtype.kind == "S"
        np.testing.assert_array_equal(f["object_id"][()], np.arange(N))
        assert tuple(f["params"]) == tuple(sorted(PARAM_NAMES))
        assert all(f["params"][k].dtype == np.float32 and f["params"][k].shape == (N,)
                   for k in PARAM_NAMES)
        assert json.loads(f.attrs["classes"]) == list(CLASSES)
        assert json.loads(f.attrs["rates"]) == pytest.approx(RATES)
        assert int(f.attrs["seed"]) == 7
        labels = f["label"][()].astype(str)
        einstein = f["params/einstein_radius_arcsec"][()]
        n_neighbours = f["params/n_neighbours"][()]
    counts = {c: int((labels == c).sum()) for c in CLASSES}
    assert list(counts.values()) == class_counts(N, RATES).tolist()
    assert np.isfinite(einstein[labels == "lens"]).all()
    assert np.isnan(einstein[labels != "lens"]).all()
    assert np.isfinite(n_neighbours).all()
    with Survey(survey_dir) as survey:  # the reader's view agrees
        assert survey.truth().counts() == counts


def test_a_failing_run_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    calls = {"n": 0}
    build = objects.BUILDERS["elliptical"]

    def failing(scene, rng, truth):
        calls["n"] += 1
        if calls["n"] > 40:
            raise RuntimeError("disk on fire")
        return build(scene, rng, truth)

    monkeypatch.setitem(objects.BUILDERS, "elliptical", failing)
    out = tmp_path / "failed"
    with pytest.raises(RuntimeError, match="disk on fire"):
        simulate_survey(out, 200, seed=1, workers=1, size=SIZE, objects_per_file=32,
                        progress=False)
    assert list(out.iterdir()) == []


def test_a_killed_run_leaves_no_final_files(tmp_path):
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "simulate", "--n", "100000", "--out", str(out),
         "--size", str(SIZE), "--workers", "1", "--objects-per-file", "64"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        # wait until the first file is full and a second one is being written
        while not (out / "survey-00001.h5.tmp").exists():
            assert proc.poll() is None, "the simulation ended before it could be killed"
            assert time.monotonic() < deadline, "no survey file appeared within 120 s"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    names = sorted(p.name for p in out.iterdir())
    assert names and all(name.endswith(".tmp") for name in names), names
    with pytest.raises(ValueError):  # the reader sees no survey there
        Survey(out)


def test_refuses_to_overwrite_without_being_told(survey_dir):
    with pytest.raises(Exception, match="already holds"):
        simulate_survey(survey_dir, 2, workers=1, size=SIZE, progress=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 0}, "--n must be at least 1"),
    ({"seed": -1}, "--seed must be a non-negative"),
    ({"workers": 0}, "--workers must be at least 1"),
    ({"size": 16}, "--size must be at least 32"),
    ({"objects_per_file": 0}, "--objects-per-file must be at least 1"),
])
def test_rejects_bad_arguments(tmp_path, kwargs, message):
    args = {"n": 2, "seed": 0, "workers": 1, "size": SIZE, "objects_per_file": 10, **kwargs}
    with pytest.raises(SimulationError, match=message):
        simulate_survey(tmp_path / "x", progress=False, **args)


def test_command_line(tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(galsearch, ["simulate", "--n", "3", "--out", str(out), "--seed", "2",
                                       "--size", str(SIZE), "--workers", "1",
                                       "--rates", "lens=1"])
    assert result.exit_code == 0, result.output
    assert "wrote 3 objects" in result.output and "lens 3" in result.output
    with h5py.File(out / TRUTH_FILENAME, "r") as f:
        assert (f["label"][()] == b"lens").all()
    bad = runner.invoke(galsearch, ["simulate", "--n", "3", "--out", str(tmp_path / "b"),
                                    "--rates", "lense=0.1"])
    assert bad.exit_code == 2 and "unknown class 'lense'" in bad.output
