"""Noise: the view's pixels reach the target σ, in quadrature with the noise they already have."""

from __future__ import annotations

import math

import pytest
import torch
from augment_sources import geometry

from ml.augment import Augment, AugmentConfig, AugmentDraw
from ml.augment.blur import own_psf_sigma_view, quadrature_sigma
from ml.augment.geometry import draw_geometry, phase_variance
from ml.augment.noise import own_noise_variance_factor


def noise_draw(geom, psf=None, noise=None) -> AugmentDraw:
    return AugmentDraw(geom, ebv=None, psf_sigma_pix=psf, noise_sigma=noise, foreground=None)


def test_blank_image_gets_the_target_variance_per_band():
    n = 4
    gen = torch.Generator().manual_seed(0)
    geom = draw_geometry(n, flip=True, rotate=True, scale_range=(0.9, 1.1), jitter_px=7.0,
                         generator=gen, device="cpu")
    target = torch.tensor([0.002, 0.005, 0.02]).expand(n, 3)
    views = Augment(AugmentConfig(crop=48)).apply(
        torch.zeros(n, 3, 64, 64), torch.zeros(n), torch.full((n, 3), 1.5), torch.zeros(n, 3),
        noise_draw(geom, noise=target), generator=gen)
    measured = views.double().std(dim=(0, 2, 3))  # 9216 pixels per band
    torch.testing.assert_close(measured, target[0].double(), rtol=0.03, atol=0)


def own_noise_case(angle, scale, jitter, target_psf, seed=0, n=12, size=80, crop=56):
    """White unit noise through the resampling and blur: (measured variance, model ρ)."""
    gen = torch.Generator().manual_seed(seed)
    geom = geometry([angle] * n, [scale] * n, [jitter] * n)
    psf_own = torch.full((n, 3), 1.4)
    psf = None if target_psf is None else torch.full((n, 3), target_psf)
    images = torch.randn(n, 3, size, size, generator=gen)
    views = Augment(AugmentConfig(crop=crop)).apply(
        images, torch.zeros(n), psf_own, torch.ones(n, 3), noise_draw(geom, psf=psf))
    phase = phase_variance(geom, crop)
    blur = (torch.zeros(n, 3) if psf is None else
            quadrature_sigma(psf, own_psf_sigma_view(psf_own, geom.scale, phase)))
    rho = own_noise_variance_factor(blur, geom.matrix(), phase)
    return views.double().var().item(), rho.mean().item()


@pytest.mark.parametrize(("angle", "scale", "jitter", "target_psf", "tolerance"), [
    (0.0, 1.0, (0.0, 0.0), None, 0.015),  # pixel centres: untouched noise, ρ = 1
    (0.0, 1.0, (0.5, 0.25), None, 0.015),  # (1 - 2·0.25)(1 - 2·0.1875) = 0.3125
    (0.7, 1.0, (0.0, 0.0), None, 0.015),  # rotated: 4/9 on average
    (0.0, 1.1, (0.0, 0.0), None, 0.025),  # zoomed: phases spread
    # blurred noise is correlated over ~4πσ² pixels: fewer independent samples, looser bounds
    (math.pi / 2, 1.0, (0.3, 0.8), 2.3, 0.05),  # axis-aligned with a blur
    (0.7, 0.9, (2.0, -3.0), 1.9, 0.05),  # rotated, zoomed out, light blur
    (0.3, 1.1, (0.0, 0.0), 1.7, 0.05),  # rotated, zoomed in, lighter blur
    (2.1, 1.1, (0.4, 0.4), 2.8, 0.05),  # rotated, zoomed in, strong blur
    (0.0, 1.05, (0.3, 0.0), 1.6, 0.05),  # axis-aligned, zoomed in, light blur
])
def test_own_noise_variance_factor_matches_the_measured_noise(angle, scale, jitter, target_psf,
                                                              tolerance):
    measured, rho = own_noise_case(angle, scale, jitter, target_psf)
    assert measured == pytest.approx(rho, rel=tolerance)
    if target_psf is None and jitter == (0.5, 0.25):
        assert rho == pytest.approx(0.3125, rel=1e-6)


def test_noise_is_added_in_quadrature_with_the_own_noise_of_the_view():
    n, size, crop = 8, 80, 56
    gen = torch.Generator().manual_seed(4)
    sigma_own = 0.01
    geom = draw_geometry(n, flip=True, rotate=True, scale_range=(0.9, 1.1), jitter_px=7.0,
                         generator=gen, device="cpu")
    images = sigma_own * torch.randn(n, 3, size, size, generator=gen)
    psf_own = torch.full((n, 3), 1.4)
    target_psf = torch.full((n, 3), 1.8)  # a light blur leaves ~1/4 of the own variance
    aug = Augment(AugmentConfig(crop=crop))

    def views(noise_target):
        return aug.apply(images, torch.zeros(n), psf_own, torch.full((n, 3), sigma_own),
                         noise_draw(geom, psf=target_psf, noise=noise_target),
                         generator=torch.Generator().manual_seed(9))

    own = views(None).double().std().item()
    assert 0.2 * sigma_own < own < 0.7 * sigma_own  # resampling and blur smoothed the noise
    target = 0.008
    got = views(torch.full((n, 3), target)).double().std().item()
    assert got == pytest.approx(target, rel=0.04)
    # against the catalog's σ_own instead, the view would have been left at `own`
    assert got > 1.5 * own
    # a target below the view's own noise adds nothing
    torch.testing.assert_close(views(torch.full((n, 3), 0.1 * own)), views(None))


def test_the_extinction_gain_scales_the_own_noise():
    # de-reddening E(B-V) = 0.3 amplifies the image, its noise included, by 10^(0.4 R 0.3)
    n, sigma_own = 4, 0.01
    gen = torch.Generator().manual_seed(6)
    images = sigma_own * torch.randn(n, 3, 40, 40, generator=gen)
    gain = 10 ** (0.4 * torch.tensor([3.214, 2.165, 1.211]) * 0.3)
    target = 1.5 * gain * sigma_own
    draw = AugmentDraw(geometry([0.0] * n, [1.0] * n, [(0.0, 0.0)] * n), ebv=torch.zeros(n),
                       psf_sigma_pix=None, noise_sigma=target.expand(n, 3), foreground=None)
    views = Augment(AugmentConfig(crop=40)).apply(
        images, torch.full((n,), 0.3), torch.full((n, 3), 1.5), torch.full((n, 3), sigma_own),
        draw, generator=gen)
    torch.testing.assert_close(views.double().std(dim=(0, 2, 3)), target.double(), rtol=0.03,
                               atol=0)
