"""`galsearch survey-info`: summary text, magnitude histogram, class counts and contact sheet."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ml.photometry import mag_to_flux
from ml.render import rgb_uint8
from ml.survey import Survey
from ml.survey_info import CAPTION_H, LABEL_W, PAD, TITLE_H, magnitude_histogram, sheet_rows
from ml.survey_writer import SurveyWriter
from server.cli import main

SIZE = 16
N = 30
CLASSES = ["elliptical", "spiral", "ring", "lens"]


@pytest.fixture
def survey_dir(tmp_path):
    rng = np.random.default_rng(3)
    images = rng.normal(0, 0.02, (N, 3, SIZE, SIZE)).astype(np.float32)
    images[:, :, 6:10, 6:10] += rng.uniform(0.2, 3.0, (N, 3, 1, 1)).astype(np.float32)
    # r magnitudes 17.5 for ten objects, 19.5 for twenty; g has two objects without flux
    mag_r = np.where(np.arange(N) < 10, 17.5, 19.5)
    flux = np.stack([mag_to_flux(mag_r + 1), mag_to_flux(mag_r), mag_to_flux(mag_r - 1)], axis=1)
    flux[:2, 0] = [0.0, -1.0]
    catalog = {
        "ra": rng.uniform(0, 360, N), "dec": rng.uniform(-10, 10, N),
        "ebv": np.full(N, 0.05, np.float32), "flux": flux.astype(np.float32),
        "psfsize": np.full((N, 3), 1.25, np.float32), "psfdepth": np.full((N, 3), 500, np.float32),
    }
    with SurveyWriter(tmp_path / "s", image_size=SIZE, objects_per_file=12) as writer:
        writer.append(images, catalog)
    return tmp_path / "s"


def add_truth(folder) -> np.ndarray:
    labels = np.array(["elliptical"] * 20 + ["spiral"] * 7 + ["lens"] * 3)
    with h5py.File(folder / "truth.h5", "w") as f:
        f["object_id"] = np.arange(N)
        f["label"] = labels.astype("S10")
        f.attrs["classes"] = json.dumps(CLASSES)
    return labels


def test_magnitude_histogram_counts(survey_dir):
    labels, counts = magnitude_histogram(Survey(survey_dir))
    assert counts.sum(axis=0).tolist() == [N, N, N]
    row = {label: i for i, label in enumerate(labels)}
    assert counts[row["17-18"]].tolist() == [0, 10, 0]
    assert counts[row["19-20"]].tolist() == [0, 20, 0]
    assert counts[row["18-19"]].tolist() == [8, 0, 20]  # g of the bright ones (two lack flux)
    assert counts[row["20-21"]].tolist() == [20, 0, 0]
    assert counts[row["16-17"]].tolist() == [0, 0, 10]
    assert counts[row["flux <= 0"]].tolist() == [2, 0, 0]


def test_summary_without_truth(survey_dir, tmp_path):
    sheet = tmp_path / "sheet.png"
    result = CliRunner().invoke(main, ["survey-info", str(survey_dir), "--sheet", str(sheet),
                                       "--per-class", "5"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "30 objects in 3 file(s); images 3x16x16" in out
    assert "survey-00002.h5" in out and "psfdepth" in out
    assert "psfsize r" in out and "1.25 [1.25, 1.25] arcsec" in out
    assert "classes" not in out
    hist = out[out.index("magnitudes"):]
    assert "17-18" in hist and "flux <= 0" in hist
    with Image.open(sheet) as img:  # a random sample: 4 rows of 5
        assert img.height == TITLE_H + 4 * (SIZE + CAPTION_H + PAD) + PAD
        assert img.width >= LABEL_W + 5 * (SIZE + PAD)


def test_summary_and_sheet_with_truth(survey_dir, tmp_path):
    labels = add_truth(survey_dir)
    sheet = tmp_path / "deep" / "sheet.png"
    result = CliRunner().invoke(main, ["survey-info", str(survey_dir), "--sheet", str(sheet),
                                       "--per-class", "4", "--check-pixels"])
    assert result.exit_code == 0, result.output
    classes = result.output[result.output.index("classes (truth.h5)"):]
    assert "elliptical            20" in classes and "ring                   0" in classes
    assert "lens                   3    10.000 %" in classes
    assert "pixels: all finite" in result.output

    survey = Survey(survey_dir)
    rows = sheet_rows(survey, per_class=4)
    assert [caption for caption, _ in rows] == ["elliptical (20)", "spiral (7)", "lens (3)"]
    for (caption, ids), want in zip(rows, ["elliptical", "spiral", "lens"], strict=True):
        assert len(ids) == min(4, (labels == want).sum())
        assert set(labels[ids]) == {want}, caption
    # each tile is the survey's own rendering of that object
    with Image.open(sheet) as img:
        pixels = np.asarray(img.convert("RGB"))
    assert pixels.shape[0] == TITLE_H + 3 * (SIZE + CAPTION_H + PAD) + PAD
    lens_ids = rows[2][1]
    y, x = TITLE_H + 2 * (SIZE + CAPTION_H + PAD), LABEL_W + 1 * (SIZE + PAD)
    np.testing.assert_array_equal(pixels[y:y + SIZE, x:x + SIZE],
                                  rgb_uint8(survey.read_images(lens_ids[1:2]))[0])


def test_bad_survey_is_a_clear_cli_error(tmp_path):
    result = CliRunner().invoke(main, ["survey-info", str(tmp_path)])
    assert result.exit_code == 1
    assert "Error: no survey files (*.h5)" in result.output
