"""The whole pipeline: extinction, determinism, sampling modes, views, config, stars."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from augment_sources import gaussian_image, geometry
from scipy import stats as scipy_stats

from ml.augment import (
    Augment,
    AugmentConfig,
    AugmentDraw,
    AugmentStats,
    center_view,
    finish_view,
)
from ml.augment.geometry import Geometry
from ml.distributions import LogNormal
from ml.render import Stretch

R_GRZ = (3.214, 2.165, 1.211)  # DESIGN.md: A_band = R_band E(B-V)


def small_batch(n: int = 3, size: int = 40, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    images = 0.05 + 0.01 * torch.randn(n, 3, size, size, generator=gen)
    images += gaussian_image(n, size, sigma_pix=2.0, flux=20.0)
    ebv = torch.tensor([0.01, 0.05, 0.2])[:n]
    psf = torch.tensor([[1.4, 1.3, 1.2], [1.8, 1.6, 1.5], [2.2, 2.0, 1.9]])[:n]
    noise = torch.tensor([[0.003, 0.005, 0.012]]).expand(n, 3)
    return images, ebv, psf, noise


def extinction_draw(n: int, ebv: torch.Tensor | None) -> AugmentDraw:
    return AugmentDraw(Geometry.identity(n), ebv=ebv, psf_sigma_pix=None, noise_sigma=None,
                       foreground=None)


def test_extinction_round_trip_is_the_identity():
    images, ebv, psf, noise = small_batch()
    aug = Augment(AugmentConfig(crop=24))
    same = aug.apply(images, ebv, psf, noise, extinction_draw(3, ebv.clone()))
    untouched = aug.apply(images, ebv, psf, noise, extinction_draw(3, None))
    torch.testing.assert_close(same, untouched, rtol=1e-6, atol=0)


def test_extinction_gain_per_band_follows_the_coefficients():
    images = torch.ones(2, 3, 16, 16)
    own, new = torch.tensor([0.0, 0.3]), torch.tensor([0.1, 0.05])
    views = Augment(AugmentConfig(crop=8)).apply(
        images, own, torch.ones(2, 3), torch.zeros(2, 3), extinction_draw(2, new))
    gain = views[:, :, 0, 0].double()
    want = 10.0 ** (-0.4 * np.outer(new - own, R_GRZ))  # re-redden with new, de-redden own
    np.testing.assert_allclose(gain.numpy(), want, rtol=1e-5)
    assert gain[1, 0] > 1 > gain[0, 0]  # less dust brightens, more dims, g the most


def test_same_seed_same_views_other_seed_other_views():
    images, ebv, psf, noise = small_batch()
    aug = Augment(AugmentConfig(crop=24, out_size=16))

    def run(seed):
        return aug(images, ebv, psf, noise, generator=torch.Generator().manual_seed(seed))

    a, b, c = run(7), run(7), run(8)
    assert a.shape == (3, 3, 16, 16) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0


def test_conditions_may_be_numpy_arrays():
    images, ebv, psf, noise = small_batch()
    aug = Augment(AugmentConfig(crop=24))
    a = aug(images, ebv.numpy(), psf.numpy(), noise.numpy(), torch.Generator().manual_seed(1))
    b = aug(images, ebv, psf, noise, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_center_view_is_the_identity_augmentation_through_the_same_final_steps():
    images, ebv, psf, noise = small_batch()
    stretch = Stretch(scales=(5.0, 3.0, 2.0), m=0.02, Q=15.0)
    aug = Augment(AugmentConfig(crop=24, out_size=12, stretch_scales=(5.0, 3.0, 2.0),
                                stretch_m=0.02, stretch_q=15.0))
    identity = AugmentDraw(Geometry.identity(3, step=aug.config.step), None, None, None, None)
    via_augment = finish_view(aug.apply(images, ebv, psf, noise, identity), aug.stretch)
    direct = center_view(images, crop=24, out_size=12, stretch=stretch)
    assert direct.shape == (3, 3, 12, 12)
    torch.testing.assert_close(via_augment, direct, rtol=0, atol=1e-5)
    assert center_view(images, crop=24).shape == (3, 3, 24, 24)


def test_uniform_and_lognormal_sampling_draw_from_their_distributions():
    n = 4000
    gen = torch.Generator().manual_seed(0)
    log_draw = Augment(AugmentConfig()).draw(n, gen)
    uni_draw = Augment(AugmentConfig(sampling="uniform")).draw(n, gen)
    dr9 = AugmentStats.dr9_south()
    for band in range(3):
        d: LogNormal = dr9.psf_sigma_pix[band]
        ref = scipy_stats.lognorm(d.shape, d.loc, d.scale)
        lo, hi = ref.cdf(d.lo), ref.cdf(d.hi)

        def truncated_cdf(x, ref=ref, lo=lo, hi=hi):
            return (ref.cdf(x) - lo) / (hi - lo)

        assert scipy_stats.kstest(log_draw.psf_sigma_pix[:, band].numpy(),
                                  truncated_cdf).pvalue > 1e-3
        assert scipy_stats.kstest(uni_draw.psf_sigma_pix[:, band].numpy(), "uniform",
                                  args=(d.lo, d.hi - d.lo)).pvalue > 1e-3
        noise = dr9.noise_sigma[band]
        assert scipy_stats.kstest(uni_draw.noise_sigma[:, band].numpy(), "uniform",
                                  args=(noise.lo, noise.hi - noise.lo)).pvalue > 1e-3
    # log-normal E(B-V) sits near its median 0.035; uniform spreads over 0-1
    assert float(log_draw.ebv.median()) == pytest.approx(dr9.ebv.median(), rel=0.05)
    assert float(uni_draw.ebv.median()) == pytest.approx(0.5, abs=0.03)


def test_lognormal_sampling_refuses_uniform_only_statistics():
    with pytest.raises(ValueError, match="sampling='uniform'"):
        Augment(AugmentConfig(), AugmentStats.dr9_south().as_uniform())
    Augment(AugmentConfig(sampling="uniform"), AugmentStats.dr9_south().as_uniform())


def test_toggles_turn_steps_off():
    cfg = AugmentConfig(flip=False, rotate=False, scale_range=(1.0, 1.0), jitter_px=0.0,
                        extinction=False, psf_blur=False, noise=False, crop=24)
    images, ebv, psf, noise = small_batch()
    views = Augment(cfg)(images, ebv, psf, noise, torch.Generator().manual_seed(0))
    torch.testing.assert_close(views, center_view(images, 24), rtol=0, atol=1e-5)
    draw = Augment(cfg).draw(3)
    assert draw.ebv is None and draw.psf_sigma_pix is None and draw.noise_sigma is None


def test_config_from_toml_style_dict_and_validation():
    cfg = AugmentConfig.from_dict({"crop": 64, "scale_range": [0.95, 1.05], "out_size": 48})
    assert cfg.scale_range == (0.95, 1.05) and cfg.view_size == 48
    assert AugmentConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown augmentation setting"):
        AugmentConfig.from_dict({"crop_size": 64})
    for bad in ({"crop": 0}, {"scale_range": (1.1, 0.9)}, {"sampling": "gaussian"},
                {"foreground_paste": 1.5}, {"jitter_px": -1}):
        with pytest.raises(ValueError, match="invalid augmentation config"):
            AugmentConfig(**bad)


def test_bad_inputs_get_clear_errors():
    images, ebv, psf, noise = small_batch()
    aug = Augment(AugmentConfig(crop=24))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        aug(images[:, :2], ebv, psf, noise)
    with pytest.raises(ValueError, match="psf_sigma_pix has shape"):
        aug(images, ebv, psf[:, :2], noise)
    with pytest.raises(ValueError, match="does not fit"):
        Augment(AugmentConfig(crop=64))(images, ebv, psf, noise)


def test_foreground_star_adds_its_flux_with_stellar_colours():
    n, crop = 64, 48
    aug = Augment(AugmentConfig(crop=crop, foreground_paste=1.0, foreground_mag_range=(18, 18)))
    draw = aug.draw(n, torch.Generator().manual_seed(0))
    draw.geometry, draw.ebv, draw.noise_sigma = Geometry.identity(n), None, None
    # keep the stars 4σ inside the view, so that all their flux lands in it
    draw.foreground.xy = draw.foreground.xy.clamp(-14.0, 14.0)
    views = aug.apply(torch.zeros(n, 3, 64, 64), torch.zeros(n), torch.full((n, 3), 1.5),
                      torch.zeros(n, 3), draw)
    flux = views.double().sum(dim=(2, 3)).numpy()
    np.testing.assert_allclose(flux[:, 1], 10 ** (0.4 * (22.5 - 18.0)), rtol=1e-3)
    g_r = -2.5 * np.log10(flux[:, 0] / flux[:, 1])
    r_z = -2.5 * np.log10(flux[:, 1] / flux[:, 2])
    # on the stellar locus: mostly turn-off stars, r - z growing with g - r
    assert g_r.min() >= -0.3 and g_r.max() <= 1.6 and 0.2 < np.median(g_r) < 0.9
    assert np.corrcoef(g_r, r_z)[0, 1] > 0.9
    x, y = draw.foreground.xy[5].tolist()
    row, col = divmod(int(views[5, 1].argmax()), crop)
    assert abs(col - (23.5 + x)) <= 0.5 and abs(row - (23.5 + y)) <= 0.5


def test_foreground_off_by_default_and_probability_respected():
    assert Augment().draw(4).foreground is None
    draw = Augment(AugmentConfig(foreground_paste=0.25)).draw(2000,
                                                              torch.Generator().manual_seed(0))
    assert 0.22 < float((draw.foreground.flux[:, 1] > 0).double().mean()) < 0.28


def test_geometry_draw_is_used_by_apply():
    images = gaussian_image(1, 64, sigma_pix=2.0, flux=20.0, center=(40.0, 31.5))
    aug = Augment(AugmentConfig(crop=32))
    turned = AugmentDraw(geometry([np.pi / 2], [1.0], [(0.0, 0.0)]), None, None, None, None)
    views = aug.apply(images, torch.zeros(1), torch.ones(1, 3), torch.zeros(1, 3), turned)
    row, col = divmod(int(views[0, 0].argmax()), 32)
    # a source 8.5 px right of the centre ends up 8.5 px above or below it
    assert col in (15, 16) and abs(row - 15.5) == pytest.approx(8.5, abs=0.5)



@pytest.mark.parametrize("out_size", [None, 12])
def test_copies_are_the_views_of_a_repeated_batch_without_repeating_it(out_size):
    images, ebv, psf, noise = small_batch()
    aug = Augment(AugmentConfig(crop=24, out_size=out_size))
    two = aug(images, ebv, psf, noise, torch.Generator().manual_seed(3), copies=2)
    repeated = aug(torch.cat([images, images]), torch.cat([ebv, ebv]), torch.cat([psf, psf]),
                   torch.cat([noise, noise]), torch.Generator().manual_seed(3))
    assert two.shape == (6, 3, out_size or 24, out_size or 24)
    torch.testing.assert_close(two, repeated, rtol=0, atol=1e-6)
    assert not torch.allclose(two[:3], two[3:])  # copy 0 and copy 1 are different views
