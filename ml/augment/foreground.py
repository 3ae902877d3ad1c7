"""Optional augmentation: a bright foreground star pasted into the view (off by default).

Stein et al. (2021) name it as future work: teaching the representation to ignore an unrelated
bright source overlapping the object. A star is a point source, so it is pasted as the PSF
itself: a Gaussian with the PSF the view has at that step, at a random position in the view,
with an r magnitude drawn uniformly from a range and g − r, r − z colours on the stellar locus
of :func:`ml.simulate.population.star_colour` (the simulator's model of the sky's stars). The
Gaussian core only: no halo, spikes or saturation, which the simulator adds to its own stars.

The paper's order would paste before the PSF blur and the noise. Pasting a point source of
width σ_own and then blurring it by σ_k is a Gaussian of sqrt(σ_own² + σ_k²), so the star is
pasted after the blur with that width directly (the same image, without blurring it); it is
still pasted before the noise, and it is not re-reddened with the object, being a foreground
star.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ml.photometry import mag_to_flux


@dataclass
class Foreground:
    """Stars to paste, one per object at most.

    Attributes:
        flux: (N, 3) g, r, z flux in nanomaggies (0: no star for that object).
        xy: (N, 2) position as an offset (x, y) from the view centre, output pixels.
    """

    flux: torch.Tensor
    xy: torch.Tensor


def draw_foreground(n: int, *, probability: float, mag_range: tuple[float, float], size: int,
                    generator: torch.Generator | None,
                    device: torch.device | str) -> Foreground:
    """Draw which objects get a star (with the given probability), where, and how bright.

    ``size`` is the side of the view in output pixels: the star lands anywhere in it.
    """
    chosen = torch.rand(n, generator=generator, device=device) < probability
    half = (size - 1) / 2.0
    xy = (2.0 * torch.rand(n, 2, generator=generator, device=device) - 1.0) * half
    # the simulator's package pulls in GalSim and lenstronomy: import it only when stars are on
    from ml.simulate.population import star_colour

    # magnitudes and colours come from numpy (the simulator's locus), seeded from the generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=device))
    rng = np.random.default_rng(seed)
    mag_r = rng.uniform(*mag_range, size=n)
    flux = star_colour(rng, n).band_flux_from_r(mag_to_flux(mag_r))  # (N, 3) g, r, z
    flux = torch.from_numpy(flux).to(device=device, dtype=torch.float32)
    return Foreground(flux=flux * chosen[:, None], xy=xy)


def paste_foreground(views: torch.Tensor, stars: Foreground,
                     psf_sigma_pix: torch.Tensor, pixel_area: float = 1.0) -> torch.Tensor:
    """Add each object's star, a Gaussian of the given PSF σ per band, to its view.

    Args:
        views: (N, 3, C, C) nanomaggies per survey pixel.
        stars: the draw; objects with zero flux are left unchanged.
        psf_sigma_pix: (N, 3) PSF σ of the view in output pixels.
        pixel_area: survey pixels per output pixel (step²): the view keeps surface brightness,
            so a star's flux per output pixel is spread over that many survey pixels.

    Returns:
        (N, 3, C, C) views with the stars' flux added (flux that falls outside the view is lost).
    """
    chosen = torch.nonzero(stars.flux[:, 1] > 0).squeeze(1)
    if chosen.numel() == 0:
        return views
    size = views.shape[-1]
    u = torch.arange(size, device=views.device, dtype=views.dtype) - (size - 1) / 2.0
    sigma = psf_sigma_pix[chosen].clamp_min(1e-3)[..., None]  # (K, 3, 1)

    def profile(axis: int) -> torch.Tensor:  # (K, 3, C), unit integral along the axis
        z = (u - stars.xy[chosen, axis][:, None, None]) / sigma
        return torch.exp(-0.5 * z * z) / (math.sqrt(2.0 * math.pi) * sigma)

    flux = stars.flux[chosen][..., None, None] / pixel_area  # (K, 3, 1, 1)
    star = profile(1)[..., :, None] * profile(0)[..., None, :] * flux
    out = views.clone()
    out[chosen] += star
    return out

