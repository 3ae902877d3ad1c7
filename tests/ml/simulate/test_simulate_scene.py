"""The renderer's physics: PSF width on every light path, flux, noise, extinction."""

from __future__ import annotations

import galsim
import numpy as np
import pytest

from ml.photometry import extinction_factor, noise_sigma_from_psfdepth
from ml.simulate.conditions import Conditions, draw_conditions
from ml.simulate.scene import Scene
from ml.survey_format import PIXEL_SCALE_ARCSEC

SIZE = 64


def conditions(psf=(2.4, 1.6, 1.25), noise=(0.004, 0.006, 0.02), ebv=0.0) -> Conditions:
    return Conditions(psf_sigma_pix=np.array(psf), noise_sigma=np.array(noise), ebv=ebv,
                      electrons_per_nmgy=np.full(3, 1e4))


def fwhm_arcsec(image: np.ndarray) -> np.ndarray:
    """(3,) FWHM of a noise-free round Gaussian from its second moments."""
    ys, xs = np.mgrid[:image.shape[1], :image.shape[2]]
    out = []
    for band in image:
        f = band.sum()
        mx, my = (band * xs).sum() / f, (band * ys).sum() / f
        var = ((band * ((xs - mx) ** 2 + (ys - my) ** 2)).sum() / f) / 2.0
        out.append(np.sqrt(var) * 2.3548 * PIXEL_SCALE_ARCSEC)
    return np.array(out)


def test_point_source_has_the_catalog_psfsize():
    c = conditions()
    scene = Scene(SIZE, c)
    scene.add_gaussian(31.3, 30.8, 0.0, np.array([10.0, 20.0, 30.0]))
    image = scene.render(np.random.default_rng(0), noise=False)
    np.testing.assert_allclose(fwhm_arcsec(image), c.psfsize_arcsec, rtol=2e-3)
    np.testing.assert_allclose(image.reshape(3, -1).sum(1), [10, 20, 30], rtol=1e-4)


def test_galsim_path_gets_the_base_psf_plus_the_residual_blur():
    c = conditions()
    scene = Scene(SIZE, c)
    tiny = galsim.Gaussian(sigma=1e-3)  # a point source drawn through GalSim
    scene.add_profile(tiny, 31.5, 31.5, np.array([1.0, 1.0, 1.0]), radius_pix=1.0)
    image = scene.render(np.random.default_rng(0), noise=False)
    np.testing.assert_allclose(fwhm_arcsec(image), c.psfsize_arcsec, rtol=5e-3)
    np.testing.assert_allclose(image.reshape(3, -1).sum(1), 1.0, rtol=1e-3)


def test_raw_path_gets_the_whole_psf():
    c = conditions()
    scene = Scene(SIZE, c)
    delta = np.zeros((1, 1), dtype=np.float32)
    delta[0, 0] = 1.0
    scene.add_raw(delta, 30, 33, np.array([2.0, 2.0, 2.0]))
    image = scene.render(np.random.default_rng(0), noise=False)
    np.testing.assert_allclose(fwhm_arcsec(image), c.psfsize_arcsec, rtol=2e-3)
    np.testing.assert_allclose(image.reshape(3, -1).sum(1), 2.0, rtol=1e-4)


def test_sky_noise_matches_psfdepth():
    c = draw_conditions(np.random.default_rng(5))
    image = Scene(SIZE, c).render(np.random.default_rng(1))  # empty sky
    implied = noise_sigma_from_psfdepth(c.psfdepth, c.psfsize_arcsec)
    # 4096 pixels: the standard deviation is known to about 1.1%
    np.testing.assert_allclose(image.reshape(3, -1).std(axis=1), implied, rtol=0.05)
    np.testing.assert_allclose(implied, c.noise_sigma, rtol=1e-9)


def test_source_adds_its_own_poisson_noise():
    c = conditions(noise=(1e-3, 1e-3, 1e-3))
    scene = Scene(SIZE, c)
    flat = np.ones((SIZE, SIZE), dtype=np.float32)
    scene.add_final(flat, 0, 0, np.full(3, 4.0))  # 4 nmgy per pixel
    image = scene.render(np.random.default_rng(2))
    expected = np.sqrt(1e-6 + 4.0 / 1e4)
    np.testing.assert_allclose(image.reshape(3, -1).std(axis=1), expected, rtol=0.05)


def test_sky_light_is_extincted_and_detector_light_is_not():
    c = conditions(ebv=0.2)
    scene = Scene(SIZE, c)
    scene.add_gaussian(20.0, 20.0, 0.0, np.ones(3))
    flat = np.zeros((SIZE, SIZE), dtype=np.float32)
    flat[50, 50] = 1.0
    scene.add_final(flat, 0, 0, np.full(3, 5.0), extinct=False)
    image = scene.render(np.random.default_rng(0), noise=False)
    np.testing.assert_allclose(image[:, 50, 50], 5.0, rtol=1e-6)
    star = image[:, :40, :40].reshape(3, -1).sum(1)
    np.testing.assert_allclose(star, extinction_factor(0.2), rtol=1e-4)
    np.testing.assert_allclose(-2.5 * np.log10(star) / 0.2, [3.214, 2.165, 1.211], rtol=1e-3)


@pytest.mark.parametrize("x", [-5.0, 70.0])
def test_light_beyond_the_cutout_is_clipped_not_wrapped(x):
    scene = Scene(SIZE, conditions())
    scene.add_gaussian(x, 32.0, 0.0, np.ones(3))
    image = scene.render(np.random.default_rng(0), noise=False)
    far_side = image[:, :, :8] if x > SIZE else image[:, :, -8:]
    assert np.abs(far_side).max() < 1e-6
