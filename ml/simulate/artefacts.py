"""Imaging artefacts across an ordinary galaxy: satellite trails, bad columns, bleed trails.

A coadd pixel mixes several exposures, so an artefact from one exposure usually shows in one
band only (its colour is that band's, pure blue, green or red in the g, r, z rendering):

* satellite trail (kind 1): a straight line across the whole field, a little wider than the PSF,
  with glints along it; in one band, or (three times in ten) in all bands with the colour of
  sunlight.
* bad column (kind 2): a hot (or, one time in four, low) column one or two pixels wide, over
  the whole height or from a point to the edge, with extra noise; one band.
* bleed trail (kind 3): the column of a saturated star just outside the cutout, bright along a
  length that differs band by band, with the star's halo at the edge.

Trails are light (they get the PSF and photon noise) but not from beyond the Galaxy's dust;
columns and bleeds are detector effects applied after the noise.
"""

from __future__ import annotations

import numpy as np

from ml.photometry import mag_to_flux
from ml.simulate import population as pop
from ml.simulate.galaxies import Central, build_plain_galaxy
from ml.simulate.scene import Scene
from ml.simulate.stars import BrightStar

SATELLITE_TRAIL, BAD_COLUMN, BLEED_TRAIL = 1, 2, 3
ARTEFACT_KINDS = {SATELLITE_TRAIL: "satellite_trail", BAD_COLUMN: "bad_column",
                  BLEED_TRAIL: "bleed_trail"}
ALL_BANDS = 3  # truth's artefact_band when every band is affected
SUN_PER_R_FLUX = np.array([10 ** (-0.4 * 0.45), 1.0, 10 ** (0.4 * 0.35)])  # g-r 0.45, r-z 0.35


def add_satellite_trail(scene: Scene, rng: np.random.Generator) -> int:
    """Add a trail; return the band it is in (or ALL_BANDS)."""
    angle = rng.uniform(0.0, np.pi)
    # through a point within 40% of the half-size from the centre, so it crosses the galaxy's
    # surroundings
    px, py = scene.centre + rng.uniform(-0.4, 0.4, 2) * scene.size / 2
    xs, ys = scene.grid(-scene.pad, -scene.pad, scene.side, scene.side)
    across = (xs - px) * np.sin(angle) - (ys - py) * np.cos(angle)
    along = (xs - px) * np.cos(angle) + (ys - py) * np.sin(angle)
    glints = 1.0 + 0.3 * np.sin(2.0 * np.pi * along / rng.uniform(15.0, 60.0)
                                + rng.uniform(0, 2 * np.pi))
    peak = float(np.exp(rng.uniform(np.log(0.015), np.log(0.15))))  # nanomaggies per pixel
    widen = rng.uniform(1.0, 1.3)  # trails are slightly defocused: wider than a star
    if rng.uniform() < 0.3:
        band, per_band = ALL_BANDS, peak * SUN_PER_R_FLUX
    else:
        band = int(rng.integers(3))
        per_band = np.zeros(3)
        per_band[band] = peak
    stamp = np.zeros((3, scene.side, scene.side), dtype=np.float32)
    for b in range(3):
        if per_band[b] > 0:
            w = widen * scene.conditions.psf_sigma_pix[b]
            stamp[b] = glints * np.exp(-0.5 * (across / w) ** 2)
    scene.add_final(stamp, -scene.pad, -scene.pad, per_band, extinct=False)
    return band


def add_bad_column(scene: Scene, rng: np.random.Generator) -> int:
    band = int(rng.integers(3))
    x = round(scene.centre + rng.uniform(-50.0, 50.0))
    width = 1 if rng.uniform() < 0.8 else 2
    sigma = float(scene.conditions.noise_sigma[band])
    offset = sigma * rng.uniform(4.0, 25.0) * (1.0 if rng.uniform() < 0.75 else -0.5)
    extra_noise = sigma * rng.uniform(0.5, 3.0)
    if rng.uniform() < 0.5:
        lo, hi = 0, scene.size
    elif rng.uniform() < 0.5:
        lo, hi = int(rng.integers(0, scene.size // 2)), scene.size
    else:
        lo, hi = 0, int(rng.integers(scene.size // 2, scene.size))

    def column(image: np.ndarray, rng: np.random.Generator) -> None:
        strip = image[band, lo:hi, x:x + width]
        strip += offset + extra_noise * rng.standard_normal(strip.shape, dtype=np.float32)

    scene.post.append(column)
    return band


def add_bleed_trail(scene: Scene, rng: np.random.Generator) -> int:
    """A saturated star just beyond the top or bottom edge bleeding into the cutout."""
    x = scene.centre + rng.uniform(-60.0, 60.0)
    below = rng.uniform() < 0.5
    y = -rng.uniform(4.0, 20.0) if below else scene.size - 1 + rng.uniform(4.0, 20.0)
    mag_r = rng.uniform(9.5, 12.5)
    flux = pop.star_colour(rng).band_flux_from_r(
        float(mag_to_flux(mag_r)) / float(scene.conditions.extinction[1]))
    star = BrightStar.draw(rng, x, y, flux, spikes=rng.uniform() < 0.5)
    star.add_to(scene, saturate=False)
    ix = round(x)
    width = int(rng.integers(1, 4))
    level = star.saturation_nmgy * rng.uniform(0.3, 1.0)
    # each band saturates by a different amount, so its trail reaches a different length
    lengths = (scene.size * rng.uniform(0.3, 1.0, 3)).astype(int)
    lengths[rng.integers(3)] = scene.size  # at least one band crosses the whole cutout

    def bleed(image: np.ndarray, rng: np.random.Generator) -> None:
        for b in range(3):
            rows = slice(0, lengths[b]) if below else slice(scene.size - lengths[b], scene.size)
            trail = image[b, rows, ix - width // 2:ix - width // 2 + width]
            np.maximum(trail, level[b] * rng.uniform(0.6, 1.0, trail.shape), out=trail)

    scene.post.append(bleed)
    return ALL_BANDS


ADDERS = {SATELLITE_TRAIL: add_satellite_trail, BAD_COLUMN: add_bad_column,
          BLEED_TRAIL: add_bleed_trail}
KIND_WEIGHTS = {SATELLITE_TRAIL: 0.5, BAD_COLUMN: 0.25, BLEED_TRAIL: 0.25}


def build_artefact(scene: Scene, rng: np.random.Generator, truth: dict) -> Central:
    central = build_plain_galaxy(scene, rng, truth)
    kinds = list(KIND_WEIGHTS)
    kind = int(rng.choice(kinds, p=list(KIND_WEIGHTS.values())))
    band = ADDERS[kind](scene, rng)
    truth.update(artefact_kind=float(kind), artefact_band=float(band))
    return central
