"""The paper's augmentations as one batched torch pipeline, and the deterministic view.

:class:`Augment` maps a batch of (N, 3, H, W) g, r, z cutouts in nanomaggies, with each object's
E(B−V), PSF σ and noise σ (:func:`ml.augment.conditions.observing_conditions`), to network-ready
views. Every step is a tensor operation over the whole batch on the images' device (CPU or
CUDA); a ``torch.Generator`` makes the draws reproducible.

The paper's order and what is done here (each module says why its step may move):

1. extinction: de-redden with the object's E(B−V), re-redden with a draw. A per-band gain k is
   linear, so it is applied inside the blur step (fewer pixels, no extra pass); the noise step
   knows the own noise was scaled by k.
2.–5. flips, rotation, size scaling, jitter and central crop: one resampling
   (:mod:`ml.augment.geometry`), straight onto the network's grid (``out_size`` pixels, each
   ``step = crop / out_size`` survey pixels), with a margin of real sky for the blur.
   PSF blur (:mod:`ml.augment.blur`): after the resampling, in output pixels, in quadrature with
   the own PSF as the view shows it.
   (optional) a foreground star (:mod:`ml.augment.foreground`), off by default.
6. noise (:mod:`ml.augment.noise`): in quadrature with the own noise as the view shows it.
7. the arcsinh stretch (:func:`ml.render.arcsinh_rgb`): :func:`finish_view`, shared with
   :func:`center_view` so that training and embedding views cannot drift apart.

A view smaller than its crop (the CPU demo sees a 64-px crop as 32 px) is a re-observation of
the sky with pixels ``step`` survey pixels wide. Its values stay surface brightness (nanomaggies
per survey pixel), so a binned pixel averages step² survey pixels and its noise σ is the survey
pixel's σ / step: the drawn target PSF σ (survey pixels) is divided by ``step`` into output
pixels and the drawn target noise σ per survey pixel becomes σ / step per output pixel; the own
PSF and noise as the view shows them follow from the same resampling (:mod:`ml.augment.blur`,
:mod:`ml.augment.noise`). Blur, noise and stretch then run on out_size² pixels, not crop², and
no second interpolation (a resize) follows. :func:`center_view` samples the same grid (at
step 2 exactly the 2×2 binning of the crop) and stretches it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import torch

from ml.augment.blur import blur_crop, kernel_radius, own_psf_sigma_view, quadrature_sigma
from ml.augment.foreground import Foreground, draw_foreground, paste_foreground
from ml.augment.geometry import Geometry, center_offset, draw_geometry, phase_variance, resample
from ml.augment.noise import add_noise, own_noise_variance_factor
from ml.augment.stats import AugmentStats
from ml.photometry import extinction_factor
from ml.render import DEFAULT_STRETCH, Stretch, arcsinh_rgb

SAMPLING_MODES = ("lognormal", "uniform")
# most survey pixels per view pixel: bilinear sampling reads 2x2 pixels (ml.augment.geometry)
MAX_STEP = 2.0


@dataclass
class AugmentConfig:
    """Augmentation settings; plain types, so a TOML table maps onto it (see :meth:`from_dict`)."""

    # side of the view cut from the cutout, in cutout pixels (paper: 96 of 152)
    crop: int = 96
    # side of the network input: None keeps `crop`; else the crop is sampled onto an out_size
    # grid of crop / out_size survey pixels per view pixel (at most 2), e.g. 32 for 64-px crops
    # on a CPU
    out_size: int | None = None
    # the view's centre moves by U(-jitter_px, jitter_px) survey pixels per axis (paper: 7)
    jitter_px: float = 7.0
    # size scaling s ~ U(lo, hi), s > 1 enlarging the object; (1.0, 1.0) turns it off
    scale_range: tuple[float, float] = (0.9, 1.1)
    # flip each axis with probability 0.5
    flip: bool = True
    # rotate by U(0, 2π)
    rotate: bool = True
    # de-redden with the object's E(B-V), re-redden with a draw
    extinction: bool = True
    # blur each band to a drawn PSF σ, in quadrature with the object's own PSF
    psf_blur: bool = True
    # raise each band's noise to a drawn σ, in quadrature with the object's own noise
    noise: bool = True
    # "lognormal" (the paper: the survey's fitted log-normals) or "uniform" (U over each range,
    # the authors' code default, to reach the tails)
    sampling: str = "lognormal"
    # probability of pasting a bright foreground star into a view (0 = off, the paper's default)
    foreground_paste: float = 0.0
    # r-band AB magnitude range of the pasted star (colours: the stellar locus)
    foreground_mag_range: tuple[float, float] = (15.0, 19.0)
    # arcsinh stretch (ml.render.Stretch): per-band scales g, r, z, softening m, and Q
    stretch_scales: tuple[float, float, float] = field(default=DEFAULT_STRETCH.scales)
    stretch_m: float = DEFAULT_STRETCH.m
    stretch_q: float = DEFAULT_STRETCH.Q

    def __post_init__(self) -> None:
        # TOML gives lists: store tuples, so configs compare and hash alike
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                setattr(self, f.name, tuple(value))
        problems = []
        if self.crop < 1:
            problems.append(f"crop must be positive, got {self.crop}")
        if self.out_size is not None and self.out_size < 1:
            problems.append(f"out_size must be positive or None, got {self.out_size}")
        elif self.out_size is not None and self.crop > MAX_STEP * self.out_size:
            problems.append(
                f"out_size {self.out_size} is more than {MAX_STEP:g}x smaller than crop "
                f"{self.crop}: one bilinear resampling reads 2x2 pixels and would skip some "
                f"(aliasing); use out_size >= {math.ceil(self.crop / MAX_STEP)} or a smaller crop")
        if self.jitter_px < 0:
            problems.append(f"jitter_px must be >= 0, got {self.jitter_px}")
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            problems.append(f"scale_range must satisfy 0 < lo <= hi, got {self.scale_range}")
        if self.sampling not in SAMPLING_MODES:
            problems.append(f"sampling must be one of {SAMPLING_MODES}, got {self.sampling!r}")
        if not 0.0 <= self.foreground_paste <= 1.0:
            problems.append(f"foreground_paste is a probability, got {self.foreground_paste}")
        lo, hi = self.foreground_mag_range
        if lo > hi:
            problems.append("foreground_mag_range must be (lo, hi) with lo <= hi")
        if len(self.stretch_scales) != 3:
            problems.append("stretch_scales needs one scale per band g, r, z")
        if problems:
            raise ValueError("invalid augmentation config: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, d: dict) -> AugmentConfig:
        """Build from a TOML table; unknown keys are an error (a typo must not pass silently)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown augmentation setting(s) {unknown}; known: {sorted(known)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def stretch(self) -> Stretch:
        return Stretch(scales=tuple(self.stretch_scales), m=self.stretch_m, Q=self.stretch_q)

    @property
    def view_size(self) -> int:
        """Side of the network input in pixels."""
        return self.crop if self.out_size is None else self.out_size

    @property
    def step(self) -> float:
        """Survey pixels per view pixel: crop / out_size (1.0 without a resize)."""
        return self.crop / self.view_size


def finish_view(views: torch.Tensor, stretch: Stretch) -> torch.Tensor:
    """Nanomaggy views (N, 3, S, S) -> network input (N, 3, S, S), RGB in [0, 1].

    The last step of both :class:`Augment` and :func:`center_view`: the arcsinh stretch.
    """
    return arcsinh_rgb(views, stretch)


def center_view(images: torch.Tensor, crop: int, out_size: int | None = None,
                stretch: Stretch = DEFAULT_STRETCH) -> torch.Tensor:
    """The deterministic view that embedding and evaluation use: (N, 3, out, out) in [0, 1].

    The central crop sampled onto the network's grid (the view :class:`Augment` cuts when every
    draw is at its identity: the crop itself, or at step 2 its 2×2 binning), stretched by
    :func:`finish_view`.

    Args:
        images: (N, 3, H, W) float nanomaggies, g, r, z.
        crop: side of the central crop in pixels.
        out_size: side of the result (None: crop), at least crop / 2.
        stretch: the arcsinh stretch.
    """
    _check_images(images)
    height, width = images.shape[-2:]
    y0, x0 = center_offset(height, crop), center_offset(width, crop)
    if out_size is None or out_size == crop:
        view = images[:, :, y0:y0 + crop, x0:x0 + crop].float()
    else:
        step = AugmentConfig(crop=crop, out_size=out_size).step  # checks the step's range
        identity = Geometry.identity(images.shape[0], images.device, step)
        view = resample(images.float(), identity, crop, size=out_size)
    return finish_view(view, stretch)


@dataclass
class AugmentDraw:
    """The random part of one batch of views (see :meth:`Augment.draw`).

    Attributes:
        geometry: flips, rotation, scaling and jitter.
        ebv: (N,) new E(B−V), magnitudes; None leaves the extinction alone.
        psf_sigma_pix: (N, 3) target PSF σ of the view, output pixels; None: no blur.
        noise_sigma: (N, 3) target noise σ per view pixel, nanomaggies; None: no noise.
        foreground: stars to paste; None: none.

    The PSF and noise targets are in the view's pixels (``step`` survey pixels each): the
    survey-pixel draws divided by ``step``.
    """

    geometry: Geometry
    ebv: torch.Tensor | None
    psf_sigma_pix: torch.Tensor | None
    noise_sigma: torch.Tensor | None
    foreground: Foreground | None


class Augment:
    """The paper's augmentations, batched: cutouts + observing conditions -> training views.

    Args:
        config: what to apply (defaults: the paper's settings).
        stats: distributions to draw E(B−V), PSF and noise from, normally
            ``AugmentStats.load(survey_dir)``; None uses the authors' DR9 south fits.

    Raises:
        ValueError: ``sampling="lognormal"`` with statistics that hold only uniform ranges.
    """

    def __init__(self, config: AugmentConfig | None = None,
                 stats: AugmentStats | None = None) -> None:
        self.config = config or AugmentConfig()
        stats = AugmentStats.dr9_south() if stats is None else stats
        if self.config.sampling == "uniform":
            stats = stats.as_uniform()
        elif stats.is_uniform():
            raise ValueError(
                "the augmentation statistics hold uniform ranges (written by `galsearch "
                "fit-augment --sampling uniform`), but sampling='lognormal' was asked: set "
                "sampling='uniform' or run `galsearch fit-augment SURVEY` to fit log-normals"
            )
        self.stats = stats
        self.stretch = self.config.stretch()
        # 10^(-0.4 R) per band: the dimming of one magnitude of E(B-V); a change dE dims by its
        # dE-th power, so the gain needs no second copy of the extinction law
        self._dimming_per_ebv = torch.from_numpy(extinction_factor(1.0)).float()  # (3,)

    def __repr__(self) -> str:
        return f"Augment({self.config!r})"

    def draw(self, n: int, generator: torch.Generator | None = None,
             device: torch.device | str = "cpu") -> AugmentDraw:
        """Draw the random parameters of n views (on ``device``, from ``generator``)."""
        device = torch.device(device)
        if generator is not None and generator.device.type != device.type:
            raise ValueError(
                f"the generator lives on {generator.device} but the images on {device}; "
                f"create it with torch.Generator(device={str(device)!r})"
            )
        cfg, stats, step = self.config, self.stats, self.config.step
        geometry = draw_geometry(n, flip=cfg.flip, rotate=cfg.rotate,
                                 scale_range=cfg.scale_range, jitter_px=cfg.jitter_px,
                                 generator=generator, device=device, step=step)

        def per_band(dists) -> torch.Tensor:  # (N, 3)
            return torch.stack([d.sample_torch(n, generator, device) for d in dists], dim=1)

        ebv = stats.ebv.sample_torch(n, generator, device) if cfg.extinction else None
        # survey pixels -> view pixels: a PSF σ of p survey px is p / step view px wide, and a
        # view pixel averaging step² survey pixels of noise σ has noise σ / step
        psf = per_band(stats.psf_sigma_pix) / step if cfg.psf_blur else None
        noise = per_band(stats.noise_sigma) / step if cfg.noise else None
        foreground = None
        if cfg.foreground_paste > 0:
            foreground = draw_foreground(
                n, probability=cfg.foreground_paste, mag_range=cfg.foreground_mag_range,
                size=cfg.view_size, generator=generator, device=device)
        return AugmentDraw(geometry, ebv, psf, noise, foreground)

    def apply(self, images: torch.Tensor, ebv, psf_sigma_pix, noise_sigma, draw: AugmentDraw,
              generator: torch.Generator | None = None, copies: int = 1) -> torch.Tensor:
        """The augmented views in nanomaggies, before the stretch: (kN, 3, S, S), S = view_size.

        Args:
            images: (N, 3, H, W) float nanomaggies, g, r, z.
            ebv: (N,) the objects' E(B−V) (tensor or array).
            psf_sigma_pix: (N, 3) the objects' PSF σ, cutout pixels.
            noise_sigma: (N, 3) the objects' noise σ per pixel, nanomaggies.
            draw: from :meth:`draw` for k N views (or built by hand, e.g. to test one step).
            generator: source of the noise field.
            copies: k, independent views of every object, copy-major (view k' N + i is copy k'
                of object i).
        """
        _check_images(images)
        images = images.float()
        n, device = images.shape[0], images.device
        crop, size = self.config.crop, self.config.view_size
        ebv, psf_own, noise_own = (t.repeat(copies, *[1] * (t.dim() - 1)) for t in
                                   _conditions(n, device, ebv, psf_sigma_pix, noise_sigma))
        geom = draw.geometry

        # the own PSF as the resampled view shows it, then the blur that reaches the target
        phase_var = phase_variance(geom, crop, size)  # (N, 2) input px²
        psf_view = own_psf_sigma_view(psf_own, geom.zoom().to(device), phase_var)  # output px
        blur_sigma = (quadrature_sigma(draw.psf_sigma_pix, psf_view)
                      if draw.psf_sigma_pix is not None else torch.zeros_like(psf_view))
        # extinction gain k = 10^(0.4 R (E_own - E_new)) per band
        gain = None
        if draw.ebv is not None:
            delta = (draw.ebv - ebv)[:, None]  # (N, 1)
            gain = self._dimming_per_ebv.to(device) ** delta  # (N, 3)

        padded = resample(images, geom, crop, pad=kernel_radius(blur_sigma), size=size,
                          copies=copies)
        views = blur_crop(padded, blur_sigma, size, gain)  # (N, 3, size, size)

        if draw.foreground is not None:
            # a point source pasted before a blur of blur_sigma would now be this wide
            star_sigma = torch.sqrt(psf_view**2 + blur_sigma**2)
            views = paste_foreground(views, draw.foreground, star_sigma, geom.step**2)

        if draw.noise_sigma is not None:
            rho = own_noise_variance_factor(blur_sigma, geom.matrix().to(device),
                                            phase_var)  # (N, 3)
            own_var = rho * noise_own**2 * (1.0 if gain is None else gain**2)
            views = add_noise(views, quadrature_sigma(draw.noise_sigma, own_var.sqrt()),
                              generator)
        return views

    def __call__(self, images: torch.Tensor, ebv, psf_sigma_pix, noise_sigma,
                 generator: torch.Generator | None = None, copies: int = 1) -> torch.Tensor:
        """Augmented, stretched network inputs: (kN, 3, out, out) float32 RGB in [0, 1].

        Args:
            images: (N, 3, H, W) float32 nanomaggies, g, r, z, H and W at least ``crop``.
            ebv: (N,) E(B−V) of each object, magnitudes.
            psf_sigma_pix: (N, 3) PSF Gaussian σ per band, cutout pixels.
            noise_sigma: (N, 3) noise σ per pixel per band, nanomaggies.
            generator: a ``torch.Generator`` on the images' device for reproducible views;
                None draws from torch's global generator.
            copies: k independent views of every object (MoCo's query and key: 2), copy-major;
                the same views as k copies of the batch would get, without copying it.
        """
        draw = self.draw(copies * images.shape[0], generator, images.device)
        views = self.apply(images, ebv, psf_sigma_pix, noise_sigma, draw, generator, copies)
        return finish_view(views, self.stretch)


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
        raise ValueError(f"images must be a (N, 3, H, W) tensor of g, r, z cutouts, got {shape}")


def _conditions(n: int, device: torch.device, ebv, psf_sigma_pix,
                noise_sigma) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    out = []
    for name, value, shape in (("ebv", ebv, (n,)), ("psf_sigma_pix", psf_sigma_pix, (n, 3)),
                               ("noise_sigma", noise_sigma, (n, 3))):
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value)
        t = torch.as_tensor(value, dtype=torch.float32, device=device)
        if tuple(t.shape) != shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)}; expected {shape} for {n} images")
        out.append(t)
    return out[0], out[1], out[2]
