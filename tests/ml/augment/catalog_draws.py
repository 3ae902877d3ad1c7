"""Catalog columns drawn from the DR9 south distributions, as the simulator writes them."""

from __future__ import annotations

import numpy as np

from ml.distributions import DR9_SOUTH
from ml.photometry import psf_sigma_pix_to_fwhm_arcsec, psfdepth_from_noise_sigma


def dr9_catalog(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``ebv`` (n,), ``psfsize`` (n, 3) FWHM arcsec, ``psfdepth`` (n, 3), float32."""
    rng = np.random.default_rng(seed)
    sigma = np.stack([d.sample(n, rng) for d in DR9_SOUTH["psf_sigma_pix"]], axis=1)
    noise = np.stack([d.sample(n, rng) for d in DR9_SOUTH["noise_sigma"]], axis=1)
    fwhm = psf_sigma_pix_to_fwhm_arcsec(sigma)
    return {
        "ebv": DR9_SOUTH["ebv"].sample(n, rng).astype(np.float32),
        "psfsize": fwhm.astype(np.float32),
        "psfdepth": psfdepth_from_noise_sigma(noise, fwhm).astype(np.float32),
    }
