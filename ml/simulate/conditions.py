"""Observing conditions of one simulated cutout: PSF, sky noise, Galactic extinction.

Each object gets its own conditions, drawn band by band from the DR9 south distributions fitted
by Stein et al.'s authors (:data:`ml.distributions.DR9_SOUTH`), so that the simulated survey's
``psfsize``, ``psfdepth`` and ``ebv`` columns follow the real ones and the augmentation fits
recover them. The PSF is the Gaussian of the fitted sigma (the paper's model of the PSF, and the
one the augmentations add to in quadrature); ``psfsize`` is its FWHM and ``psfdepth`` the
point-source depth that the sky noise implies (:mod:`ml.photometry`).

Besides the sky, bright pixels carry their own Poisson noise. Its level follows from the sky:
a sky of ``s`` nanomaggies per pixel with noise ``sigma`` means ``s / sigma**2`` electrons per
nanomaggy in the coadd, so a pixel holding ``f`` nanomaggies of source light adds a variance of
``f * sigma**2 / s``. The sky brightness per band is drawn around typical DECam dark-time values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.distributions import DR9_SOUTH
from ml.photometry import (
    extinction_factor,
    mag_to_flux,
    psf_sigma_pix_to_fwhm_arcsec,
    psfdepth_from_noise_sigma,
)
from ml.survey_format import PIXEL_SCALE_ARCSEC

# sky surface brightness, AB mag / arcsec^2, g r z (DECam, dark to grey time): mean, scatter
SKY_MAG_ARCSEC2 = np.array([22.0, 21.1, 19.0])
SKY_MAG_SCATTER = 0.3


@dataclass(frozen=True)
class Conditions:
    """Per-band conditions of one cutout (arrays are g, r, z)."""

    psf_sigma_pix: np.ndarray  # (3,) Gaussian PSF sigma, pixels
    noise_sigma: np.ndarray  # (3,) sky noise per pixel, nanomaggies
    ebv: float  # SFD E(B-V)
    electrons_per_nmgy: np.ndarray  # (3,) coadd gain that sets the source Poisson noise

    @property
    def extinction(self) -> np.ndarray:
        """(3,) observed / intrinsic flux."""
        return extinction_factor(self.ebv)

    @property
    def psfsize_arcsec(self) -> np.ndarray:
        """(3,) PSF FWHM, arcsec: the catalog's ``psfsize``."""
        return psf_sigma_pix_to_fwhm_arcsec(self.psf_sigma_pix)

    @property
    def psfdepth(self) -> np.ndarray:
        """(3,) point-source depth as inverse variance, nanomaggies^-2: ``psfdepth``."""
        return psfdepth_from_noise_sigma(self.noise_sigma, self.psfsize_arcsec)


def draw_conditions(rng: np.random.Generator) -> Conditions:
    """Draw one cutout's conditions from the DR9 south distributions."""
    psf = np.array([d.sample(None, rng) for d in DR9_SOUTH["psf_sigma_pix"]], dtype=np.float64)
    noise = np.array([d.sample(None, rng) for d in DR9_SOUTH["noise_sigma"]], dtype=np.float64)
    ebv = float(DR9_SOUTH["ebv"].sample(None, rng))
    sky_mag = SKY_MAG_ARCSEC2 + SKY_MAG_SCATTER * rng.standard_normal(3)
    sky_nmgy_per_pix = mag_to_flux(sky_mag) * PIXEL_SCALE_ARCSEC**2
    return Conditions(psf_sigma_pix=psf, noise_sigma=noise, ebv=ebv,
                      electrons_per_nmgy=sky_nmgy_per_pix / noise**2)
