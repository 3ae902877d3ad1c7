"""Ring galaxies: a bright ring of young stars around a core.

Two kinds, as in nature:

* collisional (kind 1; like the Cartwheel): a small galaxy fell through a disk and drove an
  expanding density wave outward. The ring holds most of the light, is knotty and blue, brighter
  on one side, and its centre is offset from the old red nucleus; the interior is nearly empty,
  and the intruder often sits nearby.
* resonance (kind 2): a bar's outer Lindblad resonance gathers gas into a ring. The ring is
  centred, smoother, brighter at the bar's ends; the bar and a faint disk fill the interior.

The ring is PSF-free light in the disk plane, a Gaussian in radius around R, projected like the
disk; knots are Gaussians on it.
"""

from __future__ import annotations

import galsim
import numpy as np

from ml.photometry import flux_to_mag
from ml.simulate import population as pop
from ml.simulate.galaxies import Central, central_flux_z, make_galaxy
from ml.simulate.scene import Scene, sersic
from ml.survey_format import PIXEL_SCALE_ARCSEC

COLLISIONAL, RESONANCE = 1, 2
RING_KINDS = {COLLISIONAL: "collisional", RESONANCE: "resonance"}


def ring_stamp(scene: Scene, cx: float, cy: float, radius_px: float, width_px: float, q: float,
               pa: float, modulation: tuple[int, float, float]
               ) -> tuple[np.ndarray, int, int]:
    """A unit-flux ring, (h, w) PSF-free, and its corner; modulation = (m, amplitude, phase):
    brightness ∝ 1 + amplitude cos(m (theta - phase))."""
    half = int(np.ceil(radius_px + 4.0 * width_px))
    x0, y0 = round(cx) - half, round(cy) - half
    xs, ys = scene.grid(x0, y0, 2 * half + 1, 2 * half + 1)
    dx, dy = xs - cx, ys - cy
    c, s = np.cos(pa), np.sin(pa)
    u = dx * c + dy * s
    v = (-dx * s + dy * c) / q
    r = np.hypot(u, v)
    m, amp, phase = modulation
    ring = (np.exp(-0.5 * ((r - radius_px) / width_px) ** 2)
            * (1.0 + amp * np.cos(m * (np.arctan2(v, u) - phase))))
    ring /= ring.sum()
    return ring.astype(np.float32), x0, y0


def build_ring(scene: Scene, rng: np.random.Generator, truth: dict) -> Central:
    mag_z, flux_z = central_flux_z(rng, scene, faint=19.3, slope=0.35)
    z = pop.draw_redshift(rng, mag_z)
    kind = COLLISIONAL if rng.uniform() < 0.6 else RESONANCE
    radius_arcsec = float(np.clip(pop.draw_hlr_arcsec(rng, mag_z, 0.35) * rng.uniform(1.3, 2.0),
                                  2.5, 12.0))
    radius_px = radius_arcsec / PIXEL_SCALE_ARCSEC
    young = pop.young_colour(rng, z)
    inclination = pop.draw_inclination_rad(rng, 60.0)
    q = pop.axis_ratio_from_inclination(inclination)
    pa = float(rng.uniform(0.0, np.pi))
    c, s = np.cos(pa), np.sin(pa)
    cx = cy = scene.centre
    if kind == COLLISIONAL:
        ring_fraction = float(rng.uniform(0.45, 0.7))
        width_px = max(1.2, radius_px * rng.uniform(0.07, 0.16))
        knot_fraction = float(rng.uniform(0.15, 0.35))
        # the ring's centre is off the nucleus, along a random direction in the disk plane
        off, off_angle = radius_px * rng.uniform(0.05, 0.3), rng.uniform(0.0, 2.0 * np.pi)
        ou, ov = off * np.cos(off_angle), off * np.sin(off_angle) * q
        rx, ry = cx + ou * c - ov * s, cy + ou * s + ov * c
        modulation = (1, float(rng.uniform(0.3, 0.8)), off_angle)
        core = make_galaxy(rng, cx, cy, flux_z * (1.0 - ring_fraction), mag_z, 1.0,
                           float(rng.choice(pop.BULGE_SERSIC_N[:3])), pop.red_colour(rng, z),
                           pop.red_colour(rng, z))
        core.bulge_hlr = max(0.3, radius_arcsec * rng.uniform(0.06, 0.15))
        ring_colour = young
    else:
        ring_fraction = float(rng.uniform(0.3, 0.45))
        width_px = max(1.2, radius_px * rng.uniform(0.05, 0.1))
        knot_fraction = float(rng.uniform(0.05, 0.15))
        rx, ry = cx, cy
        bar_angle = float(rng.uniform(0.0, np.pi))
        modulation = (2, float(rng.uniform(0.2, 0.5)), bar_angle)
        core = make_galaxy(rng, cx, cy, flux_z * (1.0 - ring_fraction), mag_z,
                           float(rng.uniform(0.4, 0.7)), float(rng.choice(pop.BULGE_SERSIC_N[:3])),
                           pop.red_colour(rng, z), pop.blue_colour(rng, z),
                           inclination_rad=inclination)
        core.pa_rad = pa
        core.disk_hlr = 0.5 * radius_arcsec
        core.bulge_hlr = max(0.3, radius_arcsec * rng.uniform(0.06, 0.12))
        # a bar reaching 80% of the ring's radius, in the disk plane, then projected
        bar_flux = 0.3 * core.disk_flux
        core.disk_flux = core.disk_flux - bar_flux
        core.extra_flux = core.extra_flux + bar_flux
        bar = sersic(0.5, 0.35 * radius_arcsec, 0.8 / 0.35)
        bar = bar.shear(q=rng.uniform(0.2, 0.35), beta=bar_angle * galsim.radians)
        bar = bar.shear(q=q, beta=pa * galsim.radians)
        scene.add_profile(bar, cx, cy, bar_flux, 0.8 * radius_px / np.sqrt(q))
        ring_colour = pop.Colour(0.5 * (young.g_r + pop.blue_colour(rng, z).g_r),
                                 0.5 * (young.r_z + pop.blue_colour(rng, z).r_z))
    core.add_to(scene)

    ring_flux = ring_colour.band_flux(flux_z * ring_fraction)
    stamp, x0, y0 = ring_stamp(scene, rx, ry, radius_px, width_px, q, pa, modulation)
    scene.add_raw(stamp, x0, y0, (1.0 - knot_fraction) * ring_flux)
    n_knots = int(rng.integers(5, 20))
    knot_flux = knot_fraction * ring_flux[2] * rng.dirichlet(np.full(n_knots, 2.0))
    ang = rng.uniform(0.0, 2.0 * np.pi, n_knots)
    rad = radius_px + rng.normal(0.0, 0.4 * width_px, n_knots)
    ku, kv = rad * np.cos(ang), rad * np.sin(ang) * q
    scene.add_gaussians(rx + ku * c - kv * s, ry + ku * s + kv * c,
                        rng.uniform(0.3, 1.0, n_knots), young.band_flux(knot_flux))
    ring_total = (1.0 - knot_fraction) * ring_flux + young.band_flux(knot_flux.sum())

    if kind == COLLISIONAL and rng.uniform() < 0.5:
        # the intruder: a compact galaxy a few ring radii away, not part of the target
        d, ang = radius_px * rng.uniform(1.6, 3.0), rng.uniform(0.0, 2.0 * np.pi)
        fainter = rng.uniform(1.0, 2.5)  # magnitudes
        intruder = make_galaxy(rng, cx + d * np.cos(ang), cy + d * np.sin(ang),
                               flux_z * 10.0 ** (-0.4 * fainter), mag_z + fainter, 1.0, 3.0,
                               pop.red_colour(rng, z), pop.red_colour(rng, z))
        intruder.bulge_hlr = min(intruder.bulge_hlr, 0.8)
        intruder.add_to(scene)

    truth.update(core.truth(), redshift=z, ring_radius_arcsec=radius_arcsec,
                 ring_width_arcsec=width_px * PIXEL_SCALE_ARCSEC,
                 ring_mag_r=float(flux_to_mag(ring_total[1])), ring_kind=float(kind),
                 inclination_deg=float(np.rad2deg(inclination)), ellipticity=1.0 - q,
                 position_angle_deg=float(np.rad2deg(pa) % 180.0))
    return Central(core.total_flux + ring_total, z, b"SER")
