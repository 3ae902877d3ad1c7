"""A survey and search bundle of N synthetic objects for the HTTP benchmarks (load, api, faults).

- Representations: :class:`ml.index.synthetic.RepresentationMixture` (clumped, anisotropic,
  as a trained encoder's), as in ``benchmarks/search.py``.
- Survey: 152-px g, r, z cutouts. N x 277 kB would not fit a shared disk at N = 1M, so the
  images are an HDF5 virtual dataset repeating a block of ``base`` real-looking cutouts (noise
  plus a Gaussian galaxy; ``benchmarks/export.py``'s :func:`write_pixels` / :func:`write_survey`):
  object i shows the pixels of object i mod base. Catalog columns are per object. Rendering
  costs what it costs on real pixels (same reads, same stretch, same PNG encoding); only the
  page cache hit rate is better than a real 1M survey's.
- Bundle: ``build_bundle`` with the automatic index for N (HNSW at 1M). ``k`` similarity arrays
  (0 by default: the all-pairs top-k of 1M objects takes hours on 2 cores; candidate pages of
  seeds are index searches either way, and object neighbours fall back to the index).

Both are built once and cached under ``data_dir/http_<n>_<dim>_<base>/``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from export import write_pixels, write_survey

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "bench_http"


def survey_and_bundle(n: int, dim: int = 64, base: int = 1024, k: int = 0,
                      data_dir: Path = DEFAULT_DATA_DIR, seed: int = 0) -> tuple[Path, Path]:
    """(survey folder, bundle folder) of ``n`` synthetic objects, built on first use."""
    from ml.index import build_bundle
    from ml.index.cli import survey_mag_r
    from ml.index.synthetic import RepresentationMixture
    from ml.survey import Survey

    folder = data_dir / f"http_{n}_{dim}_{base}_k{k}"
    survey, bundle = folder / "survey", folder / "bundle"
    if (bundle / "manifest.json").exists():
        return survey, bundle
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    print(f"  building a survey and bundle of N = {n:,}, d = {dim} under {folder} (once)",
          flush=True)
    if not (folder / "pixels.h5").exists():
        write_pixels(folder / "pixels.h5", base)
    if not survey.exists():
        write_survey(survey, folder / "pixels.h5", n, base)
    vectors = folder / "vectors.npy"
    mixture = RepresentationMixture.synthetic(dim, n_clusters=max(10, min(2000, n // 50)),
                                              seed=seed)
    mixture.write(vectors, n, seed=seed, progress=True)
    with Survey(survey) as opened:
        build_bundle(bundle, np.load(vectors, mmap_mode="r"), survey_mag_r(opened),
                     opened.path, opened.fingerprint(), "external:synthetic", k=k,
                     mag_window=0.5 if k else None, overwrite=True, progress=True)
    vectors.unlink()  # the bundle holds its own normalised copy
    print(f"  built in {time.perf_counter() - t0:.0f} s", flush=True)
    return survey, bundle
