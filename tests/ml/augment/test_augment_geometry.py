"""Flips, rotation, scaling, jitter and crop: one resampling that keeps flux and fills nothing."""

from __future__ import annotations

import math

import pytest
import torch
from augment_sources import gaussian_image, geometry, moments

from ml.augment import Augment, AugmentConfig, AugmentDraw
from ml.augment.geometry import Geometry, draw_geometry, phase_variance, resample

EXTREME = dict(angle=[math.pi / 4], scale=[0.9], jitter=[(7.0, 7.0)])


def geometric_only(geom: Geometry) -> AugmentDraw:
    return AugmentDraw(geom, ebv=None, psf_sigma_pix=None, noise_sigma=None, foreground=None)


def no_conditions(n: int):
    return torch.zeros(n), torch.zeros(n, 3), torch.zeros(n, 3)


@pytest.mark.parametrize(("size", "crop"), [(152, 96), (40, 23), (41, 24)])
def test_identity_view_is_the_central_crop_pixel_for_pixel(size, crop):
    images = torch.rand(2, 3, size, size)
    aug = Augment(AugmentConfig(crop=crop))
    views = aug.apply(images, *no_conditions(2), geometric_only(Geometry.identity(2)))
    y0 = (size - crop) // 2
    assert views.shape == (2, 3, crop, crop)
    # float32 grid coordinates: positions exact to ~1e-5 px
    torch.testing.assert_close(views, images[:, :, y0:y0 + crop, y0:y0 + crop], rtol=0, atol=3e-5)


def test_constant_sky_stays_constant_no_fill_value_reaches_the_view():
    # the extreme view reads beyond the cutout's border, and the blur's margin further still
    n = 4
    images = torch.full((n, 3, 152, 152), 0.37)
    geom = draw_geometry(n - 1, flip=True, rotate=True, scale_range=(0.9, 1.1), jitter_px=7.0,
                         generator=torch.Generator().manual_seed(1), device="cpu")
    extreme = geometry(**EXTREME)
    geom = Geometry(*(torch.cat([getattr(extreme, k), getattr(geom, k)])
                      for k in ("flip", "angle", "scale", "jitter")))
    draw = AugmentDraw(geom, ebv=None, psf_sigma_pix=torch.full((n, 3), 4.5), noise_sigma=None,
                       foreground=None)
    views = Augment().apply(images, torch.zeros(n), torch.full((n, 3), 1.3), torch.zeros(n, 3),
                            draw)
    assert views.shape == (n, 3, 96, 96)
    torch.testing.assert_close(views, torch.full_like(views, 0.37), rtol=1e-5, atol=0)


def test_reflection_reaches_only_a_corner_at_the_extremes():
    # a ramp x_in: where the view samples beyond the border, the mirror bends the ramp back
    size, crop = 152, 96
    x_in = torch.arange(size, dtype=torch.float32).expand(size, size)
    ramp = torch.stack([x_in, x_in.T, x_in])[None]  # bands: x_in, y_in, x_in

    def mirrored_fraction(angle: float, scale: float, jitter: float) -> float:
        geom = geometry([angle], [scale], [(jitter, jitter)])
        got = resample(ramp, geom, crop)[0, :2].double()
        u = torch.arange(crop, dtype=torch.float64) - (crop - 1) / 2
        ux, uy = torch.meshgrid(u + jitter, u + jitter, indexing="xy")
        a = geom.matrix()[0].double()
        want_x = (size - 1) / 2 + a[0, 0] * ux + a[0, 1] * uy
        want_y = (size - 1) / 2 + a[1, 0] * ux + a[1, 1] * uy
        off = ((got[0] - want_x).abs() > 1e-3) | ((got[1] - want_y).abs() > 1e-3)
        return off.double().mean().item()

    worst = mirrored_fraction(math.pi / 4, 0.9, 7.0)
    assert 0.003 < worst < 0.015  # one corner triangle, as the module docstring says (0.99%)
    assert mirrored_fraction(math.pi / 4, 1.1, 7.0) == 0.0
    assert mirrored_fraction(0.2, 0.9, 7.0) == 0.0


def test_flux_is_kept_under_flips_and_rotation():
    n = 6
    images = gaussian_image(n, 64, sigma_pix=2.0, flux=100.0)
    gen = torch.Generator().manual_seed(3)
    geom = draw_geometry(n, flip=True, rotate=True, scale_range=(1.0, 1.0), jitter_px=3.0,
                         generator=gen, device="cpu")
    views = Augment(AugmentConfig(crop=48)).apply(images, *no_conditions(n), geometric_only(geom))
    flux, _, var = moments(views)
    torch.testing.assert_close(flux, torch.full_like(flux, 100.0), rtol=2e-3, atol=0)
    # the width is kept too, up to the interpolation's own smoothing (at most 1/4 px²)
    assert ((var - 4.0) > -0.01).all() and ((var - 4.0) < 0.26).all()


def test_size_scaling_keeps_surface_brightness():
    # s enlarges the object s times: a closer copy of the same galaxy, flux times s². (Rotated
    # views: an axis-aligned zoom of a 2-px source beats against the pixel grid, up to 2% off.)
    images = gaussian_image(2, 64, sigma_pix=2.0, flux=100.0)
    views = Augment(AugmentConfig(crop=60)).apply(
        images, *no_conditions(2), geometric_only(geometry([0.4, 1.0], [0.9, 1.1],
                                                           [(0.0, 0.0), (0.0, 0.0)])))
    flux, _, _ = moments(views)
    torch.testing.assert_close(flux[:, 0], 100.0 * torch.tensor([0.81, 1.21], dtype=flux.dtype),
                               rtol=3e-3, atol=0)


def test_jitter_moves_a_centred_source_within_the_range():
    n = 8
    images = gaussian_image(n, 152, sigma_pix=1.5, flux=10.0)
    geom = draw_geometry(n, flip=True, rotate=True, scale_range=(0.9, 1.1), jitter_px=7.0,
                         generator=torch.Generator().manual_seed(5), device="cpu")
    views = Augment().apply(images, *no_conditions(n), geometric_only(geom))
    assert views.shape == (n, 3, 96, 96)
    _, centroid, _ = moments(views)
    # the source sits at the crop centre, so it lands at -jitter whatever the rotation and scale
    torch.testing.assert_close(centroid[:, 0], -geom.jitter.double(), rtol=0, atol=0.02)
    assert (centroid.abs() <= 7.0 + 0.02).all()
    assert (centroid[:, 0].abs() > 1.0).any()  # a real move, not a centred view
    assert geom.jitter.abs().max() > 3.0  # the draws do use the range


def test_draws_cover_their_ranges():
    n = 2000
    geom = draw_geometry(n, flip=True, rotate=True, scale_range=(0.9, 1.1), jitter_px=7.0,
                         generator=torch.Generator().manual_seed(0), device="cpu")
    assert set(geom.flip.unique().tolist()) == {-1.0, 1.0}
    assert 0.45 < (geom.flip == -1).double().mean() < 0.55
    assert geom.angle.min() >= 0 and geom.angle.max() < 2 * math.pi
    assert geom.angle.max() - geom.angle.min() > 6.0
    assert geom.scale.min() >= 0.9 and geom.scale.max() <= 1.1
    assert geom.jitter.abs().max() <= 7.0 and geom.jitter.abs().max() > 6.9
    off = draw_geometry(3, flip=False, rotate=False, scale_range=(1.0, 1.0), jitter_px=0.0,
                        generator=None, device="cpu")
    assert torch.equal(off.matrix(), torch.eye(2).expand(3, 2, 2))


def test_phase_variance_is_exact_for_shifts_and_averages_for_rotations():
    geom = geometry([0.0, math.pi / 2, 0.7], [1.0, 1.0, 1.0],
                    [(0.25, 0.5), (0.0, 0.0), (0.0, 0.0)])
    m = phase_variance(geom, 96)
    # the unshifted view samples pixel centres; a shift by (0.25, 0.5) gives phases 0.25, 0.5
    torch.testing.assert_close(m[0], torch.tensor([0.1875, 0.25]), rtol=0, atol=1e-5)
    torch.testing.assert_close(m[1], torch.tensor([0.0, 0.0]), rtol=0, atol=1e-5)
    torch.testing.assert_close(m[2], torch.tensor([1 / 6, 1 / 6]), rtol=0, atol=0.01)
