"""Views smaller than their crop: one resampling onto the coarse grid, PSF and noise in its pixels."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from augment_sources import gaussian_image, geometry, moments

from ml.augment import Augment, AugmentConfig, AugmentDraw, AugmentStats, center_view
from ml.augment.blur import own_psf_sigma_view, quadrature_sigma
from ml.augment.geometry import Geometry, draw_geometry, phase_variance
from ml.augment.noise import own_noise_variance_factor
from ml.distributions import Uniform
from ml.render import arcsinh_rgb


def fixed_stats(psf_sigma_pix: float, noise_sigma: float) -> AugmentStats:
    """Every draw the same: target PSF σ and noise σ in survey pixels, no extinction change."""
    return AugmentStats(ebv=Uniform(0.0, 0.0),
                        psf_sigma_pix=[Uniform(psf_sigma_pix, psf_sigma_pix)] * 3,
                        noise_sigma=[Uniform(noise_sigma, noise_sigma)] * 3)


def test_center_view_at_step_two_is_the_binned_crop():
    images = torch.rand(2, 3, 40, 40) * 0.5
    view = center_view(images, crop=24, out_size=12)
    binned = F.avg_pool2d(images[:, :, 8:32, 8:32], 2)
    torch.testing.assert_close(view, arcsinh_rgb(binned), rtol=0, atol=1e-5)


def test_a_step_above_two_is_refused():
    with pytest.raises(ValueError, match="out_size >= 32"):
        AugmentConfig(crop=64, out_size=31)
    assert AugmentConfig(crop=64, out_size=32).step == 2.0
    assert AugmentConfig(crop=96).step == 1.0


def test_jitter_is_drawn_in_survey_pixels():
    geom = draw_geometry(4000, flip=False, rotate=False, scale_range=(1.0, 1.0), jitter_px=7.0,
                         generator=torch.Generator().manual_seed(0), device="cpu", step=2.0)
    # stored in view pixels of 2 survey pixels: U(-3.5, 3.5)
    assert float(geom.jitter.abs().max()) == pytest.approx(3.5, abs=0.01)
    assert geom.step == 2.0 and torch.allclose(geom.zoom(), torch.full((4000,), 0.5))


def test_flux_and_position_survive_the_coarse_grid():
    n, flux, sigma = 5, 50.0, 2.0
    images = gaussian_image(n, 96, sigma_pix=sigma, flux=flux)
    geom = geometry([0.0, 0.4, 1.3, 2.5, 4.0], [1.0, 0.9, 1.1, 1.0, 0.95],
                    [(0.0, 0.0), (1.0, -2.0), (-3.0, 0.5), (2.5, 2.5), (0.0, -1.0)])
    geom.step = 2.0
    aug = Augment(AugmentConfig(crop=48, out_size=24))
    draw = AugmentDraw(geom, ebv=None, psf_sigma_pix=None, noise_sigma=None, foreground=None)
    views = aug.apply(images, torch.zeros(n), torch.full((n, 3), sigma), torch.zeros(n, 3), draw)
    assert views.shape == (n, 3, 24, 24)
    got, centroid, _ = moments(views)
    # surface brightness is kept: a view pixel of step² survey pixels holds step² of their flux
    torch.testing.assert_close(got * 4.0, (flux * geom.scale.double() ** 2)[:, None].expand(n, 3),
                               rtol=5e-3, atol=0)
    # a source at the crop centre lands at u = -t (view pixels)
    torch.testing.assert_close(centroid, -geom.jitter.double()[:, None, :].expand(n, 3, 2),
                               rtol=0, atol=0.02)


def test_point_source_reaches_the_survey_psf_drawn_in_view_pixels():
    n, sigma_own, target = 6, 1.3, 3.0  # survey pixels
    images = gaussian_image(n, 96, sigma_pix=sigma_own, flux=50.0)
    aug = Augment(AugmentConfig(crop=64, out_size=32, sampling="uniform", noise=False,
                                extinction=False, jitter_px=3.0), fixed_stats(target, 0.01))
    draw = aug.draw(n, torch.Generator().manual_seed(3))
    views = aug.apply(images, torch.zeros(n), torch.full((n, 3), sigma_own), torch.zeros(n, 3),
                      draw)
    _, _, var = moments(views)
    # the target PSF of the re-observed sky, 3 survey px, is 1.5 view px of 2 survey px each
    torch.testing.assert_close(var.sqrt(), torch.full((n, 3), target / 2, dtype=torch.float64),
                               rtol=0.02, atol=0)


def test_blank_sky_gets_the_binned_target_noise():
    n, target = 4, torch.tensor([0.004, 0.01, 0.03])
    stats = AugmentStats(ebv=Uniform(0.0, 0.0), psf_sigma_pix=[Uniform(1.5, 1.5)] * 3,
                         noise_sigma=[Uniform(float(t), float(t)) for t in target])
    aug = Augment(AugmentConfig(crop=96, out_size=48, sampling="uniform"), stats)
    views = aug.apply(torch.zeros(n, 3, 152, 152), torch.zeros(n), torch.full((n, 3), 1.5),
                      torch.zeros(n, 3), aug.draw(n, torch.Generator().manual_seed(0)),
                      generator=torch.Generator().manual_seed(1))
    # a view pixel averages 2 x 2 survey pixels of noise σ: σ / 2
    torch.testing.assert_close(views.double().std(dim=(0, 2, 3)), target.double() / 2,
                               rtol=0.03, atol=0)


@pytest.mark.parametrize(("angle", "scale", "jitter", "target_psf"), [
    (0.0, 1.0, (0.0, 0.0), None),  # the binned crop: rho = 1/4
    (0.0, 1.0, (0.25, 0.0), None),  # axis-aligned, one phase per axis
    (0.7, 1.0, (0.0, 0.0), None),  # rotated: phases spread
    (0.3, 1.1, (0.4, -0.2), 1.2),  # rotated, zoomed, blurred (view px)
    (2.0, 0.9, (1.0, 1.0), 0.9),
])
def test_own_noise_factor_on_the_coarse_grid(angle, scale, jitter, target_psf):
    n, crop, size = 12, 56, 28
    gen = torch.Generator().manual_seed(5)
    geom = geometry([angle] * n, [scale] * n, [jitter] * n)
    geom.step = 2.0
    psf_own = torch.full((n, 3), 1.4)
    psf = None if target_psf is None else torch.full((n, 3), target_psf)
    images = torch.randn(n, 3, 96, 96, generator=gen)
    views = Augment(AugmentConfig(crop=crop, out_size=size)).apply(
        images, torch.zeros(n), psf_own, torch.ones(n, 3),
        AugmentDraw(geom, ebv=None, psf_sigma_pix=psf, noise_sigma=None, foreground=None))
    phase = phase_variance(geom, crop, size)
    blur = (torch.zeros(n, 3) if psf is None else
            quadrature_sigma(psf, own_psf_sigma_view(psf_own, geom.zoom(), phase)))
    rho = own_noise_variance_factor(blur, geom.matrix(), phase).mean().item()
    assert views.double().var().item() == pytest.approx(rho, rel=0.05)
    if target_psf is None and angle == 0.0 and jitter == (0.0, 0.0):
        assert rho == pytest.approx(0.25, rel=1e-6)


def test_foreground_star_keeps_its_flux_on_the_coarse_grid():
    n = 16
    aug = Augment(AugmentConfig(crop=64, out_size=32, foreground_paste=1.0,
                                foreground_mag_range=(18, 18)))
    draw = aug.draw(n, torch.Generator().manual_seed(0))
    draw.geometry, draw.ebv, draw.noise_sigma = Geometry.identity(n, step=2.0), None, None
    draw.foreground.xy = draw.foreground.xy.clamp(-7.0, 7.0)  # 4σ inside the 32-px view
    views = aug.apply(torch.zeros(n, 3, 96, 96), torch.zeros(n), torch.full((n, 3), 1.5),
                      torch.zeros(n, 3), draw)
    flux_r = views[:, 1].double().sum(dim=(1, 2)) * 4.0  # step² survey pixels per view pixel
    torch.testing.assert_close(flux_r, torch.full((n,), 10 ** (0.4 * (22.5 - 18.0)),
                                                  dtype=torch.float64), rtol=1e-3, atol=0)
    assert math.isclose(float(draw.foreground.xy.abs().max()), 7.0)
