"""Flips, rotation, size scaling, jitter, the central crop and the output grid as one resampling.

The paper applies flip + rotation U(0, 2π), then a size scaling U(0.9, 1.1) (bilinear), then
(after the PSF blur) a jitter U(−7, 7) px and the central 96×96 crop. All four are affine maps of
pixel coordinates, so they compose into one map from a view pixel to a cutout position, and the
cutout is interpolated once (``affine_grid`` + ``grid_sample``, bilinear) instead of four times:
each interpolation smooths the image and its noise, so one is both faster and more faithful.
A smaller network input (``out_size`` < ``crop``, e.g. the CPU demo's 64-px crop seen as 32 px)
is one more affine factor: the view's pixels are ``step = crop / out_size`` cutout pixels apart,
and the same single interpolation samples the cutout straight onto that coarser grid, so the
blur, noise and stretch that follow act on out_size² pixels instead of crop² (4× fewer at
step 2). Bilinear sampling reads a 2×2 neighbourhood, so ``step`` may be at most 2 (a larger step
would skip pixels: aliasing); at step 2 the central view is exactly the 2×2 binning of the crop.

Conventions. ``u`` is a view pixel's offset from the view centre (output pixels, x then y),
``c`` the centre of the cutout's central crop (input pixels). A view pixel samples the cutout at

    x_in = c + A (u + t),   A = R(angle) · F · step / s,

with ``F = diag(±1, ±1)`` the flips, ``s`` the size scaling (s > 1 enlarges the object),
``step`` the output grid's spacing in input pixels (1 without a resize) and ``t`` the jitter in
output pixels, applied after the scaling as in the paper: a source at the crop centre lands
exactly at ``u = −t`` whatever the rotation and scale. With every draw at its identity and
step 1 the view is the plain central crop, pixel for pixel (:func:`center_offset` is shared with
:func:`ml.augment.pipeline.center_view`).

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
        step: spacing of the output grid in input pixels before the scaling (crop / out_size;
            1.0 when the view keeps the cutout's pixels), the same for the whole batch.
    """

    flip: torch.Tensor
    angle: torch.Tensor
    scale: torch.Tensor
    jitter: torch.Tensor
    step: float = 1.0

    @classmethod
    def identity(cls, n: int, device: torch.device | str = "cpu", step: float = 1.0) -> Geometry:
        return cls(flip=torch.ones(n, 2, device=device), angle=torch.zeros(n, device=device),
                   scale=torch.ones(n, device=device), jitter=torch.zeros(n, 2, device=device),
                   step=step)

    def matrix(self) -> torch.Tensor:
        """A = R · F · step / s, (N, 2, 2): input pixels per output pixel."""
        cos, sin = torch.cos(self.angle), torch.sin(self.angle)
        rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
        return rot * self.flip[:, None, :] * (self.step / self.scale[:, None, None])

    def zoom(self) -> torch.Tensor:
        """(N,) output pixels per input pixel, s / step: how much wider a PSF looks in the view."""
        return self.scale / self.step


def draw_geometry(n: int, *, flip: bool, rotate: bool, scale_range: tuple[float, float],
                  jitter_px: float, generator: torch.Generator | None,
                  device: torch.device | str, step: float = 1.0) -> Geometry:
    """Draw flips (p = 0.5 per axis), angle U(0, 2π), s U(scale_range), jitter U(±jitter_px).

    ``jitter_px`` is in input (cutout) pixels, as the paper's 7 px; it is stored in output
    pixels (divided by ``step``), the unit :func:`resample` applies it in.
    """
    geom = Geometry.identity(n, device, step)
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
        geom.jitter = ((2.0 * torch.rand(n, 2, generator=generator, device=device) - 1.0)
                       * (jitter_px / step))
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


def resample(images: torch.Tensor, geom: Geometry, crop: int, pad: int = 0,
             size: int | None = None, copies: int = 1) -> torch.Tensor:
    """The view of every object, with ``pad`` extra pixels of real (resampled) sky on each side.

    Args:
        images: (N, C, H, W) cutouts.
        geom: the views, ``copies`` x N of them, copy-major (view ``k N + i`` is copy k of
            object i); ``geom.step`` input pixels between output pixels.
        crop: side of the central crop the view stands for, in input pixels (its centre is the
            view's centre).
        pad: margin on each side in output pixels, for a later blur to read true sky instead of
            a padding.
        size: side of the view in output pixels (default ``crop``; ``crop / geom.step``).
        copies: views per object. Several views of one cutout are sampled in one pass over it
            (their grids stacked), instead of from a repeated copy of the batch: MoCo's two
            views would otherwise copy every 152-px cutout, which costs more than the
            augmentation itself on a CPU.

    Returns:
        (copies x N, C, size + 2 pad, size + 2 pad), copy-major: one bilinear interpolation,
        reflection at the border.
    """
    n, channels, height, width = images.shape
    if geom.angle.shape[0] != copies * n:
        raise ValueError(f"{geom.angle.shape[0]} views for {n} images x {copies} copies")
    n *= copies
    out = (crop if size is None else size) + 2 * pad
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
    grid = F.affine_grid(theta, [n, channels, out, out], align_corners=False)  # (kN, S, S, 2)
    if copies > 1:  # (k N, S, S, 2) -> (N, k S, S, 2): each object's k grids one above another
        grid = grid.unflatten(0, (copies, -1)).transpose(0, 1).flatten(1, 2)
    views = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection",
                          align_corners=False)  # (N, C, k S, S)
    if copies > 1:
        views = views.unflatten(2, (copies, out)).permute(2, 0, 1, 3, 4).flatten(0, 1)
    return views


def phase_variance(geom: Geometry, crop: int, size: int | None = None) -> torch.Tensor:
    """Mean f(1 − f) of the bilinear phases over the view, per input axis: (N, 2) px².

    f is the fractional part of each sampled input coordinate (input pixel centres are at whole
    coordinates). Averaged over a grid of view pixels: exact for axis-aligned views at step 1,
    where every pixel has the same phase, and the mean over the view otherwise.

    Args:
        geom: the views.
        crop: side of the central crop in input pixels (fixes the centre's sub-pixel phase).
        size: side of the view in output pixels (default ``crop``).
    """
    device = geom.angle.device
    size = crop if size is None else size
    u = torch.arange(0, size, PHASE_STRIDE, device=device, dtype=torch.float64) - (size - 1) / 2.0
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
