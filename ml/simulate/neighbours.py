"""Neighbours in the field: fainter galaxies and stars at random positions around the target.

Real cutouts hold a dozen fainter galaxies and a star or two besides their target. Neighbour
galaxies follow r-band number counts (13.6 per arcmin^2 brighter than r = 24, dN/dm ∝
10^(0.35 m)) from half a magnitude below the target down to r = 24, with sizes from the
size-magnitude relation and red or blue colours. Stars follow 0.25 per arcmin^2 at the Galactic
pole brighter than r = 23.5, rising as 1 / sin|b| towards the plane, with colours on the stellar
locus. Positions are uniform over the canvas (cutout plus pad, so light from just outside spills
in), except within a few pixels of the target.

Neighbour galaxies are many and faint, so each is not drawn afresh: a per-survey library of
single-Sérsic GalSim stamps (random n, size, shape and orientation, seeded by the survey seed
and thus identical in every worker) is drawn once per process, and each neighbour takes the
library stamp nearest its size, turned by a random multiple of 90 degrees and mirrored, with its
own flux and colour. This costs microseconds per neighbour instead of a millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass

import galsim
import numpy as np

from ml.photometry import mag_to_flux
from ml.simulate import population as pop
from ml.simulate.scene import BASE_PSF, BASE_PSF_SIGMA_PIX, GSPARAMS, Scene, sersic
from ml.survey_format import PIXEL_SCALE_ARCSEC

LIBRARY_SIZE = 384
LIBRARY_HLR_ARCSEC = (0.15, 2.5)
LIBRARY_TRUNC_HLR = 4.5
GALAXIES_PER_ARCMIN2 = 13.6  # brighter than NEIGHBOUR_FAINT_R
GALAXY_COUNT_SLOPE = 0.35
NEIGHBOUR_FAINT_R = 24.0
STARS_PER_ARCMIN2_POLE = 0.25  # brighter than STAR_FAINT_R
STAR_COUNT_SLOPE = 0.15
STAR_BRIGHT_R, STAR_FAINT_R = 16.5, 23.5
CLEAR_RADIUS_PIX = 8.0  # no neighbour centre this close to the target


@dataclass(frozen=True)
class NeighbourLibrary:
    """Unit-flux neighbour stamps blurred by the base PSF, sorted by half-light radius."""

    stamps: tuple[np.ndarray, ...]  # each (h, w) float32, centred, odd sides
    hlr_arcsec: np.ndarray  # (K,) ascending

    @classmethod
    def build(cls, seed_sequence: np.random.SeedSequence, size: int = LIBRARY_SIZE
              ) -> NeighbourLibrary:
        rng = np.random.default_rng(seed_sequence)
        lo, hi = np.log(LIBRARY_HLR_ARCSEC[0]), np.log(LIBRARY_HLR_ARCSEC[1])
        hlr = np.sort(np.exp(rng.uniform(lo, hi, size)))
        stamps = []
        for h in hlr:
            n = float(rng.choice(pop.NEIGHBOUR_SERSIC_N))
            q = float(rng.uniform(0.3, 1.0))
            profile = sersic(n, h, LIBRARY_TRUNC_HLR).shear(q=q, beta=rng.uniform(0.0, np.pi) * galsim.radians)
            r = int(np.ceil(LIBRARY_TRUNC_HLR * h / PIXEL_SCALE_ARCSEC / np.sqrt(q)
                            + 4.0 * BASE_PSF_SIGMA_PIX))
            conv = galsim.Convolve(profile, BASE_PSF, gsparams=GSPARAMS)
            image = conv.drawImage(nx=2 * r + 1, ny=2 * r + 1, scale=PIXEL_SCALE_ARCSEC,
                                   method="no_pixel")
            stamps.append(image.array.astype(np.float32))
        return cls(tuple(stamps), hlr)

    def pick(self, rng: np.random.Generator, hlr_arcsec: np.ndarray) -> list[np.ndarray]:
        """Stamps of about those sizes (one of the 4 nearest), each in one of the 8 orientations
        of the square (turns by 90 degrees and mirrors; views, no copies)."""
        n = len(hlr_arcsec)
        index = np.clip(np.searchsorted(self.hlr_arcsec, hlr_arcsec) + rng.integers(-2, 2, n),
                        0, len(self.stamps) - 1)
        orientation = rng.integers(0, 8, n)
        out = []
        for i, k in zip(index, orientation, strict=True):
            stamp = self.stamps[i]
            if k & 4:
                stamp = stamp.T
            if k & 1:
                stamp = stamp[::-1]
            if k & 2:
                stamp = stamp[:, ::-1]
            out.append(stamp)
        return out


def _positions(rng: np.random.Generator, scene: Scene, n: int) -> np.ndarray:
    """(n, 2) uniform positions on the canvas, away from the target."""
    xy = rng.uniform(-scene.pad, scene.size + scene.pad - 1, (n, 2))
    while True:
        near = np.hypot(*(xy - scene.centre).T) <= CLEAR_RADIUS_PIX
        if not near.any():
            return xy
        xy[near] = rng.uniform(-scene.pad, scene.size + scene.pad - 1, (int(near.sum()), 2))


def _count(rng: np.random.Generator, per_arcmin2: float, limit: float, slope: float,
           bright: float, area_arcmin2: float) -> int:
    """How many sources in [bright, limit) when per_arcmin2 are brighter than limit."""
    if bright >= limit:
        return 0
    return int(rng.poisson(per_arcmin2 * area_arcmin2 * (1.0 - 10.0 ** (slope * (bright - limit)))))


def add_neighbours(scene: Scene, rng: np.random.Generator, library: NeighbourLibrary,
                   target_mag_r: float, galactic_lat_deg: float) -> dict[str, float]:
    """Add neighbour galaxies and stars; return truth parameters about those in the cutout."""
    area = (scene.side * PIXEL_SCALE_ARCSEC / 60.0) ** 2
    ext_r = float(scene.conditions.extinction[1])

    bright = max(target_mag_r + 0.5, 16.0)
    n_gal = _count(rng, GALAXIES_PER_ARCMIN2, NEIGHBOUR_FAINT_R, GALAXY_COUNT_SLOPE, bright, area)
    mag_r = pop.draw_count_mag(rng, bright, NEIGHBOUR_FAINT_R, GALAXY_COUNT_SLOPE, n_gal)
    colour = pop.galaxy_colour(rng, pop.draw_redshift(rng, mag_r - 0.4), red_fraction=0.35)
    gal_flux = colour.band_flux_from_r(mag_to_flux(mag_r) / ext_r)  # (n, 3)
    hlr = pop.draw_hlr_arcsec(rng, mag_r - colour.r_z, lo=LIBRARY_HLR_ARCSEC[0],
                              hi=LIBRARY_HLR_ARCSEC[1])
    gal_xy = _positions(rng, scene, n_gal)
    for stamp, (x, y), flux in zip(library.pick(rng, hlr), gal_xy, gal_flux, strict=True):
        h, w = stamp.shape
        scene.add_pre(stamp, round(x) - w // 2, round(y) - h // 2, flux)

    star_density = STARS_PER_ARCMIN2_POLE / max(np.sin(np.deg2rad(abs(galactic_lat_deg))), 0.2)
    n_star = _count(rng, star_density, STAR_FAINT_R, STAR_COUNT_SLOPE, STAR_BRIGHT_R, area)
    star_mag_r = pop.draw_count_mag(rng, STAR_BRIGHT_R, STAR_FAINT_R, STAR_COUNT_SLOPE, n_star)
    star_flux = pop.star_colour(rng, n_star).band_flux_from_r(mag_to_flux(star_mag_r) / ext_r)
    star_xy = _positions(rng, scene, n_star)
    scene.add_gaussians(star_xy[:, 0], star_xy[:, 1], 0.0, star_flux)

    xy = np.concatenate([gal_xy, star_xy])
    inside = ((xy >= -0.5) & (xy < scene.size - 0.5)).all(axis=1)
    flux_r = np.concatenate([gal_flux[:, 1], star_flux[:, 1]]) * ext_r
    return {"n_neighbours": float(inside.sum()), "neighbour_flux_r": float(flux_r[inside].sum())}
