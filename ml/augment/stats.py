"""The distributions the augmentations draw new observing conditions from.

Stein et al. (2021) re-observe every training view through a new E(B−V), a new PSF and a new
noise level drawn from log-normals fitted to the survey's own catalog. :class:`AugmentStats`
holds those distributions (truncated to the ranges of :data:`ml.distributions.DR9_SOUTH`),
fits them from catalog columns (:meth:`AugmentStats.fit`), and stores them beside the survey
as ``augment_stats.json``, which ``galsearch fit-augment`` writes and training reads.

The authors' code drew uniformly over each range by default (to reach the tails) while the
paper describes log-normals: :meth:`AugmentStats.as_uniform` gives the uniform variant.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ml.augment.conditions import raw_conditions
from ml.distributions import (
    DR9_SOUTH,
    Distribution,
    Uniform,
    distribution_from_dict,
    fit_lognormal,
)
from ml.survey_format import AUGMENT_STATS_FILENAME, BANDS

FORMAT_VERSION = 1
DEFAULT_MAX_FIT_OBJECTS = 200_000  # a random subset this large pins the fits to < 1%


class AugmentStatsError(ValueError):
    """augment_stats.json is missing or unreadable; the message says what to run."""


def _range(d: Distribution) -> tuple[float, float]:
    return d.lo, d.hi


@dataclass(frozen=True)
class AugmentStats:
    """Distributions of the observing conditions a view is re-observed under.

    Attributes:
        ebv: E(B−V) in magnitudes, one value for all bands.
        psf_sigma_pix: PSF Gaussian σ in pixels (0.262″), one distribution per band g, r, z.
        noise_sigma: sky noise σ per pixel in nanomaggies, one per band g, r, z.
        n_objects: how many catalog rows the fit used (None for built-in numbers).
    """

    ebv: Distribution
    psf_sigma_pix: list[Distribution]
    noise_sigma: list[Distribution]
    n_objects: int | None = None

    def __post_init__(self) -> None:
        for name in ("psf_sigma_pix", "noise_sigma"):
            if len(getattr(self, name)) != len(BANDS):
                raise ValueError(f"{name} needs one distribution per band {BANDS}")

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def dr9_south(cls) -> AugmentStats:
        """The authors' fits to DR9 south (objects with z < 20)."""
        return cls(
            ebv=DR9_SOUTH["ebv"],
            psf_sigma_pix=list(DR9_SOUTH["psf_sigma_pix"]),
            noise_sigma=list(DR9_SOUTH["noise_sigma"]),
        )

    @classmethod
    def fit(cls, catalog: Mapping[str, np.ndarray],
            max_objects: int | None = DEFAULT_MAX_FIT_OBJECTS, seed: int = 0,
            progress: bool = False) -> AugmentStats:
        """Fit log-normals (scipy's 3-parameter form) to a catalog's observing conditions.

        Each quantity is fitted over the values inside its DR9 south range (values outside it,
        and objects without coverage, are left out), as a log-normal truncated to that range.

        Args:
            catalog: ``ebv`` (N,), ``psfsize`` (N, 3) FWHM arcsec, ``psfdepth`` (N, 3).
            max_objects: fit a random subset of this many rows (None: all rows); the
                3-parameter fit gains nothing from millions of rows and costs seconds each.
            seed: seed of the subset.
            progress: show a progress bar over the seven fits.

        Raises:
            ValueError: a quantity has fewer than 10 values inside its range.
        """
        ebv, psf_sigma_pix, noise_sigma = raw_conditions(catalog)
        n = ebv.shape[0]
        if max_objects is not None and n > max_objects:
            rows = np.sort(np.random.default_rng(seed).choice(n, max_objects, replace=False))
            ebv, psf_sigma_pix, noise_sigma = ebv[rows], psf_sigma_pix[rows], noise_sigma[rows]
            n = max_objects

        jobs = [("E(B-V)", ebv, DR9_SOUTH["ebv"])]
        for b, band in enumerate(BANDS):
            jobs.append((f"PSF sigma, {band} band", psf_sigma_pix[:, b],
                         DR9_SOUTH["psf_sigma_pix"][b]))
        for b, band in enumerate(BANDS):
            jobs.append((f"noise sigma, {band} band", noise_sigma[:, b],
                         DR9_SOUTH["noise_sigma"][b]))
        if progress:
            from tqdm import tqdm

            jobs = tqdm(jobs, desc="fitting log-normals", unit="fit")
        fits = []
        for what, values, ref in jobs:
            try:
                fits.append(fit_lognormal(values, *_range(ref)))
            except ValueError as exc:
                raise ValueError(f"{what}: {exc}; is the catalog's column filled in?") from exc
        return cls(ebv=fits[0], psf_sigma_pix=fits[1:4], noise_sigma=fits[4:7], n_objects=int(n))

    def as_uniform(self) -> AugmentStats:
        """U(lo, hi) over each distribution's range: the authors' code default."""
        return replace(
            self,
            ebv=Uniform(*_range(self.ebv)),
            psf_sigma_pix=[Uniform(*_range(d)) for d in self.psf_sigma_pix],
            noise_sigma=[Uniform(*_range(d)) for d in self.noise_sigma],
        )

    def is_uniform(self) -> bool:
        return all(isinstance(d, Uniform) for d in self.distributions())

    def distributions(self) -> list[Distribution]:
        return [self.ebv, *self.psf_sigma_pix, *self.noise_sigma]

    # -- storage ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "n_objects": self.n_objects,
            "units": {
                "ebv": "magnitudes",
                "psf_sigma_pix": "PSF Gaussian sigma, pixels of 0.262 arcsec",
                "noise_sigma": "sky noise sigma per pixel, nanomaggies",
            },
            "ebv": self.ebv.to_dict(),
            "psf_sigma_pix": {b: d.to_dict() for b, d in zip(BANDS, self.psf_sigma_pix,
                                                             strict=True)},
            "noise_sigma": {b: d.to_dict() for b, d in zip(BANDS, self.noise_sigma, strict=True)},
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> AugmentStats:
        version = d.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(f"format_version {version!r}; this galsearch reads {FORMAT_VERSION}")
        return cls(
            ebv=distribution_from_dict(d["ebv"]),
            psf_sigma_pix=[distribution_from_dict(d["psf_sigma_pix"][b]) for b in BANDS],
            noise_sigma=[distribution_from_dict(d["noise_sigma"][b]) for b in BANDS],
            n_objects=d.get("n_objects"),
        )

    def save(self, survey_dir: str | os.PathLike) -> Path:
        """Write ``<survey_dir>/augment_stats.json`` atomically (temp file, then rename)."""
        path = Path(survey_dir) / AUGMENT_STATS_FILENAME
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self.to_dict(), f, indent=2)
                f.write("\n")
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the file from the team
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, survey_dir: str | os.PathLike) -> AugmentStats:
        """Read ``<survey_dir>/augment_stats.json``.

        Raises:
            AugmentStatsError: the file is missing (run ``galsearch fit-augment``) or unreadable.
        """
        path = Path(survey_dir) / AUGMENT_STATS_FILENAME
        if not path.is_file():
            raise AugmentStatsError(
                f"no augmentation statistics at {path}: run `galsearch fit-augment "
                f"{survey_dir}` to fit them from the survey's catalog"
            )
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise AugmentStatsError(
                f"{path} is not a valid augmentation statistics file ({exc!r}); run "
                f"`galsearch fit-augment {survey_dir}` to write it again"
            ) from exc
