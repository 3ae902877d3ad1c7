import numpy as np
import pytest
import torch

from ml.render import DEFAULT_STRETCH, Stretch, _asinh_nonneg, arcsinh_rgb, png_bytes, rgb_uint8


def reference_rgb(img: np.ndarray, scales=(6.0, 3.4, 2.2), m=0.03, q=20.0) -> np.ndarray:
    """The Legacy Surveys' sdss_rgb as written in the viewer's code, one pixel at a time."""
    g, r, z = (img[i] * scales[i] + m for i in range(3))
    mean = (max(g, 0) + max(r, 0) + max(z, 0)) / 3
    if mean == 0:
        return np.zeros(3)
    f = np.arcsinh(q * mean) / np.sqrt(q)
    return np.clip(np.array([z, r, g]) * f / mean, 0, 1)


def test_matches_reference_pixel_by_pixel():
    rng = np.random.default_rng(0)
    img = rng.normal(0.02, 0.05, size=(3, 5, 5)).astype(np.float32)
    out = arcsinh_rgb(torch.from_numpy(img)).numpy()
    for y in range(5):
        for x in range(5):
            np.testing.assert_allclose(out[:, y, x], reference_rgb(img[:, y, x]), atol=2e-6)


def test_channel_order_is_z_r_g_and_range():
    img = np.zeros((3, 4, 4), np.float32)
    img[2] = 1.0  # z only -> red
    out = arcsinh_rgb(torch.from_numpy(img))
    assert out.shape == (3, 4, 4)
    assert float(out[0].min()) > float(out[2].max())
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_batched_equals_single_and_black_sky():
    rng = np.random.default_rng(1)
    batch = torch.from_numpy(rng.normal(0, 0.1, size=(4, 3, 6, 6)).astype(np.float32))
    single = torch.stack([arcsinh_rgb(b) for b in batch])
    torch.testing.assert_close(arcsinh_rgb(batch), single)
    very_negative = torch.full((3, 2, 2), -10.0)
    assert float(arcsinh_rgb(very_negative).abs().max()) == 0.0


@pytest.mark.parametrize("x", [0.0, 1e-6, 0.3, 1.0, 17.0, 1e4])
def test_fast_asinh(x):
    t = torch.tensor([x], dtype=torch.float32)
    torch.testing.assert_close(_asinh_nonneg(t), torch.asinh(t), rtol=2e-7, atol=1e-7)


def test_brightness_scales_every_band():
    img = torch.full((3, 2, 2), 0.01)
    dim = arcsinh_rgb(img, Stretch(brightness=0.5))
    bright = arcsinh_rgb(img, DEFAULT_STRETCH)
    assert bool((bright > dim).all())


def test_uint8_and_png():
    img = np.random.default_rng(2).normal(0, 0.05, (3, 16, 16)).astype(np.float32)
    u8 = rgb_uint8(img)
    assert u8.shape == (16, 16, 3) and u8.dtype == np.uint8
    png = png_bytes(img, size=32)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    from io import BytesIO

    from PIL import Image

    assert Image.open(BytesIO(png)).size == (32, 32)


def test_png_holds_exactly_the_stretched_pixels():
    from io import BytesIO

    from PIL import Image

    img = np.random.default_rng(3).normal(0.01, 0.05, (3, 24, 24)).astype(np.float32)
    decoded = np.asarray(Image.open(BytesIO(png_bytes(img))).convert("RGB"))
    np.testing.assert_array_equal(decoded, rgb_uint8(img))  # lossless, whatever the encoder
