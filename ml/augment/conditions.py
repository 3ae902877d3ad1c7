"""Per-object observing conditions from a survey's catalog columns.

The augmentations need, for every object, the E(B−V) it was observed through, its PSF width and
its per-pixel noise, in the units they act in (PSF Gaussian σ in pixels, noise σ in nanomaggies
per pixel). The catalog stores ``ebv``, ``psfsize`` (PSF FWHM, arcsec) and ``psfdepth`` (5σ
point-source depth as an inverse variance); :mod:`ml.photometry` converts them, nothing here
re-derives the formulas.

A real catalog has objects without coverage in a band (``psfsize`` or ``psfdepth`` zero) and the
odd NaN. :func:`observing_conditions` maps such values to 0 ("unknown"), which makes the
augmentation apply the full target blur or noise in quadrature with nothing, the choice that
still gives the network a view at the survey's conditions; the fit (:mod:`ml.augment.stats`)
instead drops them (:func:`raw_conditions` leaves them NaN).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ml.photometry import noise_sigma_from_psfdepth, psf_fwhm_arcsec_to_sigma_pix

CONDITION_COLUMNS: tuple[str, ...] = ("ebv", "psfsize", "psfdepth")


def _column(catalog: Mapping[str, np.ndarray], name: str, trailing: tuple[int, ...],
            n: int | None) -> np.ndarray:
    if name not in catalog:
        raise KeyError(
            f"the catalog lacks the {name!r} column; the augmentations need "
            f"{', '.join(CONDITION_COLUMNS)} (read them with Survey.catalog({list(CONDITION_COLUMNS)}))"
        )
    values = np.asarray(catalog[name], dtype=np.float64)
    if values.shape[1:] != trailing or (n is not None and values.shape[0] != n):
        want = ", ".join(["N", *map(str, trailing)])
        raise ValueError(
            f"catalog column {name!r} has shape {values.shape}; expected ({want}) with the same N "
            "as the other columns"
        )
    return values


def raw_conditions(catalog: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """E(B−V), PSF σ and noise σ per object, NaN where the catalog has no valid value.

    Args:
        catalog: column name -> array with at least ``ebv`` (N,), ``psfsize`` (N, 3) FWHM in
            arcsec and ``psfdepth`` (N, 3) inverse variance in nanomaggies⁻².

    Returns:
        ``ebv`` (N,) magnitudes, ``psf_sigma_pix`` (N, 3) Gaussian σ in pixels and
        ``noise_sigma`` (N, 3) nanomaggies per pixel, float64, bands g, r, z.
    """
    ebv = _column(catalog, "ebv", (), None)
    n = ebv.shape[0]
    fwhm_arcsec = _column(catalog, "psfsize", (3,), n)
    psfdepth = _column(catalog, "psfdepth", (3,), n)

    ebv = np.where(np.isfinite(ebv) & (ebv >= 0), ebv, np.nan)
    valid_psf = np.isfinite(fwhm_arcsec) & (fwhm_arcsec > 0)
    fwhm_arcsec = np.where(valid_psf, fwhm_arcsec, np.nan)
    psf_sigma_pix = psf_fwhm_arcsec_to_sigma_pix(fwhm_arcsec)
    # noise needs both a depth and the PSF it was measured with
    valid_depth = np.isfinite(psfdepth) & (psfdepth > 0) & valid_psf
    noise_sigma = noise_sigma_from_psfdepth(np.where(valid_depth, psfdepth, np.nan), fwhm_arcsec)
    return ebv, psf_sigma_pix, noise_sigma


def observing_conditions(
    catalog: Mapping[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The inputs :class:`ml.augment.Augment` takes beside the images, from catalog columns.

    Args:
        catalog: column name -> array with ``ebv`` (N,), ``psfsize`` (N, 3) PSF FWHM in arcsec
            and ``psfdepth`` (N, 3) point-source depth (inverse variance, nanomaggies⁻²), as
            returned by ``Survey.catalog(CONDITION_COLUMNS, ids)``.

    Returns:
        ``ebv`` (N,) E(B−V) in magnitudes, ``psf_sigma_pix`` (N, 3) PSF Gaussian σ in pixels and
        ``noise_sigma`` (N, 3) sky noise σ per pixel in nanomaggies, float32, bands g, r, z.
        Missing or invalid values (no coverage, NaN) are 0: no de-reddening, and the target blur
        and noise are applied in full.
    """
    ebv, psf_sigma_pix, noise_sigma = raw_conditions(catalog)
    return tuple(np.nan_to_num(a, nan=0.0).astype(np.float32)
                 for a in (ebv, psf_sigma_pix, noise_sigma))  # type: ignore[return-value]
