"""The galaxy population: magnitudes, redshifts, sizes, shapes and colours.

Scaling relations, chosen to look like DR9 south galaxies brighter than z = 20:

* Number counts rise to the faint end, dN/dm ∝ 10^(0.5 m) (a little below the Euclidean 0.6,
  as observed for bright galaxies), between m_z = 14 and the cut at 20 (observed, i.e. after
  extinction, as the paper's z < 20 selection).
* Redshift from magnitude: median z = 0.2 * 10^(0.17 (m_z - 18)) (0.09 at m_z = 16, 0.44 at
  20), log-normal scatter of 0.3; ``z_phot_median`` is this redshift with a photometric error of
  0.02 (1 + z).
* Size-magnitude: log10(r_half / arcsec) = 0.17 - 0.16 (m_z - 18) + N(0, 0.15) for disks
  (1.5" at m_z = 18, 0.7" at 20, 3" at 16), 0.12 dex smaller for bulges and ellipticals.
* Colours (observed g - r, r - z) redden with redshift: the red sequence at g - r = 0.75 +
  1.6 z, r - z = 0.40 + 1.1 z; star-forming disks at 0.45 + 0.8 z, 0.30 + 0.5 z; young clumps,
  arms and rings at 0.15 + 0.3 z, 0.10 + 0.2 z; each with 0.05-0.08 mag of scatter.
* Sérsic indices come from small discrete sets so that GalSim's per-n tables are computed once
  per process and reused for every galaxy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Z_MAG_LIMIT = 20.0  # the paper's selection: observed z-band magnitude < 20
Z_MAG_BRIGHT = 14.0
COUNT_SLOPE = 0.5  # dN/dm ∝ 10^(COUNT_SLOPE m)

BULGE_SERSIC_N = (2.0, 3.0, 4.0, 5.0)
ELLIPTICAL_SERSIC_N = (3.0, 4.0, 5.0)
NEIGHBOUR_SERSIC_N = (1.0, 1.5, 2.5, 4.0)
INTRINSIC_DISK_THICKNESS = 0.15  # q of a disk seen edge-on


# The draws below take scalars or arrays (the neighbours of a cutout are drawn all at once).

def draw_count_mag(rng: np.random.Generator, bright: float, faint: float,
                   slope: float = COUNT_SLOPE, size: int | None = None):
    """Magnitudes in [bright, faint) with dN/dm ∝ 10^(slope m) (inverse CDF)."""
    lo, hi = 10.0 ** (slope * bright), 10.0 ** (slope * faint)
    return np.log10(lo + rng.uniform(size=size) * (hi - lo)) / slope


def draw_redshift(rng: np.random.Generator, mag_z):
    median = 0.2 * 10.0 ** (0.17 * (np.asarray(mag_z) - 18.0))
    return np.clip(median * np.exp(0.3 * rng.standard_normal(np.shape(mag_z))), 0.01, 1.2)


def photo_z(rng: np.random.Generator, z: float) -> float:
    """The catalog's ``z_phot_median``: z with a 0.02 (1 + z) error."""
    return float(max(0.0, z + 0.02 * (1.0 + z) * rng.standard_normal()))


def draw_hlr_arcsec(rng: np.random.Generator, mag_z, offset_dex: float = 0.0,
                    lo: float = 0.25, hi: float = 15.0):
    """Disk half-light radius from the size-magnitude relation (arcsec)."""
    log_r = (0.17 - 0.16 * (np.asarray(mag_z) - 18.0) + offset_dex
             + 0.15 * rng.standard_normal(np.shape(mag_z)))
    return np.clip(10.0 ** log_r, lo, hi)


@dataclass(frozen=True)
class Colour:
    """Observed colours g - r and r - z of a component (floats, or arrays of many)."""

    g_r: float | np.ndarray
    r_z: float | np.ndarray

    def per_z_flux(self) -> np.ndarray:
        """(..., 3) g, r, z flux per unit z-band flux."""
        g_r, r_z = np.asarray(self.g_r), np.asarray(self.r_z)
        return np.stack(np.broadcast_arrays(10.0 ** (-0.4 * (g_r + r_z)), 10.0 ** (-0.4 * r_z),
                                            np.ones_like(r_z)), axis=-1)

    def band_flux(self, flux_z) -> np.ndarray:
        """(..., 3) fluxes of a z-band flux."""
        return np.asarray(flux_z)[..., None] * self.per_z_flux()

    def band_flux_from_r(self, flux_r) -> np.ndarray:
        """(..., 3) fluxes of an r-band flux."""
        per_z = self.per_z_flux()
        return np.asarray(flux_r)[..., None] * per_z / per_z[..., 1:2]


def red_colour(rng: np.random.Generator, z) -> Colour:
    z = np.asarray(z)
    return Colour(np.minimum(0.75 + 1.6 * z, 1.9) + 0.05 * rng.standard_normal(z.shape),
                  np.minimum(0.40 + 1.1 * z, 1.3) + 0.05 * rng.standard_normal(z.shape))


def blue_colour(rng: np.random.Generator, z) -> Colour:
    z = np.asarray(z)
    return Colour(np.minimum(0.45 + 0.8 * z, 1.2) + 0.08 * rng.standard_normal(z.shape),
                  np.minimum(0.30 + 0.5 * z, 0.9) + 0.08 * rng.standard_normal(z.shape))


def galaxy_colour(rng: np.random.Generator, z, red_fraction: float) -> Colour:
    """Red-sequence colours for a fraction of the galaxies, star-forming ones for the rest."""
    red, blue = red_colour(rng, z), blue_colour(rng, z)
    is_red = rng.uniform(size=np.shape(z)) < red_fraction
    return Colour(np.where(is_red, red.g_r, blue.g_r), np.where(is_red, red.r_z, blue.r_z))


def young_colour(rng: np.random.Generator, z) -> Colour:
    z = np.asarray(z)
    return Colour(0.15 + 0.3 * z + 0.06 * rng.standard_normal(z.shape),
                  0.10 + 0.2 * z + 0.06 * rng.standard_normal(z.shape))


def star_colour(rng: np.random.Generator, size: int | None = None) -> Colour:
    """Colours on the stellar locus at high Galactic latitude: most stars are halo turn-off
    stars (g - r about 0.35), the rest disk K and M dwarfs up to g - r = 1.5."""
    turnoff = rng.normal(0.38, 0.1, size)
    dwarfs = rng.uniform(0.6, 1.5, size)
    g_r = np.clip(np.where(rng.uniform(size=size) < 0.6, turnoff, dwarfs), -0.3, 1.6)
    # the locus steepens in r - z for M dwarfs (g - r > 1.2)
    r_z = 0.45 * g_r + np.maximum(0.0, g_r - 1.2) * 2.5 + 0.04 * rng.standard_normal(size)
    return Colour(g_r, r_z)


def axis_ratio_from_inclination(inclination_rad: float,
                                thickness: float = INTRINSIC_DISK_THICKNESS) -> float:
    """Projected axis ratio of an oblate disk of intrinsic thickness q0."""
    c = np.cos(inclination_rad)
    return float(np.sqrt(c * c * (1.0 - thickness**2) + thickness**2))


def draw_inclination_rad(rng: np.random.Generator, max_deg: float = 90.0) -> float:
    """Random orientation: cos(i) uniform, up to ``max_deg``."""
    cos_min = np.cos(np.deg2rad(max_deg))
    return float(np.arccos(rng.uniform(cos_min, 1.0)))


def tractor_type(bulge_to_total: float, bulge_n: float, hlr_arcsec: float) -> bytes:
    """What Tractor would call the galaxy (``source_type``): REX, EXP, DEV or SER."""
    if hlr_arcsec < 0.4:
        return b"REX"
    if bulge_to_total >= 0.65 and bulge_n >= 3.0:
        return b"DEV"
    if bulge_to_total <= 0.3:
        return b"EXP"
    return b"SER"
