"""PSF degradation: a Gaussian blur per object and band, added in quadrature to the own PSF.

Stein et al. (2021) degrade each band to a PSF of σ_target drawn from the survey's distribution:
the image, whose PSF is already σ_own, is convolved with a Gaussian of
σ_k = sqrt(σ_target² − σ_own²), and left alone where the target is the sharper one (a blur
cannot sharpen).

Order. The paper blurs after the rotation and scaling and before the jitter and crop; here the
blur acts on the resampled view, after the jitter and crop too. An isotropic Gaussian commutes
with rotations, flips and translations, so that changes nothing. Scaling does not commute with
a fixed kernel: a zoom by s makes the own PSF s·σ_own output pixels wide, so the quadrature is
done in output pixels with the own PSF as the view shows it: s·σ_own / step, widened in
quadrature by the bilinear interpolation's own smoothing (:func:`own_psf_sigma_view`). The
target is a PSF of the view drawn in survey pixels (0.262″), converted to the view's pixels
(``step`` survey pixels each when the view is smaller than its crop) by the caller.

Speed. Every (object, band) has its own kernel. The separable blur of a (C + 2R)² view with
margin R down to its central C² is two batched matrix products with banded (C + 2R) × C
matrices; BLAS runs them several times faster than a grouped convolution or an FFT on CPU, the
margin is real resampled sky (no zero or wrap-around edges), and the crop rides along for free.
Taps too small for float32 are zeroed: denormal operands slow the products five-fold.
"""

from __future__ import annotations

import math

import torch

TRUNCATE_SIGMAS = 4.0  # kernel radius in σ: the tail beyond holds 6e-5 of the flux


def kernel_radius(sigma_pix: torch.Tensor) -> int:
    """Radius in pixels of the widest kernel of a batch (0 when nothing is blurred)."""
    widest = float(sigma_pix.max()) if sigma_pix.numel() else 0.0
    return math.ceil(TRUNCATE_SIGMAS * widest) if widest > 0 else 0


def gaussian_taps(sigma_pix: torch.Tensor, radius: int) -> torch.Tensor:
    """Normalised sampled Gaussians, (..., 2 radius + 1); σ = 0 gives a unit impulse.

    The taps' variance is σ² to 0.1% for σ ≥ 0.7 px (the 4σ truncation costs that much) and
    falls short for narrower kernels (by 0.035 px² at σ = 0.5, 0.08 px² at σ = 0.3): a
    negligible part of the variance of a survey PSF, σ ≥ 1.2 px.
    """
    offsets = torch.arange(-radius, radius + 1, device=sigma_pix.device, dtype=sigma_pix.dtype)
    z = offsets / sigma_pix.clamp_min(1e-6)[..., None]
    taps = torch.exp(-0.5 * z * z)
    # exp underflows through float32's denormals (below 1.2e-38) for narrow kernels, and
    # denormal operands slow the CPU's matrix products five-fold: such taps are zeros
    taps = torch.where(taps < 1e-30, torch.zeros_like(taps), taps)
    return taps / taps.sum(dim=-1, keepdim=True)


def own_psf_sigma_view(psf_sigma_pix: torch.Tensor, zoom: torch.Tensor,
                       phase_var: torch.Tensor) -> torch.Tensor:
    """The object's PSF σ as the resampled view shows it, in output pixels: (N, 3).

    The bilinear interpolation adds its mean phase variance f(1 − f) (input px², averaged over
    both axes) in quadrature, and the view's grid converts input to output pixels: times the
    size scaling s, divided by the grid's step (:meth:`ml.augment.geometry.Geometry.zoom`).

    Args:
        psf_sigma_pix: (N, 3) own PSF σ, input pixels.
        zoom: (N,) output pixels per input pixel, s / step.
        phase_var: (N, 2) from :func:`ml.augment.geometry.phase_variance`.
    """
    var_in = psf_sigma_pix**2 + phase_var.mean(dim=1, keepdim=True)
    return zoom[:, None] * var_in.sqrt()


def quadrature_sigma(target: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
    """sqrt(target² − own²), 0 where the target is not the larger."""
    return (target**2 - own**2).clamp_min(0.0).sqrt()


def blur_crop(padded: torch.Tensor, sigma_pix: torch.Tensor, crop: int,
              gain: torch.Tensor | None = None) -> torch.Tensor:
    """Blur each (object, band) with its own Gaussian and keep the central crop.

    Args:
        padded: (N, B, crop + 2R, crop + 2R) view with a margin R on each side.
        sigma_pix: (N, B) kernel σ in output pixels, at most R / TRUNCATE_SIGMAS.
        crop: side of the result.
        gain: optional (N, B) factor applied on the way (the extinction step).

    Returns:
        (N, B, crop, crop).
    """
    n, bands, size, _ = padded.shape
    radius = (size - crop) // 2
    if radius == 0:
        return padded if gain is None else padded * gain[:, :, None, None]
    m = n * bands
    taps = gaussian_taps(sigma_pix.reshape(-1).to(padded.dtype), radius)  # (M, 2R + 1)
    # banded (crop, size) matrix, row o = taps at columns o .. o + 2R: rows of length size + 1
    # holding the taps first, read back with a row length of size, shift by one per row
    rows = torch.zeros(m, crop, size + 1, dtype=padded.dtype, device=padded.device)
    rows[:, :, : 2 * radius + 1] = taps[:, None, :]
    band_t = rows.reshape(m, -1)[:, : crop * size].reshape(m, crop, size)  # (M, crop, size)
    x = padded.reshape(m, size, size)  # (M, rows y, columns x)
    out = band_t @ (x @ band_t.transpose(1, 2))  # (M, crop, crop)
    if gain is not None:
        out *= gain.reshape(m, 1, 1).to(out.dtype)
    return out.reshape(n, bands, crop, crop)
