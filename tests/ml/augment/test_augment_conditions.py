"""Observing conditions from catalog columns, through ml.photometry."""

from __future__ import annotations

import numpy as np
import pytest

from ml.augment import CONDITION_COLUMNS, observing_conditions
from ml.augment.conditions import raw_conditions
from ml.photometry import noise_sigma_from_psfdepth, psf_fwhm_arcsec_to_sigma_pix


def catalog() -> dict[str, np.ndarray]:
    return {
        "ebv": np.array([0.02, 0.1, np.nan], dtype=np.float32),
        "psfsize": np.array([[1.3, 1.2, 1.1], [1.6, 1.4, 0.0], [1.0, 1.0, 1.0]], np.float32),
        "psfdepth": np.array([[2000, 800, 100], [1500, 0, 80], [1e3, 1e3, 1e3]], np.float32),
        "ra": np.zeros(3),
    }


def test_conditions_follow_photometry_and_zero_the_invalid():
    ebv, psf, noise = observing_conditions(catalog())
    assert ebv.shape == (3,) and psf.shape == (3, 3) and noise.shape == (3, 3)
    assert ebv.dtype == psf.dtype == noise.dtype == np.float32
    np.testing.assert_allclose(ebv, [0.02, 0.1, 0.0])
    np.testing.assert_allclose(psf[0], psf_fwhm_arcsec_to_sigma_pix(catalog()["psfsize"][0]),
                               rtol=1e-6)
    np.testing.assert_allclose(psf[0, 0], 1.3 / 0.262 / 2.3548, rtol=1e-4)
    np.testing.assert_allclose(
        noise[0], noise_sigma_from_psfdepth(catalog()["psfdepth"][0], catalog()["psfsize"][0]),
        rtol=1e-6)
    assert psf[1, 2] == 0.0 and noise[1, 2] == 0.0  # no PSF: no noise estimate either
    assert noise[1, 1] == 0.0 and psf[1, 1] > 0  # no depth


def test_raw_conditions_leave_invalid_values_nan():
    ebv, psf, noise = raw_conditions(catalog())
    assert np.isnan(ebv[2]) and np.isnan(psf[1, 2]) and np.isnan(noise[1, 1])
    assert np.isfinite(noise[0]).all()


def test_missing_or_misshapen_columns_are_named():
    cat = catalog()
    del cat["psfdepth"]
    with pytest.raises(KeyError, match="psfdepth"):
        observing_conditions(cat)
    cat = catalog()
    cat["psfsize"] = cat["psfsize"][:, :2]
    with pytest.raises(ValueError, match="'psfsize' has shape"):
        observing_conditions(cat)
    assert CONDITION_COLUMNS == ("ebv", "psfsize", "psfdepth")
