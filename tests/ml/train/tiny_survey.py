"""A tiny survey on disk for training and evaluation tests: 32-px cutouts of two classes.

"blob" objects are elliptical Gaussians, "ring" objects are Gaussian annuli; both get random
size, orientation, flux and colour, sky noise that matches the catalog's ``psfdepth``, and a
``truth.h5`` in the documented layout. ``augment_stats.json`` holds the authors' DR9 south fits.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from ml.augment import AugmentStats
from ml.photometry import psfdepth_from_noise_sigma
from ml.survey_format import TRUTH_FILENAME
from ml.survey_writer import SurveyWriter

CLASSES = ("blob", "ring")


def write_tiny_survey(out_dir: Path, n: int = 64, size: int = 32, seed: int = 0,
                      ring_fraction: float = 0.5) -> Path:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2.0
    labels = np.where(rng.random(n) < ring_fraction, "ring", "blob")
    images = np.empty((n, 3, size, size), dtype=np.float32)
    noise_sigma = np.array([0.004, 0.006, 0.02], dtype=np.float32)
    for i in range(n):
        angle, q = rng.uniform(0, np.pi), rng.uniform(0.5, 1.0)
        u = xx * np.cos(angle) + yy * np.sin(angle)
        v = (-xx * np.sin(angle) + yy * np.cos(angle)) / q
        r = np.hypot(u, v)
        radius = rng.uniform(2.0, 5.0)
        if labels[i] == "ring":
            profile = np.exp(-0.5 * ((r - 2.0 * radius) / 1.0) ** 2)
        else:
            profile = np.exp(-0.5 * (r / radius) ** 2)
        colour = rng.uniform(0.5, 2.0, size=3) * rng.uniform(0.5, 3.0)
        images[i] = colour[:, None, None] * profile / profile.sum() * 20.0
        images[i] += rng.normal(size=(3, size, size)) * noise_sigma[:, None, None]
    psfsize = np.full((n, 3), 1.3, dtype=np.float32)
    catalog = {
        "ra": rng.uniform(0, 10, n), "dec": rng.uniform(-5, 5, n),
        "ebv": rng.uniform(0.01, 0.08, n).astype(np.float32),
        "flux": images.sum(axis=(2, 3)).astype(np.float32),
        "psfsize": psfsize,
        "psfdepth": psfdepth_from_noise_sigma(noise_sigma[None, :], psfsize).astype(np.float32),
    }
    with SurveyWriter(out_dir, image_size=size) as writer:
        writer.append(images, catalog)
    with h5py.File(out_dir / TRUTH_FILENAME, "w") as f:
        f["object_id"] = np.arange(n, dtype=np.int64)
        f["label"] = labels.astype("S10")
        f.attrs["classes"] = '["blob", "ring"]'
        f.attrs["rates"] = '{"blob": 0.5, "ring": 0.5}'
        f.attrs["seed"] = seed
    AugmentStats.dr9_south().save(out_dir)
    return out_dir
