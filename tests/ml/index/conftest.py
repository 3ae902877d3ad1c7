"""Fixtures for the index tests: small clustered data and a flat bundle over a tiny survey."""

from __future__ import annotations

import pytest
from index_testdata import N_SMALL, clustered, magnitudes, write_survey

from ml.index.bundle import SearchBundle, build_bundle


@pytest.fixture(scope="module")
def small_data():
    vectors = clustered(N_SMALL)
    return vectors, magnitudes(N_SMALL)


@pytest.fixture(scope="module")
def survey_and_bundle(tmp_path_factory, small_data):
    """A survey and a flat bundle built from it (k = 40, window 0.5)."""
    vectors, _ = small_data
    root = tmp_path_factory.mktemp("bundle")
    mag_survey = magnitudes(N_SMALL)
    survey = write_survey(root / "survey", mag_survey)
    from ml.index.cli import survey_mag_r

    mag_r = survey_mag_r(survey)
    out = build_bundle(root / "bundle", vectors, mag_r, survey.path, survey.fingerprint(),
                       "external:test.npy", index="flat", k=40, mag_window=0.5, progress=False)
    return survey, SearchBundle.open(out)
