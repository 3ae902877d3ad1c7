"""Sky noise: Gaussian noise per band, added in quadrature to the noise the view already has.

Stein et al. (2021) raise each band's per-pixel noise to σ_target drawn from the survey's
distribution by adding white noise of σ_add = sqrt(σ_target² − σ_own²), and add none where the
image is already the noisier.

What σ_own is by then. The catalog's σ_own is the noise of the survey's pixels, but the view is
a linear filtering of them: bilinear resampling averages neighbouring pixels (variance times
(1 − f)² + f² per input axis at phase f: down to ¼ where both phases are ½, 4/9 on average
for a rotated view), the PSF blur averages far more (a Gaussian of σ = 1 px leaves 1/(4π σ²) ≈ 8% of
the variance), and the extinction step multiplies the image, noise included, by its gain k.
Adding noise against the catalog's σ_own would leave views much smoother than the survey. So
σ_own is taken as the view shows it, σ_own,view² = k² ρ σ_own², where ρ is the sum of squared
weights with which the resampling and blur combine the input pixels into one view pixel
(:func:`own_noise_variance_factor`, which matches the measured variance of resampled and
blurred white noise to 1–2%); the view's pixels then have the target variance. The own part of
the noise stays correlated over neighbouring pixels, as it is in a PSF-degraded image.
"""

from __future__ import annotations

import math

import torch

from ml.augment.blur import gaussian_taps, kernel_radius


def _triangle_overlap(d: torch.Tensor) -> torch.Tensor:
    """∫ tri(z) tri(z + d) dz of the linear-interpolation kernel tri(z) = max(0, 1 − |z|)."""
    d = d.abs()
    near = 2.0 / 3.0 - d * d + 0.5 * d**3
    far = (2.0 - d).clamp_min(0.0) ** 3 / 6.0
    return torch.where(d <= 1.0, near, far)


def own_noise_variance_factor(blur_sigma_pix: torch.Tensor, matrix: torch.Tensor,
                              phase_var: torch.Tensor) -> torch.Tensor:
    """ρ: variance of white unit noise after the resampling and the blur, per (object, band).

    A view pixel at x takes input pixel i with weight h(x − i), where h(z) = Σ_q G_q T(z + A q)
    sums the blur taps G_q (output pixels q) of bilinear kernels T placed by the view's affine
    map A (:meth:`ml.augment.geometry.Geometry.matrix`). Averaged over the sub-pixel phase of x,
    Σ_i h(x − i)² is ∫ h² = Σ_Δ c_Δ C(A Δ), with c_Δ the taps' autocorrelation at lag Δ and
    C(d) = C₁(d_x) C₁(d_y) the overlap of two bilinear kernels d apart: exact for any rotation,
    flip and scale whose phases spread over the view. An unscaled, axis-aligned view has one
    phase f per input axis instead; there Σ w² = Π_axes (a − 2 f(1 − f)(a − b)) with a = c_0,
    b = c_1, so the phase-averaged value (f(1 − f) averaging 1/6) is corrected by the difference
    at the measured mean f(1 − f), a correction that vanishes when the phases spread.

    Args:
        blur_sigma_pix: (N, B) blur σ in output pixels; 0 for no blur.
        matrix: (N, 2, 2) A, input pixels per output pixel.
        phase_var: (N, 2) mean f(1 − f) per input axis (:func:`~ml.augment.geometry.phase_variance`).

    Returns:
        (N, B) factor ρ in (0, 1].
    """
    dtype = blur_sigma_pix.dtype
    sigma = blur_sigma_pix.double()
    radius = max(kernel_radius(sigma), 1)
    taps = gaussian_taps(sigma, radius)  # (N, B, K)
    a = matrix.double()
    # C vanishes where |A Δ| > 2√2, and |A Δ| >= |Δ| σ_min(A): σ_min of a 2×2 in closed form
    frob2 = (a * a).sum(dim=(1, 2))
    det = a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]
    sigma_min = (0.5 * (frob2 - (frob2**2 - 4.0 * det**2).clamp_min(0.0).sqrt())).sqrt()
    scale_max = float((1.0 / sigma_min).max())
    lags = min(math.ceil(2.0 * math.sqrt(2.0) * scale_max), 2 * radius)
    autocorr = torch.stack([(taps[..., d:] * taps[..., :taps.shape[-1] - d]).sum(-1)
                            for d in range(lags + 1)], dim=-1)  # (N, B, lags + 1), c_|Δ|
    steps = torch.arange(-lags, lags + 1, device=sigma.device, dtype=torch.float64)
    dx, dy = torch.meshgrid(steps, steps, indexing="xy")
    delta = torch.stack([dx.reshape(-1), dy.reshape(-1)], dim=-1)  # (P, 2) output px
    moved = torch.einsum("nij,pj->npi", a, delta)  # (N, P, 2) input px
    overlap = _triangle_overlap(moved[..., 0]) * _triangle_overlap(moved[..., 1])  # (N, P)
    index = delta.abs().long()
    c_pairs = autocorr[..., index[:, 0]] * autocorr[..., index[:, 1]]  # (N, B, P)
    rho_mean = (c_pairs * overlap[:, None, :]).sum(-1)

    c0, c1 = autocorr[..., 0], autocorr[..., 1]  # (N, B)
    m = phase_var.double()[:, None, :]  # (N, 1, 2)
    measured = (c0[..., None] - 2.0 * m * (c0 - c1)[..., None]).prod(-1)
    uniform = (c0 - (c0 - c1) / 3.0) ** 2
    rho = rho_mean + measured - uniform
    return rho.clamp(1e-6, 1.0).to(dtype)


def add_noise(views: torch.Tensor, sigma_add: torch.Tensor,
              generator: torch.Generator | None) -> torch.Tensor:
    """views + σ_add · N(0, 1) per pixel, with σ_add (N, B) in the views' units."""
    noise = torch.randn(views.shape, generator=generator, device=views.device, dtype=views.dtype)
    noise *= sigma_add[:, :, None, None].to(views.dtype)
    return noise.add_(views)

