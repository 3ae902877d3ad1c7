"""A cutout's light, collected band by band, and how it becomes noisy pixels.

The PSF is a Gaussian of a different width in each band, and blurring is linear, so a
component drawn once can serve all three bands: blur(sum_i c_bi * comp_i) = sum_i c_bi *
blur(comp_i). A :class:`Scene` therefore keeps three canvases of (3, P, P) per-band light, P =
cutout + 2 * pad (the pad holds light from just outside the cutout and keeps the FFT's wrap-around
out of it), by how much PSF the light already has:

* ``pre``: drawn by GalSim convolved with a narrow base Gaussian (sigma 1 px, below DR9's
  narrowest PSF). The base PSF keeps GalSim's FFTs small and Sérsic cusps well sampled; each
  band then gets the rest of its PSF, a Gaussian of sigma sqrt(sigma_b^2 - 1), in Fourier space.
* ``raw``: light with no PSF yet, sampled on pixels (spiral arm patterns, rings, lensed arcs
  from lenstronomy); each band gets its whole PSF in Fourier space.
* ``final``: light already at the band's PSF, drawn analytically (point sources and Gaussian
  knots, whose convolution with a Gaussian PSF is a wider Gaussian; star halos, trails).

:meth:`Scene.render` blurs, sums, crops, and adds noise: the sky's, from the conditions, plus
the source's own Poisson noise. Effects of the detector on the noisy image (saturation, bleed
trails, bad columns) run last, as ``post`` steps. Pixel values are nanomaggies, the effective
PSF is the Gaussian itself sampled at pixel centres (the DR9 sigma is measured on pixels, so the
pixel response is part of it), and positions are in cutout pixels, (0, 0) being the centre of
the first pixel.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import galsim
import numpy as np
import scipy.fft

from ml.simulate.conditions import Conditions
from ml.survey_format import PIXEL_SCALE_ARCSEC

BASE_PSF_SIGMA_PIX = 1.0  # DR9 south's narrowest PSF is 1.21 px (z band)
PAD_PSF_SIGMAS = 4.5  # canvas pad in units of the widest band's PSF sigma (min PAD_MIN_PIX)
PAD_MIN_PIX = 8
GSPARAMS = galsim.GSParams(folding_threshold=5e-3, maxk_threshold=2e-3)
BASE_PSF = galsim.Gaussian(sigma=BASE_PSF_SIGMA_PIX * PIXEL_SCALE_ARCSEC, gsparams=GSPARAMS)



@functools.cache
def _unit_sersic(n: float, trunc_hlr: float) -> galsim.Sersic:
    return galsim.Sersic(n, half_light_radius=1.0, trunc=trunc_hlr, gsparams=GSPARAMS)


def sersic(n: float, half_light_radius: float, trunc_hlr: float) -> galsim.GSObject:
    """A unit-flux Sérsic profile truncated at ``trunc_hlr`` half-light radii (arcsec).

    Built by dilating a cached unit-size profile: GalSim keys its Sérsic tables by n and the
    truncation in scale radii, so a fresh ``galsim.Sersic(n, hlr, trunc=k * hlr)`` misses that
    cache on rounding and recomputes them (2-3x the cost of the whole draw).
    """
    return _unit_sersic(float(n), float(trunc_hlr)).dilate(half_light_radius)


PostStep = Callable[[np.ndarray, np.random.Generator], None]  # (3, S, S) in place


def gaussian_1d(coords: np.ndarray, centre: float, sigma: float) -> np.ndarray:
    """A unit-integral Gaussian sampled at pixel centres ``coords`` (pixels)."""
    d = (coords - centre) / sigma
    return np.exp(-0.5 * d * d) / (np.sqrt(2.0 * np.pi) * sigma)


class Scene:
    """The light of one cutout before noise.

    Args:
        size: cutout side, pixels.
        conditions: the cutout's PSF, noise and extinction.
        pad: extra canvas on each side, pixels; by default 4.5 sigma of the widest PSF (the
            FFT's wrap-around fades below 4e-5 of the light before it reaches the cutout),
            grown to a fast FFT length.
    """

    def __init__(self, size: int, conditions: Conditions, pad: int | None = None) -> None:
        self.size = int(size)
        if pad is None:
            pad = max(PAD_MIN_PIX, int(np.ceil(PAD_PSF_SIGMAS * conditions.psf_sigma_pix.max())))
            side = scipy.fft.next_fast_len(self.size + 2 * pad, real=True)
            while (side - self.size) % 2:
                side = scipy.fft.next_fast_len(side + 1, real=True)
            pad = (side - self.size) // 2
        self.pad = int(pad)
        self.side = self.size + 2 * self.pad  # P
        self.conditions = conditions
        self.centre = (self.size - 1) / 2.0  # where the cutout's target sits
        self._pre: np.ndarray | None = None  # (3, P, P)
        self._raw: np.ndarray | None = None
        self._final: np.ndarray | None = None
        self.post: list[PostStep] = []
        self._extinction = conditions.extinction.astype(np.float32)  # (3,)
        self._fy2 = scipy.fft.fftfreq(self.side) ** 2  # cycles / pixel, squared
        self._fx2 = scipy.fft.rfftfreq(self.side) ** 2

    # -- canvases ---------------------------------------------------------------------------
    def _canvas(self, name: str) -> np.ndarray:
        canvas = getattr(self, name)
        if canvas is None:
            canvas = np.zeros((3, self.side, self.side), dtype=np.float32)
            setattr(self, name, canvas)
        return canvas

    def _add(self, name: str, stamp: np.ndarray, x0: int, y0: int, band_flux: np.ndarray,
             extinct: bool = True) -> None:
        """Add band_flux[b] * stamp (h, w) or stamp (3, h, w) at canvas pixel (x0, y0), clipped.

        Light from the sky is dimmed by the Galaxy's dust (``extinct``); detector effects are not.
        """
        h, w = stamp.shape[-2:]
        xa, ya = max(x0, 0), max(y0, 0)
        xb, yb = min(x0 + w, self.side), min(y0 + h, self.side)
        if xa >= xb or ya >= yb:
            return
        part = stamp[..., ya - y0:yb - y0, xa - x0:xb - x0]
        coef = np.asarray(band_flux, dtype=np.float32)
        if extinct:
            coef = coef * self._extinction
        if part.ndim == 2:
            part = part[None]
        self._canvas(name)[:, ya:yb, xa:xb] += coef[:, None, None] * part

    def to_canvas(self, x: float, y: float) -> tuple[float, float]:
        return x + self.pad, y + self.pad

    # -- adding light -----------------------------------------------------------------------
    # Fluxes are intrinsic (before Galactic extinction) nanomaggies per band, shape (3,);
    # the scene applies the cutout's extinction unless told the light is not from the sky.

    def draw_profile(self, profile: galsim.GSObject, x: float, y: float, radius_pix: float
                     ) -> tuple[np.ndarray, int, int]:
        """Draw a PSF-free unit-flux GalSim profile at cutout (x, y), blurred by the base PSF.

        Args:
            profile: unit-flux profile, sizes in arcsec (use :data:`GSPARAMS`).
            radius_pix: the profile's extent; light beyond it (plus the base PSF) is dropped.

        Returns:
            the (h, w) stamp and its corner (x0, y0) in cutout pixels, for :meth:`add_pre`.
        """
        cx, cy = self.to_canvas(x, y)
        r = int(np.ceil(radius_pix + 4.0 * BASE_PSF_SIGMA_PIX)) + 1
        ix, iy = round(cx), round(cy)
        xa, xb = max(ix - r, 0), min(ix + r, self.side - 1)
        ya, yb = max(iy - r, 0), min(iy + r, self.side - 1)
        if xa > xb or ya > yb:
            return np.zeros((0, 0), dtype=np.float32), 0, 0
        image = galsim.ImageF(galsim.BoundsI(xa, xb, ya, yb), scale=PIXEL_SCALE_ARCSEC)
        conv = galsim.Convolve(profile, BASE_PSF, gsparams=GSPARAMS)
        conv.drawImage(image=image, method="no_pixel", center=galsim.PositionD(cx, cy))
        return image.array, xa - self.pad, ya - self.pad

    def add_profile(self, profile: galsim.GSObject, x: float, y: float, band_flux: np.ndarray,
                    radius_pix: float) -> None:
        """Draw (:meth:`draw_profile`) and add a GalSim profile with flux ``band_flux``."""
        stamp, x0, y0 = self.draw_profile(profile, x, y, radius_pix)
        self.add_pre(stamp, x0, y0, band_flux)

    def add_pre(self, stamp: np.ndarray, x0: int, y0: int, band_flux: np.ndarray) -> None:
        """Add light already blurred by the base PSF: a (h, w) unit-flux stamp times band_flux,
        or a (3, h, w) stamp whose bands band_flux scales, corner at cutout pixel (x0, y0)."""
        self._add("_pre", stamp, x0 + self.pad, y0 + self.pad, band_flux)

    def add_raw(self, stamp: np.ndarray, x0: int, y0: int, band_flux: np.ndarray) -> None:
        """Add PSF-free light (stamp shapes as in :meth:`add_pre`)."""
        self._add("_raw", stamp, x0 + self.pad, y0 + self.pad, band_flux)

    def add_final(self, stamp: np.ndarray, x0: int, y0: int, band_flux: np.ndarray,
                  extinct: bool = True) -> None:
        """Add light already at each band's PSF (stamp shapes as in :meth:`add_pre`)."""
        self._add("_final", stamp, x0 + self.pad, y0 + self.pad, band_flux, extinct)

    def add_gaussians(self, x: np.ndarray, y: np.ndarray, sigma_pix: np.ndarray | float,
                      band_flux: np.ndarray) -> None:
        """Add round Gaussians of intrinsic sigma (0: point sources) at cutout (x, y), (n,) each,
        with intrinsic fluxes band_flux (n, 3).

        Their images are exact: Gaussians of sigma sqrt(sigma^2 + sigma_psf_b^2) in band b. Each
        is separable, so all of them together are one matrix product per band over their common
        bounding box: image_b = (G_y * f_b)^T G_x with G (n, side).
        """
        cx = np.atleast_1d(np.asarray(x, dtype=np.float64)) + self.pad
        cy = np.atleast_1d(np.asarray(y, dtype=np.float64)) + self.pad
        if cx.size == 0:
            return
        flux = np.asarray(band_flux, dtype=np.float64).reshape(-1, 3) * self._extinction
        sigma2 = np.broadcast_to(np.asarray(sigma_pix, dtype=np.float64) ** 2, cx.shape)
        reach = 5.0 * np.sqrt(sigma2.max() + self.conditions.psf_sigma_pix.max() ** 2)
        x0 = max(int(np.floor(cx.min() - reach)), 0)
        x1 = min(int(np.ceil(cx.max() + reach)) + 1, self.side)
        y0 = max(int(np.floor(cy.min() - reach)), 0)
        y1 = min(int(np.ceil(cy.max() + reach)) + 1, self.side)
        if x0 >= x1 or y0 >= y1:
            return
        xs, ys = np.arange(x0, x1, dtype=np.float64), np.arange(y0, y1, dtype=np.float64)
        canvas = self._canvas("_final")
        for b in range(3):
            s = np.sqrt(sigma2 + self.conditions.psf_sigma_pix[b] ** 2)[:, None]  # (n, 1)
            gx = gaussian_1d(xs[None, :], cx[:, None], s)  # (n, w)
            gy = gaussian_1d(ys[None, :], cy[:, None], s)  # (n, h)
            canvas[b, y0:y1, x0:x1] += ((gy * flux[:, b:b + 1]).T @ gx).astype(np.float32)

    def add_gaussian(self, x: float, y: float, sigma_pix: float, band_flux: np.ndarray) -> None:
        """One Gaussian (see :meth:`add_gaussians`); band_flux (3,)."""
        self.add_gaussians(np.array([x]), np.array([y]), sigma_pix, np.asarray(band_flux)[None])

    def grid(self, x0: int, y0: int, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        """Cutout pixel coordinates (x, y), each (h, w), of a stamp with corner (x0, y0)."""
        ys, xs = np.mgrid[y0:y0 + h, x0:x0 + w]
        return xs.astype(np.float64), ys.astype(np.float64)

    # -- pixels -----------------------------------------------------------------------------
    def noiseless(self) -> np.ndarray:
        """(3, S, S) float32 noise-free cutout (before the post steps)."""
        p, s = self.pad, self.size
        spectrum = None
        psf = self.conditions.psf_sigma_pix
        for name, sigma2 in (("_pre", psf**2 - BASE_PSF_SIGMA_PIX**2), ("_raw", psf**2)):
            canvas = getattr(self, name)
            if canvas is None:
                continue
            term = scipy.fft.rfft2(canvas)  # (3, P, P // 2 + 1)
            # a Gaussian's transform is separable: exp(-2 pi^2 s^2 fy^2) exp(-2 pi^2 s^2 fx^2)
            a = (-2.0 * np.pi**2 * sigma2)[:, None]  # (3, 1)
            term *= np.exp(a * self._fy2).astype(np.float32)[:, :, None]
            term *= np.exp(a * self._fx2).astype(np.float32)[:, None, :]
            spectrum = term if spectrum is None else spectrum + term
        if spectrum is None:
            image = np.zeros((3, s, s), dtype=np.float32)
        else:
            image = scipy.fft.irfft2(spectrum, s=(self.side, self.side))[:, p:p + s, p:p + s]
            image = np.ascontiguousarray(image, dtype=np.float32)
        if self._final is not None:
            image += self._final[:, p:p + s, p:p + s]
        return image

    def render(self, rng: np.random.Generator, noise: bool = True) -> np.ndarray:
        """(3, S, S) float32 cutout in nanomaggies: light, noise, then the post steps."""
        image = self.noiseless()
        if noise:
            c = self.conditions
            # per-pixel sigma = sqrt(sky^2 + source / gain), built in place (69k pixels each)
            sigma = np.maximum(image, 0.0)
            sigma *= (1.0 / c.electrons_per_nmgy).astype(np.float32)[:, None, None]
            sigma += (c.noise_sigma**2).astype(np.float32)[:, None, None]
            np.sqrt(sigma, out=sigma)
            noise = rng.standard_normal(image.shape, dtype=np.float32)
            noise *= sigma
            image += noise
        for step in self.post:
            step(image, rng)
        return image
