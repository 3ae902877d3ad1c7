"""The arcsinh (Lupton-style) g, r, z -> RGB stretch: network input and display in one function.

Stein et al. (2021) and the Legacy Surveys viewer map z -> R, r -> G, g -> B with per-band
scales (2.2, 3.4, 6.0), softening m = 0.03 and Q = 20: each band is scaled and offset, the mean
intensity I is compressed by arcsinh(Q I) / sqrt(Q), every band is multiplied by that same
factor (so colours are kept while the dynamic range is compressed), and the result is clipped to
[0, 1]. :func:`arcsinh_rgb` is the one implementation; the web app's cutouts, the survey-info
contact sheets and the network input all go through it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch

# output plane (0 = R, 1 = G, 2 = B) of each input band g, r, z
RGB_PLANE_OF_BAND = (2, 1, 0)


@dataclass(frozen=True)
class Stretch:
    scales: tuple[float, float, float] = (6.0, 3.4, 2.2)  # g, r, z
    m: float = 0.03
    Q: float = 20.0
    brightness: float = 1.0  # multiplies every band's scale: the UI's brightness control


DEFAULT_STRETCH = Stretch()


def arcsinh_rgb(images: torch.Tensor, stretch: Stretch = DEFAULT_STRETCH) -> torch.Tensor:
    """Stretch g, r, z nanomaggy images to RGB in [0, 1].

    Args:
        images: (N, 3, H, W) or (3, H, W) float tensor, bands g, r, z, on any device.
        stretch: scales, softening and Q.

    Returns:
        a tensor of the same shape with channels R, G, B.
    """
    # output R, G, B = input z, r, g (the permutation is its own inverse)
    return _stretch_grz(images, stretch)[..., list(RGB_PLANE_OF_BAND), :, :]


def _stretch_grz(images: torch.Tensor, stretch: Stretch) -> torch.Tensor:
    """:func:`arcsinh_rgb` with the bands still in g, r, z order (a new tensor).

    Every intermediate is a new tensor updated in place: the same operations in the same
    order as written out (so the same values to the bit), without ten (N, 3, H, W) allocations.
    """
    squeeze = images.dim() == 3
    x = images.unsqueeze(0) if squeeze else images
    scale = torch.tensor(stretch.scales, dtype=x.dtype, device=x.device) * stretch.brightness
    scaled = (x * scale.view(1, 3, 1, 1)).add_(stretch.m)  # (N, 3, H, W)
    intensity = scaled.clamp_min(0.0).mean(dim=1, keepdim=True)  # (N, 1, H, W)
    q = stretch.Q
    f_intensity = _asinh_nonneg(q * intensity).div_(q**0.5)
    # where every band is at or below zero the ratio is 0/0; such pixels render black
    ratio = f_intensity.div_(torch.where(intensity > 0, intensity, 1.0))
    rgb = scaled.mul_(ratio).clamp_(0.0, 1.0)
    return rgb.squeeze(0) if squeeze else rgb


def _asinh_nonneg(x: torch.Tensor) -> torch.Tensor:
    """asinh for x >= 0 as log1p(x + x^2 / (1 + sqrt(x^2 + 1))): exact to float32 rounding, and
    about 3x faster than torch.asinh on CPU, where it was the stretch's largest cost."""
    x2 = x * x
    return x2.div_((x2 + 1.0).sqrt_().add_(1.0)).add_(x).log1p_()


def rgb_uint8(images: np.ndarray, stretch: Stretch = DEFAULT_STRETCH) -> np.ndarray:
    """(3, H, W) or (N, 3, H, W) nanomaggies -> (H, W, 3) or (N, H, W, 3) uint8 for display."""
    t = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    # numpy's cast truncates as torch's does (values in [0.5, 255.5]), 10x faster on CPU
    grz = _stretch_grz(t, stretch).mul_(255.0).add_(0.5).cpu().numpy().astype(np.uint8)
    # bands to the last axis in R, G, B order (z, r, g): one copy, of the bytes
    return np.moveaxis(grz, -3, -1)[..., list(RGB_PLANE_OF_BAND)]


def png_bytes(image: np.ndarray, size: int | None = None,
              stretch: Stretch = DEFAULT_STRETCH) -> bytes:
    """Encode one (3, H, W) cutout as a PNG, resized to size x size when given.

    libpng (through imagecodecs) writes every row unfiltered, with run-length deflate. Sky noise
    leaves PNG's row filters and deflate's string matching nothing to find: on the 1M-object
    benchmark survey's cutouts this is 15 % smaller than Pillow's adaptively filtered PNG and
    3.5x faster to encode (0.55 ms against 1.9 ms for 152 x 152, the largest cost of a cutout
    served for the first time). Pillow cannot be told to skip its per-row filter search.
    """
    import imagecodecs
    from PIL import Image

    rgb = rgb_uint8(image, stretch)
    if size is not None and size != rgb.shape[1]:
        pil = Image.fromarray(rgb).resize((size, size), Image.Resampling.LANCZOS
                                          if size < rgb.shape[1] else Image.Resampling.NEAREST)
        rgb = np.asarray(pil)
    return imagecodecs.png_encode(np.ascontiguousarray(rgb), level=1, strategy=zlib.Z_RLE,
                                  filter=imagecodecs.PNG.FILTER.NONE)
