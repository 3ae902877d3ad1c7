"""Strong gravitational lenses, ray-traced with lenstronomy.

A massive red elliptical (the deflector, drawn with GalSim like any elliptical) bends the light
of a blue star-forming galaxy behind it into arcs, or an Einstein ring when the source sits
almost exactly behind. The mass is a singular isothermal ellipsoid (SIE, aligned with the light
to within 10 deg and a little rounder) plus external shear up to 0.06, with an Einstein radius
of 1.2-3" (the range ground-based searches such as the Legacy Surveys' find). The source is a
Sérsic (n = 1 or 1.5, 0.15-0.5") with, half the time, a bright star-forming knot; it lies within
0.6 Einstein radii of the optical axis. The lensed image is ray-traced on a 4x supersampled grid,
averaged onto pixels, and receives the band's PSF with the rest of the scene. Its brightness is
set so the arcs are g = 18.5-20.5 in total (what lens searches in the Legacy Surveys recover); the
truth records the magnification and the unlensed source magnitude that follow.

The target's catalog flux is the deflector plus the arcs, both of which sit within the
deflector's isophotes.
"""

from __future__ import annotations

import numpy as np
from lenstronomy.LensModel.lens_model import LensModel
from lenstronomy.LightModel.light_model import LightModel

from ml.photometry import flux_to_mag, mag_to_flux
from ml.simulate import population as pop
from ml.simulate.galaxies import Central, make_galaxy
from ml.simulate.scene import Scene
from ml.survey_format import PIXEL_SCALE_ARCSEC

SUPERSAMPLING = 4
LENS_MODEL = LensModel(["SIE", "SHEAR"])
SOURCE_MODEL = LightModel(["SERSIC_ELLIPSE", "SERSIC_ELLIPSE"])


def _ellipticity(q: float, angle_rad: float) -> tuple[float, float]:
    """lenstronomy's (e1, e2) of axis ratio q with major axis at angle (from +x to +y)."""
    e = (1.0 - q) / (1.0 + q)
    return e * np.cos(2.0 * angle_rad), e * np.sin(2.0 * angle_rad)


def build_lens(scene: Scene, rng: np.random.Generator, truth: dict) -> Central:
    ext = scene.conditions.extinction
    theta_e = float(rng.uniform(1.2, 3.0))  # arcsec
    # bigger Einstein radii need more massive, hence brighter, deflectors
    mag_z = float(np.clip(19.5 - 1.0 * (theta_e - 1.2) + rng.normal(0.0, 0.4), 16.5, 19.9))
    flux_z = float(mag_to_flux(mag_z)) / float(ext[2])
    z_lens = float(np.clip(pop.draw_redshift(rng, mag_z), 0.15, 0.7))
    red = pop.red_colour(rng, z_lens)
    deflector = make_galaxy(rng, scene.centre, scene.centre, flux_z, mag_z, 1.0,
                            float(rng.choice(pop.ELLIPTICAL_SERSIC_N)), red, red)
    deflector.bulge_hlr = float(np.clip(theta_e * rng.uniform(0.4, 0.8), 0.5, 2.5))
    deflector.add_to(scene)

    q_mass = float(np.clip(deflector.bulge_q + rng.uniform(0.0, 0.1), 0.5, 0.98))
    pa_mass = deflector.pa_rad + np.deg2rad(rng.normal(0.0, 10.0))
    e1, e2 = _ellipticity(q_mass, pa_mass)
    gamma, gamma_angle = float(rng.uniform(0.0, 0.06)), rng.uniform(0.0, np.pi)
    kwargs_lens = [
        {"theta_E": theta_e, "e1": e1, "e2": e2, "center_x": 0.0, "center_y": 0.0},
        {"gamma1": gamma * np.cos(2 * gamma_angle), "gamma2": gamma * np.sin(2 * gamma_angle),
         "ra_0": 0.0, "dec_0": 0.0},
    ]
    beta = theta_e * float(rng.uniform(0.0, 0.6))
    beta_angle = rng.uniform(0.0, 2.0 * np.pi)
    sx, sy = beta * np.cos(beta_angle), beta * np.sin(beta_angle)
    r_source = float(rng.uniform(0.15, 0.5))
    se1, se2 = _ellipticity(float(rng.uniform(0.5, 1.0)), rng.uniform(0.0, np.pi))
    knot = rng.uniform() < 0.5
    kx, ky = np.array([sx, sy]) + rng.normal(0.0, 0.6 * r_source, 2)
    kwargs_source = [
        {"amp": 1.0, "R_sersic": r_source, "n_sersic": float(rng.choice([1.0, 1.5])),
         "e1": se1, "e2": se2, "center_x": sx, "center_y": sy},
        {"amp": float(rng.uniform(1.0, 3.0)) if knot else 0.0, "R_sersic": 0.3 * r_source,
         "n_sersic": 1.0, "e1": 0.0, "e2": 0.0, "center_x": float(kx), "center_y": float(ky)},
    ]

    # ray-trace a stamp that holds the arcs (they lie near the Einstein radius)
    half = int(np.ceil((theta_e + beta + 4.0 * r_source) / PIXEL_SCALE_ARCSEC)) + 4
    n_pix = 2 * half + 1
    sub = (np.arange(n_pix * SUPERSAMPLING) + 0.5) / SUPERSAMPLING - 0.5 - half  # pixels
    x0 = round(scene.centre) - half
    frac = scene.centre - round(scene.centre)  # deflector's offset from the stamp's centre pixel
    xs, ys = np.meshgrid((sub - frac) * PIXEL_SCALE_ARCSEC, (sub - frac) * PIXEL_SCALE_ARCSEC)
    bx, by = LENS_MODEL.ray_shooting(xs.ravel(), ys.ravel(), kwargs_lens)
    sb = SOURCE_MODEL.surface_brightness(bx, by, kwargs_source)  # per arcsec^2
    image = sb.reshape(n_pix, SUPERSAMPLING, n_pix, SUPERSAMPLING).mean(axis=(1, 3))
    lensed = float(image.sum()) * PIXEL_SCALE_ARCSEC**2
    magnification = lensed / float(np.sum(SOURCE_MODEL.total_flux(kwargs_source)))
    image /= image.sum()

    z_source = float(rng.uniform(1.0, 2.5))
    colour = pop.Colour(float(rng.normal(0.25, 0.1)), float(rng.normal(0.15, 0.1)))
    lensed_mag_g = float(rng.uniform(18.5, 20.5))  # observed
    arcs_flux = colour.band_flux_from_r(1.0)
    arcs_flux *= float(mag_to_flux(lensed_mag_g)) / float(ext[0]) / arcs_flux[0]
    scene.add_raw(image.astype(np.float32), x0, x0, arcs_flux)

    truth.update(deflector.truth(), redshift=z_lens, einstein_radius_arcsec=theta_e,
                 lens_axis_ratio=q_mass, shear_gamma=gamma,
                 source_mag_r=float(flux_to_mag(arcs_flux[1] / magnification)),
                 source_hlr_arcsec=r_source, source_offset_arcsec=beta,
                 source_redshift=z_source, magnification=magnification)
    return Central(deflector.total_flux + arcs_flux, z_lens, deflector.source_type())
