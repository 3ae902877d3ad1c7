"""Representation validation and float16 normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from ml.index.vectors import (
    RepresentationError,
    normalise_query,
    validate_representations,
    write_normalised,
)


def test_valid_representations_pass():
    validate_representations(np.random.default_rng(0).normal(size=(10, 4)), 10, "x.npy")


@pytest.mark.parametrize(("array", "message"), [
    (np.ones(10), "2-D"),
    (np.ones((9, 4)), "9 rows but the survey has 10"),
    (np.array([["a"] * 4] * 10), "real numbers"),
    (np.ones((10, 0)), "zero dimensions"),
])
def test_shape_and_dtype_errors(array, message):
    with pytest.raises(RepresentationError, match=message):
        validate_representations(array, 10, "x.npy")


def test_non_finite_rows_are_named():
    x = np.ones((3000, 4), dtype=np.float32)
    x[5, 1] = np.nan
    x[2500, 0] = np.inf
    with pytest.raises(RepresentationError, match=r"2 rows hold NaN or inf .*\[5, 2500\]"):
        validate_representations(x, 3000, "x.npy")


def test_zero_rows_are_named():
    x = np.ones((10, 4))
    x[7] = 0
    with pytest.raises(RepresentationError, match=r"1 rows are all zeros .*\[7\]"):
        validate_representations(x, 10, "x.npy")


def test_write_normalised_gives_unit_float16_rows(tmp_path):
    x = np.random.default_rng(0).normal(size=(2500, 8)) * 1e30  # float32 squares would overflow
    out = write_normalised(x, tmp_path / "v.npy", progress=False)
    assert out.dtype == np.float16 and out.shape == (2500, 8)
    norms = np.linalg.norm(np.asarray(out, dtype=np.float64), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=2e-3)
    np.testing.assert_allclose(np.asarray(out, np.float64), x / np.linalg.norm(x, axis=1)[:, None],
                               atol=1e-3)


def test_normalise_query_errors():
    with pytest.raises(ValueError, match="shape"):
        normalise_query(np.ones(3), 4)
    with pytest.raises(ValueError, match="all zeros"):
        normalise_query(np.zeros(4), 4)
    with pytest.raises(ValueError, match="NaN"):
        normalise_query(np.array([1, np.nan, 0, 0]), 4)
    np.testing.assert_allclose(normalise_query(np.array([3.0, 4.0]), 2), [[0.6, 0.8]])
