"""Flips, rotation, size scaling, jitter and the central crop as one resampling.

The paper applies flip + rotation U(0, 2π), then a size scaling U(0.9, 1.1) (bilinear), then
(after the PSF blur) a jitter U(−7, 7) px and the central 96×96 crop. All four are affine maps of
pixel coordinates, so they compose into one map from a view pixel to a cutout position, and the
cutout is interpolated once (``affine_grid`` + ``grid_sample``, bilinear) instead of four times:
each interpolation smooths the image and its noise, so one is both faster and more faithful.

Conventions. ``u`` is a view pixel's offset from the view centre (output pixels, x then y),
``c`` the centre of the cutout's central crop (input pixels). A view pixel samples the cutout at

    x_in = c + A (u + t),   A = R(angle) · F / s,

with ``F = diag(±1, ±1)`` the flips, ``s`` the size scaling (s > 1 enlarges the object) and
``t`` the jitter in output pixels, applied after the scaling as in the paper: a source at the
crop centre lands exactly at ``u = −t`` whatever the rotation and scale. With every draw at its
identity the view is the plain central crop, pixel for pixel (:func:`center_offset` is shared
with :func:`ml.augment.pipeline.center_view`).

Where the reflection reaches the view. Sampling uses reflection padding, so a position outside
the cutout reads the mirrored sky instead of a fill value or an edge. A 96-px view of a 152-px
cutout reads nothing past the last pixel centre (75.5 px from the centre) unless rotated: its
farthest pixel, (47.5 + 7)·√2 = 77.1 output px from the centre, lies 77.1 / s input px out.
At the extreme (rotation 45°, s = 0.9, jitter (7, 7)) that is 85.6 px: one corner triangle,
about 1% of the view, is mirrored sky (0.99% of the pixels, measured by the tests). With s = 1.1
nothing is (70.1 px). Over the training draws, 8.9% of views touch the mirror at all and on
average 0.011% of a view's pixels are mirrored. The blur's margin (``pad`` below) reaches a few
pixels further; only its Gaussian tails feed the view. Mirrored sky keeps the noise level and
has no edge, so nothing there tells the network where the cutout ended. Surface brightness is
kept: a view zoomed by s holds s² times the flux, as the same galaxy seen closer would.

Interpolation smoothing. Bilinear interpolation at sub-pixel phase f mixes two pixels with
weights (1 − f, f): it adds f(1 − f) px² to the PSF's variance and scales white noise variance by
(1 − f)² + f² along each input axis. :func:`phase_variance` measures the mean f(1 − f) of a view,
per input axis, from the same coordinates the resampling uses; the blur and noise steps use it
to hit their targets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# view pixels sampled (every PHASE_STRIDE-th row and column) to measure the interpolation phases:
# exact for axis-aligned views (every pixel has the same phase), a fine average otherwise
PHASE_STRIDE = 3


@dataclass
class Geometry:
    """One affine view per object.

    Attributes:
        flip: (N, 2) ±1 for the x and y axes.
        angle: (N,) rotation in radians.
        scale: (N,) size scaling s (the object appears s times larger).
        jitter: (N, 2) shift of the view in output pixels (x, y).
    """

    flip: torch.Tensor
    angle: torch.Tensor
    scale: torch.Tensor
    jitter: torch.Tensor

    @classmethod
    def identity(cls, n: int, device: torch.device | str = "cpu") -> Geometry:
        return cls(flip=torch.ones(n, 2, device=device), angle=torch.zeros(n, device=device),
                   scale=torch.ones(n, device=device), jitter=torch.zeros(n, 2, device=device))

    def matrix(self) -> torch.Tensor:
        """A = R · F / s, (N, 2, 2): input pixels per output pixel."""
        cos, sin = torch.cos(self.angle), torch.sin(self.angle)
        rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
        return rot * self.flip[:, None, :] / self.scale[:, None, None]


def draw_geometry(n: int, *, flip: bool, rotate: bool, scale_range: tuple[float, float],
                  jitter_px: float, generator: torch.Generator | None,
                  device: torch.device | str) -> Geometry:
    """Draw flips (p = 0.5 per axis), angle U(0, 2π), s U(scale_range), jitter U(±jitter_px)."""
    geom = Geometry.identity(n, device)
    if flip:
        coin = torch.rand(n, 2, generator=generator, device=device) < 0.5
        geom.flip = torch.where(coin, -1.0, 1.0)
    if rotate:
        geom.angle = torch.rand(n, generator=generator, device=device) * (2.0 * math.pi)
    lo, hi = scale_range
    if hi > lo:
        geom.scale = lo + (hi - lo) * torch.rand(n, generator=generator, device=device)
    elif lo != 1.0:
        geom.scale = torch.full((n,), float(lo), device=device)
    if jitter_px > 0:
        geom.jitter = (2.0 * torch.rand(n, 2, generator=generator, device=device) - 1.0) * jitter_px
    return geom


def center_offset(size: int, crop: int) -> int:
    """First row/column of the central ``crop`` of ``size`` pixels."""
    if not 0 < crop <= size:
        raise ValueError(f"crop {crop} px does not fit in a {size}-px cutout")
    return (size - crop) // 2


def _crop_center(height: int, width: int, crop: int) -> tuple[float, float]:
    """(x, y) input pixel coordinate of the centre of the central crop."""
    return (center_offset(width, crop) + (crop - 1) / 2.0,
            center_offset(height, crop) + (crop - 1) / 2.0)


def resample(images: torch.Tensor, geom: Geometry, crop: int, pad: int = 0) -> torch.Tensor:
    """The view of every object, with ``pad`` extra pixels of real (resampled) sky on each side.

    Args:
        images: (N, C, H, W) cutouts.
        geom: the views.
        crop: side of the view in output pixels.
        pad: margin on each side, for a later blur to read true sky instead of a padding.

    Returns:
        (N, C, crop + 2 pad, crop + 2 pad): one bilinear interpolation, reflection at the border.
    """
    n, _, height, width = images.shape
    out = crop + 2 * pad
    cx, cy = _crop_center(height, width, crop)
    a = geom.matrix().to(images.dtype)  # (N, 2, 2)
    shift = torch.einsum("nij,nj->ni", a, geom.jitter.to(images.dtype))  # (N, 2) input px
    # affine_grid (align_corners=False) maps normalised output coordinates (pixel centres at
    # (2j + 1)/out − 1) to normalised input ones; in those units u = x_out_n · out / 2 and
    # x_in_n = (2 x_in + 1) / W − 1, which turns x_in = c + A (u + t) into theta below
    size_in = torch.tensor([width, height], dtype=images.dtype, device=images.device)
    centre_n = torch.tensor([(2 * cx + 1) / width - 1, (2 * cy + 1) / height - 1],
                            dtype=images.dtype, device=images.device)
    theta = torch.empty(n, 2, 3, dtype=images.dtype, device=images.device)
    theta[:, :, :2] = a * (out / size_in)[None, :, None]
    theta[:, :, 2] = centre_n + 2.0 * shift / size_in
    grid = F.affine_grid(theta, [n, images.shape[1], out, out], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection",
                         align_corners=False)


def phase_variance(geom: Geometry, crop: int) -> torch.Tensor:
    """Mean f(1 − f) of the bilinear phases over the view, per input axis: (N, 2) px².

    f is the fractional part of each sampled input coordinate (input pixel centres are at whole
    coordinates). Averaged over a grid of view pixels: exact for axis-aligned views, where every
    pixel has the same phase, and the mean over the view otherwise.
    """
    device = geom.angle.device
    u = torch.arange(0, crop, PHASE_STRIDE, device=device, dtype=torch.float64) - (crop - 1) / 2.0
    a = geom.matrix().double()  # (N, 2, 2)
    t = geom.jitter.double()
    ux = (u[None, None, :] + t[:, 0, None, None])  # (N, 1, P) columns
    uy = (u[None, :, None] + t[:, 1, None, None])  # (N, P, 1) rows
    # x − c = A (u + t); the crop centre c = offset + (crop − 1)/2 adds its fraction
    frac_c = ((crop - 1) / 2.0) % 1.0
    variances = []
    for i in range(2):
        x = a[:, i, 0, None, None] * ux + a[:, i, 1, None, None] * uy + frac_c  # (N, P, P)
        f = x - torch.floor(x)
        variances.append((f * (1.0 - f)).mean(dim=(1, 2)))
    return torch.stack(variances, dim=1).float()
