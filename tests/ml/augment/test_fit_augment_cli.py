"""`galsearch fit-augment SURVEY_DIR`: read the catalog, fit, print, write the JSON."""

from __future__ import annotations

import numpy as np
import pytest
from catalog_draws import dr9_catalog
from click.testing import CliRunner

from ml.augment import AugmentStats
from ml.survey_format import AUGMENT_STATS_FILENAME
from ml.survey_writer import SurveyWriter
from server.cli import main


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    n = 3_000
    out = tmp_path_factory.mktemp("survey")
    cat = dr9_catalog(n, seed=5)
    cat.update(ra=np.zeros(n), dec=np.zeros(n), flux=np.ones((n, 3), np.float32))
    with SurveyWriter(out, image_size=4, objects_per_file=2_000) as writer:
        writer.append(np.zeros((n, 3, 4, 4), np.float32), cat)
    return out


def test_fit_augment_writes_fits_close_to_dr9(survey):
    result = CliRunner().invoke(main, ["fit-augment", str(survey)])
    assert result.exit_code == 0, result.output
    assert "DR9 south" in result.output and "noise sigma, nmgy" in result.output
    assert f"wrote {survey / AUGMENT_STATS_FILENAME}" in result.output
    fitted = AugmentStats.load(survey)
    assert fitted.n_objects == 3_000 and not fitted.is_uniform()
    for got, want in zip(fitted.distributions(), AugmentStats.dr9_south().distributions(),
                         strict=True):
        assert got.median() == pytest.approx(want.median(), rel=0.04)


def test_fit_augment_uniform_and_subset(survey):
    result = CliRunner().invoke(main, ["fit-augment", str(survey), "--sampling", "uniform",
                                       "--max-objects", "500"])
    assert result.exit_code == 0, result.output
    assert "reading" in result.output and "500 of 3,000" in result.output
    assert AugmentStats.load(survey).is_uniform()


def test_fit_augment_on_a_missing_survey_fails_cleanly(tmp_path):
    result = CliRunner().invoke(main, ["fit-augment", str(tmp_path / "nowhere")])
    assert result.exit_code != 0
    assert "does not exist" in result.output
    assert not (tmp_path / "nowhere").exists()
