"""Mergers: an interacting pair with tidal tails and, often, a bridge between them.

The target and a companion (a quarter to the same brightness) sit 2.5-12" apart, or, one time
in five, 1.2-2.5" apart: a late merger with two nuclei in one body. A close passage pulls stars
out of each disk into long curved tails on opposite sides (as in the Antennae or the Mice); the
tails are built of overlapping Gaussian clumps along an arc that sweeps away from the galaxy,
widening and fading along their length, with the colour of the disk they came from. A bridge,
the same kind of chain, may join the two. The target's catalog flux counts the target and its
own tail; the companion and the bridge belong to the field.
"""

from __future__ import annotations

import numpy as np

from ml.photometry import flux_to_mag
from ml.simulate import population as pop
from ml.simulate.galaxies import BulgeDisk, Central, central_flux_z, make_galaxy
from ml.simulate.scene import Scene
from ml.survey_format import PIXEL_SCALE_ARCSEC

CLUMPS_PER_TAIL = 40


def add_tail(scene: Scene, rng: np.random.Generator, gal: BulgeDisk, start_angle: float,
             sense: float, length_px: float, fraction: float) -> np.ndarray:
    """Add a tidal tail leaving ``gal``; return its intrinsic flux (3,)."""
    colour_per_z = gal.disk_flux / gal.disk_flux[2] if gal.disk_flux[2] > 0 else (
        gal.bulge_flux / gal.bulge_flux[2])
    flux_z = fraction * gal.total_flux[2]
    t = np.linspace(0.0, 1.0, CLUMPS_PER_TAIL)
    start = 1.2 * gal.disk_hlr / PIXEL_SCALE_ARCSEC
    sweep = rng.uniform(0.7, 1.8)  # radians the tail turns through
    radius = start + length_px * t
    angle = start_angle + sense * sweep * t
    weights = (1.0 - 0.75 * t) * rng.lognormal(0.0, 0.4, t.size)
    weights *= flux_z / weights.sum()
    scene.add_gaussians(gal.x + radius * np.cos(angle), gal.y + radius * np.sin(angle),
                        1.0 + 3.5 * t, weights[:, None] * colour_per_z)
    return flux_z * colour_per_z


def add_bridge(scene: Scene, rng: np.random.Generator, a: BulgeDisk, b: BulgeDisk,
               flux: np.ndarray) -> None:
    """A curved chain of clumps from a to b (a quadratic Bézier curve)."""
    p0, p2 = np.array([a.x, a.y]), np.array([b.x, b.y])
    d = p2 - p0
    p1 = p0 + 0.5 * d + rng.uniform(-0.35, 0.35) * np.array([-d[1], d[0]])
    t = np.linspace(0.2, 0.8, 20)[:, None]
    points = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
    weights = rng.lognormal(0.0, 0.3, len(points))
    weights /= weights.sum()
    scene.add_gaussians(points[:, 0], points[:, 1], 1.5, weights[:, None] * flux)


def build_merger(scene: Scene, rng: np.random.Generator, truth: dict) -> Central:
    mag_z, flux_z = central_flux_z(rng, scene, faint=19.5, slope=0.4)
    z = pop.draw_redshift(rng, mag_z)

    def galaxy(x: float, y: float, fz: float, mz: float) -> BulgeDisk:
        bt = float(rng.uniform(0.1, 0.6))
        return make_galaxy(rng, x, y, fz, mz, bt, float(rng.choice(pop.BULGE_SERSIC_N[:3])),
                           pop.red_colour(rng, z), pop.blue_colour(rng, z), size_offset_dex=0.1)

    late = rng.uniform() < 0.2
    sep_arcsec = rng.uniform(1.2, 2.5) if late else rng.uniform(2.5, 12.0)
    sep_px = sep_arcsec / PIXEL_SCALE_ARCSEC
    ratio = float(rng.uniform(0.25, 1.0))
    axis = rng.uniform(0.0, 2.0 * np.pi)
    primary = galaxy(scene.centre, scene.centre, flux_z, mag_z)
    companion = galaxy(scene.centre + sep_px * np.cos(axis), scene.centre + sep_px * np.sin(axis),
                       ratio * flux_z, mag_z - 2.5 * np.log10(ratio))
    if late:  # two nuclei in one disturbed body: the disks are puffed up and overlap
        for g in (primary, companion):
            g.disk_hlr = max(g.disk_hlr, sep_arcsec)

    sense = 1.0 if rng.uniform() < 0.5 else -1.0
    length = sep_px * rng.uniform(1.0, 2.5) + rng.uniform(10.0, 25.0)
    tail_fraction = float(rng.uniform(0.08, 0.2))  # of the galaxy's light; its disk has >= 40%
    # the tails leave each galaxy roughly at right angles to the line between them, on opposite
    # sides, so the pair looks like an S (or a pair of antennae)
    tail_flux = add_tail(scene, rng, primary, axis + sense * np.pi / 2 + rng.normal(0, 0.3),
                         sense, length, tail_fraction)
    # tails are stars pulled out of the disk: the galaxy's total light is unchanged
    primary.disk_flux = primary.disk_flux - tail_flux
    primary.extra_flux = primary.extra_flux + tail_flux
    companion_tail = add_tail(scene, rng, companion,
                              axis + np.pi + sense * np.pi / 2 + rng.normal(0, 0.3), sense,
                              length * rng.uniform(0.5, 1.0), tail_fraction * rng.uniform(0.5, 1))
    companion.disk_flux = companion.disk_flux - companion_tail
    companion.extra_flux = companion.extra_flux + companion_tail
    bridge = np.zeros(3)
    if not late and rng.uniform() < 0.35:
        bridge = tail_flux * rng.uniform(0.2, 0.5)
        add_bridge(scene, rng, primary, companion, bridge)
    primary.add_to(scene)
    companion.add_to(scene)

    truth.update(primary.truth(), redshift=z, merger_separation_arcsec=sep_arcsec,
                 companion_mag_r=float(flux_to_mag(companion.total_flux[1])),
                 merger_flux_ratio=ratio,
                 tidal_mag_r=float(flux_to_mag(tail_flux[1] + companion_tail[1] + bridge[1])))
    return Central(primary.total_flux, z, b"SER")
