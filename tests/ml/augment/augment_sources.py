"""Tiny test inputs for the augmentation tests: Gaussian sources, moments, hand-made views."""

from __future__ import annotations

import math

import torch

from ml.augment.geometry import Geometry


def gaussian_image(n: int, size: int, sigma_pix: float, flux: float = 100.0,
                   center: tuple[float, float] | None = None) -> torch.Tensor:
    """(n, 3, size, size) sampled Gaussian sources of unit-integral profile times ``flux``.

    ``center`` is (x, y) in pixel coordinates; the default is the central crop's centre
    of any crop with the same parity as ``size``, i.e. (size − 1) / 2.
    """
    cx, cy = center if center is not None else ((size - 1) / 2, (size - 1) / 2)
    u = torch.arange(size, dtype=torch.float64)
    gx = torch.exp(-0.5 * ((u - cx) / sigma_pix) ** 2)
    gy = torch.exp(-0.5 * ((u - cy) / sigma_pix) ** 2)
    img = gy[:, None] * gx[None, :] * flux / (2 * math.pi * sigma_pix**2)
    return img.float().expand(n, 3, size, size).clone()


def moments(views: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flux, centroid offset from the view centre (x, y) and mean second moment per image.

    Args:
        views: (N, B, C, C).

    Returns:
        flux (N, B), centroid (N, B, 2) in pixels from the centre, variance (N, B) in px²
        (the mean of the x and y second central moments).
    """
    size = views.shape[-1]
    u = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    v = views.double()
    flux = v.sum(dim=(-1, -2))
    mx = (v.sum(-2) * u).sum(-1) / flux
    my = (v.sum(-1) * u).sum(-1) / flux
    vx = (v.sum(-2) * (u - mx[..., None]) ** 2).sum(-1) / flux
    vy = (v.sum(-1) * (u - my[..., None]) ** 2).sum(-1) / flux
    return flux, torch.stack([mx, my], -1), 0.5 * (vx + vy)


def geometry(angle: list[float], scale: list[float], jitter: list[tuple[float, float]],
             flip: list[tuple[float, float]] | None = None) -> Geometry:
    n = len(angle)
    return Geometry(
        flip=torch.tensor(flip if flip is not None else [(1.0, 1.0)] * n),
        angle=torch.tensor(angle),
        scale=torch.tensor(scale),
        jitter=torch.tensor(jitter),
    )
