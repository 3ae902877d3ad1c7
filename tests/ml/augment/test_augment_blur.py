"""PSF blur: per (object, band) Gaussians, in quadrature with the PSF the view already has."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from augment_sources import gaussian_image, geometry, moments
from scipy import ndimage

from ml.augment import Augment, AugmentConfig, AugmentDraw
from ml.augment.blur import blur_crop, gaussian_taps, own_psf_sigma_view
from ml.augment.geometry import draw_geometry, phase_variance


def blur_only(geom, target_psf: torch.Tensor) -> AugmentDraw:
    return AugmentDraw(geom, ebv=None, psf_sigma_pix=target_psf, noise_sigma=None,
                       foreground=None)


def test_point_source_reaches_the_target_width_in_quadrature():
    n, sigma_own = 6, 1.5
    images = gaussian_image(n, 80, sigma_pix=sigma_own, flux=50.0)
    geom = draw_geometry(n, flip=True, rotate=True, scale_range=(0.9, 1.1), jitter_px=4.0,
                         generator=torch.Generator().manual_seed(2), device="cpu")
    target = torch.tensor([2.2, 2.6, 3.4]).expand(n, 3)  # output px, wider than s·σ_own
    views = Augment(AugmentConfig(crop=64)).apply(
        images, torch.zeros(n), torch.full((n, 3), sigma_own), torch.zeros(n, 3),
        blur_only(geom, target))
    flux, _, var = moments(views)
    torch.testing.assert_close(var.sqrt(), target.double(), rtol=6e-3, atol=0)
    # the blur keeps flux: 50 s² (surface brightness kept by the zoom)
    torch.testing.assert_close(flux, (50.0 * geom.scale.double() ** 2)[:, None].expand(n, 3),
                               rtol=4e-3, atol=0)


def test_no_blur_where_the_target_is_sharper():
    n, sigma_own = 4, 2.0
    images = gaussian_image(n, 64, sigma_pix=sigma_own, flux=50.0)
    geom = geometry([0.0, 0.5, 1.0, 2.0], [0.9, 1.0, 1.05, 1.1],
                    [(0.0, 0.0), (0.3, 0.1), (-1.0, 2.0), (0.5, 0.5)])
    target = torch.full((n, 3), 1.0)
    views = Augment(AugmentConfig(crop=48)).apply(
        images, torch.zeros(n), torch.full((n, 3), sigma_own), torch.zeros(n, 3),
        blur_only(geom, target))
    _, _, var = moments(views)
    # the view's own PSF: zoomed by s, plus the interpolation's phase variance
    expected = own_psf_sigma_view(torch.full((n, 3), sigma_own), geom.scale,
                                  phase_variance(geom, 48))
    torch.testing.assert_close(var.sqrt(), expected.double(), rtol=5e-3, atol=0)


def test_blur_crop_matches_scipy_per_object_and_band():
    gen = torch.Generator().manual_seed(0)
    crop, sigma = 20, torch.tensor([[0.0, 0.7, 1.6], [2.4, 1.0, 0.3]])
    radius = math.ceil(4 * float(sigma.max()))
    padded = torch.rand(2, 3, crop + 2 * radius, crop + 2 * radius, generator=gen,
                        dtype=torch.float64).float()
    gain = torch.tensor([[1.0, 0.5, 2.0], [0.9, 1.1, 1.3]])
    got = blur_crop(padded, sigma, crop, gain)
    for i in range(2):
        for b in range(3):
            s = float(sigma[i, b])
            img = padded[i, b].double().numpy()
            want = img if s == 0 else ndimage.gaussian_filter(img, s, truncate=4.0, mode="nearest")
            want = want[radius:-radius, radius:-radius] * float(gain[i, b])
            # scipy's radius is round(4σ), ours the batch's: the tails differ below 1e-4
            np.testing.assert_allclose(got[i, b].numpy(), want, rtol=0, atol=1e-4 * want.max())


def test_blur_crop_without_margin_is_a_plain_crop_with_gain():
    padded = torch.rand(2, 3, 8, 8)
    gain = torch.rand(2, 3)
    torch.testing.assert_close(blur_crop(padded, torch.zeros(2, 3), 8, gain),
                               padded * gain[:, :, None, None])


@pytest.mark.parametrize("sigma", [0.8, 1.0, 2.5, 4.9])
def test_gaussian_taps_have_unit_sum_and_the_asked_variance(sigma):
    taps = gaussian_taps(torch.tensor([sigma], dtype=torch.float64), math.ceil(4 * sigma))[0]
    x = torch.arange(taps.numel(), dtype=torch.float64) - taps.numel() // 2
    assert float(taps.sum()) == pytest.approx(1.0, abs=1e-12)
    assert float((taps * x * x).sum()) == pytest.approx(sigma**2, rel=1e-3)


def test_zero_sigma_taps_are_an_impulse():
    taps = gaussian_taps(torch.tensor([0.0]), 3)[0]
    assert torch.equal(taps, torch.tensor([0.0, 0, 0, 1, 0, 0, 0]))
