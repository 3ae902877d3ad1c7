"""Bright foreground stars: a saturated core, extended wings, diffraction spikes, bleed trails.

A star's image is the band's Gaussian PSF (:meth:`Scene.add_gaussian`) holding most of the
light, plus what the Gaussian model leaves out but bright stars make visible: a Moffat halo of
a few per cent of the flux (scattered light, tens of arcsec across), and four diffraction spikes
from the secondary-mirror supports, aligned with the pixel axes as on DECam. Where a pixel would
exceed the band's saturation level, the image is flat at that level, and the charge that did not
fit runs along the column as a bleed trail whose length conserves that charge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.photometry import flux_to_mag, mag_to_flux
from ml.simulate import population as pop
from ml.simulate.galaxies import Central, build_plain_galaxy
from ml.simulate.scene import Scene, gaussian_1d
from ml.survey_format import PIXEL_SCALE_ARCSEC

HALO_FRACTION = (0.05, 0.12)
HALO_CORE_PIX = (5.0, 12.0)  # Moffat alpha
HALO_BETA = (2.0, 2.7)
SPIKE_FRACTION = (0.002, 0.006)  # per spike
SATURATION_NMGY = (40.0, 150.0)  # per pixel


@dataclass
class BrightStar:
    x: float
    y: float
    flux: np.ndarray  # (3,) intrinsic nanomaggies
    halo_fraction: float
    halo_alpha_pix: float
    halo_beta: float
    spike_fraction: float  # 0: no spikes
    saturation_nmgy: np.ndarray  # (3,)

    @classmethod
    def draw(cls, rng: np.random.Generator, x: float, y: float, flux: np.ndarray,
             spikes: bool) -> BrightStar:
        return cls(
            x=x, y=y, flux=flux,
            halo_fraction=float(rng.uniform(*HALO_FRACTION)),
            halo_alpha_pix=float(rng.uniform(*HALO_CORE_PIX)),
            halo_beta=float(rng.uniform(*HALO_BETA)),
            spike_fraction=float(rng.uniform(*SPIKE_FRACTION)) if spikes else 0.0,
            # one level for all bands: a saturated core is white, not the colour of the ratio
            # of three unrelated levels
            saturation_nmgy=np.full(3, rng.uniform(*SATURATION_NMGY)),
        )

    def add_to(self, scene: Scene, saturate: bool = True) -> None:
        core = 1.0 - self.halo_fraction - 4.0 * self.spike_fraction
        scene.add_gaussian(self.x, self.y, 0.0, core * self.flux)
        self._add_halo(scene)
        if self.spike_fraction > 0:
            self._add_spikes(scene)
        if saturate:
            scene.post.append(self._saturate)

    def _add_halo(self, scene: Scene) -> None:
        a, beta = self.halo_alpha_pix, self.halo_beta
        # out to where the halo is 1e-4 of its peak, or the canvas
        half = int(min(a * np.sqrt(1e-4 ** (-1.0 / beta) - 1.0), scene.side))
        x0, y0 = round(self.x) - half, round(self.y) - half
        xs, ys = scene.grid(x0, y0, 2 * half + 1, 2 * half + 1)
        r2 = (xs - self.x) ** 2 + (ys - self.y) ** 2
        moffat = (beta - 1.0) / (np.pi * a * a) * (1.0 + r2 / (a * a)) ** (-beta)
        scene.add_final(moffat.astype(np.float32), x0, y0, self.halo_fraction * self.flux)

    def _add_spikes(self, scene: Scene) -> None:
        # spike length grows with the square root of the flux, as a bright star's do
        length = float(np.clip(8.0 * np.sqrt(self.flux[1] / 100.0), 10.0, 90.0))
        n = int(np.ceil(length))
        d = np.arange(1, n + 1, dtype=np.float64)
        along = (1.0 + d / 3.0) ** -1.5
        along /= along.sum()
        sigma = scene.conditions.psf_sigma_pix
        w = int(np.ceil(4.0 * sigma.max()))
        across = np.arange(-w, w + 1, dtype=np.float64)
        ix, iy = round(self.x), round(self.y)
        fx, fy = self.x - ix, self.y - iy
        for direction in (1, -1):
            # horizontal spike: rows around the star, columns away from it
            prof = np.stack([np.outer(gaussian_1d(across, fy, s), along) for s in sigma])
            prof = prof[:, :, ::-1] if direction < 0 else prof
            x0 = ix + 1 if direction > 0 else ix - n
            scene.add_final(prof.astype(np.float32), x0, iy - w, self.spike_fraction * self.flux)
            # vertical spike
            prof = np.stack([np.outer(along, gaussian_1d(across, fx, s)) for s in sigma])
            prof = prof[:, ::-1, :] if direction < 0 else prof
            y0 = iy + 1 if direction > 0 else iy - n
            scene.add_final(prof.astype(np.float32), ix - w, y0, self.spike_fraction * self.flux)

    def _saturate(self, image: np.ndarray, rng: np.random.Generator) -> None:
        """Flatten pixels above saturation; spread the excess charge along the column."""
        size = image.shape[-1]
        ix = round(self.x)
        for b in range(3):
            level = float(self.saturation_nmgy[b])
            over = image[b] > level
            if not over.any():
                continue
            excess = float((image[b][over] - level).sum())
            image[b][over] = level
            if not 0 <= ix < size:
                continue
            rows = np.flatnonzero(over[:, ix])
            if rows.size == 0:
                continue
            # the bleed carries the excess at the saturation level, half up and half down
            half_len = int(excess / level / 2.0)
            lo, hi = max(rows.min() - half_len, 0), min(rows.max() + half_len + 1, size)
            trail = image[b, lo:hi, ix]
            np.maximum(trail, level * rng.uniform(0.7, 1.0, trail.shape), out=trail)

    def saturates(self, scene: Scene) -> bool:
        peak = (self.flux * scene.conditions.extinction
                / (2.0 * np.pi * scene.conditions.psf_sigma_pix**2))
        return bool((peak > self.saturation_nmgy).any())


def build_star(scene: Scene, rng: np.random.Generator, truth: dict) -> Central:
    """A galaxy with a bright star (r = 10.5-15.5) beside it (or, one time in six, on top of
    it), with spikes three times in four."""
    central = build_plain_galaxy(scene, rng, truth)
    mag_r = pop.draw_count_mag(rng, 10.5, 15.5, 0.15)
    flux = pop.star_colour(rng).band_flux_from_r(
        float(mag_to_flux(mag_r)) / float(scene.conditions.extinction[1]))
    offset = rng.uniform(0.0, 12.0) if rng.uniform() < 1 / 6 else rng.uniform(12.0, 60.0)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    star = BrightStar.draw(rng, scene.centre + offset * np.cos(angle),
                           scene.centre + offset * np.sin(angle), flux,
                           spikes=rng.uniform() < 0.75)
    star.add_to(scene)
    truth.update(star_mag_r=float(flux_to_mag(flux[1])),
                 star_offset_arcsec=offset * PIXEL_SCALE_ARCSEC,
                 star_saturated=float(star.saturates(scene)),
                 star_spikes=float(star.spike_fraction > 0))
    return central
