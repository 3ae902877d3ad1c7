"""Test data for the index tests: clustered unit vectors, magnitudes, brute force, a tiny survey."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ml.index.synthetic import RepresentationMixture
from ml.index.vectors import as_float32
from ml.survey import Survey
from ml.survey_writer import SurveyWriter

N_SMALL = 600
DIM = 24


def clustered(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    """(n, dim) float32 unit vectors from a small mixture of anisotropic clusters."""
    mixture = RepresentationMixture.synthetic(dim, n_clusters=12, latent_dim=8, seed=seed)
    return mixture.sample(n, np.random.default_rng(seed + 1))


def magnitudes(n: int, seed: int = 0) -> np.ndarray:
    """(n,) float32 r magnitudes in 16..21 with a few NaN (non-positive flux)."""
    mag = np.random.default_rng(seed).uniform(16.0, 21.0, n).astype(np.float32)
    mag[::53] = np.nan
    return mag


def brute_force(vectors16: np.ndarray, query: np.ndarray, allowed: np.ndarray | None = None):
    """Every object ranked by exact cosine on the float16 originals (ties by id): (ids, sims)."""
    sims = as_float32(vectors16) @ np.asarray(query, dtype=np.float32)
    ids = np.arange(len(sims))
    if allowed is not None:
        ids, sims = ids[allowed], sims[allowed]
    order = np.lexsort((ids, -sims))
    return ids[order], sims[order]


def write_survey(folder: Path, mag_r: np.ndarray, size: int = 8, seed: int = 0) -> Survey:
    """A tiny survey whose r flux gives ``mag_r`` (NaN -> zero flux)."""
    n = mag_r.size
    rng = np.random.default_rng(seed)
    flux_r = np.where(np.isfinite(mag_r), 10 ** (0.4 * (22.5 - np.nan_to_num(mag_r))), 0.0)
    flux = np.stack([flux_r, flux_r, flux_r], axis=1).astype(np.float32)
    catalog = {
        "ra": rng.uniform(0, 360, n), "dec": rng.uniform(-30, 30, n),
        "ebv": rng.uniform(0, 0.1, n).astype(np.float32), "flux": flux,
        "psfsize": rng.uniform(1, 2, (n, 3)).astype(np.float32),
        "psfdepth": rng.uniform(100, 1000, (n, 3)).astype(np.float32),
    }
    images = rng.normal(0.0, 0.05, (n, 3, size, size)).astype(np.float32)
    with SurveyWriter(folder, image_size=size, objects_per_file=max(1, n // 2 + 1)) as writer:
        writer.append(images, catalog)
    return Survey(folder)


