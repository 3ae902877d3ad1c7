"""Photometric facts of the Legacy Surveys: magnitudes, extinction, PSF and noise.

All functions are NumPy-vectorised and also accept torch tensors where noted.
"""

from __future__ import annotations

import math

import numpy as np

from ml.survey_format import PIXEL_SCALE_ARCSEC

ZEROPOINT_MAG = 22.5  # nanomaggies: mag = 22.5 - 2.5 log10(flux)
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))  # 2.3548
# A_band = R_band * E(B-V), SFD98 with the Legacy Surveys' coefficients
EXTINCTION_R = np.array([3.214, 2.165, 1.211], dtype=np.float64)  # g, r, z


def flux_to_mag(flux_nmgy):
    """AB magnitude of a flux in nanomaggies (NaN for non-positive flux)."""
    flux = np.asarray(flux_nmgy, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = ZEROPOINT_MAG - 2.5 * np.log10(flux)
    return np.where(flux > 0, mag, np.nan)


def mag_to_flux(mag):
    """Flux in nanomaggies of an AB magnitude."""
    return 10.0 ** (0.4 * (ZEROPOINT_MAG - np.asarray(mag, dtype=np.float64)))


def extinction_factor(ebv):
    """Multiplicative dimming per band, shape (..., 3): observed = intrinsic * factor.

    factor = 10^(-0.4 A_band) with A_band = R_band * E(B-V).
    """
    ebv = np.asarray(ebv, dtype=np.float64)
    return 10.0 ** (-0.4 * ebv[..., None] * EXTINCTION_R)


def psf_fwhm_arcsec_to_sigma_pix(fwhm_arcsec):
    """Gaussian sigma in pixels of a PSF FWHM in arcsec (sigma = FWHM / 0.262 / 2.3548)."""
    return np.asarray(fwhm_arcsec) / PIXEL_SCALE_ARCSEC / FWHM_PER_SIGMA


def psf_sigma_pix_to_fwhm_arcsec(sigma_pix):
    return np.asarray(sigma_pix) * PIXEL_SCALE_ARCSEC * FWHM_PER_SIGMA


def noise_sigma_from_psfdepth(psfdepth, fwhm_arcsec):
    """Per-pixel sky noise sigma (nanomaggies) implied by a point-source depth.

    The optimal point-source flux variance for a Gaussian PSF of width sigma_psf (pixels)
    over white noise sigma_pix is sigma_pix^2 * 4 pi sigma_psf^2 (the noise-equivalent area),
    so 1/sigma_pix^2 = psfdepth * 4 pi sigma_psf^2.
    """
    sigma_psf = psf_fwhm_arcsec_to_sigma_pix(fwhm_arcsec)
    psfdepth = np.asarray(psfdepth, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return 1.0 / np.sqrt(psfdepth * 4.0 * math.pi * sigma_psf**2)


def psfdepth_from_noise_sigma(noise_sigma, fwhm_arcsec):
    """Inverse of :func:`noise_sigma_from_psfdepth`."""
    sigma_psf = psf_fwhm_arcsec_to_sigma_pix(fwhm_arcsec)
    return 1.0 / (np.asarray(noise_sigma, dtype=np.float64) ** 2 * 4.0 * math.pi * sigma_psf**2)
