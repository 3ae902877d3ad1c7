"""The survey format: the contract between survey files and everything that reads them.

A survey is a folder of HDF5 files (``*.h5``, sorted by name, truth.h5 excluded) laid out
like the DESI Legacy Surveys DR9 cutout release used by Stein et al. (2021). Every object
has a stable integer ``object_id``: its row in the concatenation of the files in name order.

| key        | shape, dtype        | meaning                                              |
|------------|---------------------|------------------------------------------------------|
| images     | (N, 3, H, W) f32    | g, r, z cutouts in nanomaggies, 0.262"/pixel         |
| ra, dec    | (N,) f64            | degrees                                              |
| ebv        | (N,) f32            | SFD E(B-V)                                           |
| flux       | (N, 3) f32          | g, r, z flux, nanomaggies; mag = 22.5 - 2.5 log10 f  |
| psfsize    | (N, 3) f32          | PSF FWHM per band, arcsec                            |
| psfdepth   | (N, 3) f32          | 5-sigma point-source depth as inverse variance       |

Any other 1-D (or (N, 3)) dataset of length N is an optional catalog column (``objid``,
``brickid``, ``source_type``, ``z_phot_median``, ...) carried through to the UI and exports.
"""

from __future__ import annotations

import numpy as np

BANDS: tuple[str, str, str] = ("g", "r", "z")
PIXEL_SCALE_ARCSEC = 0.262
CUTOUT_SIZE = 152  # pixels, H = W
TRUTH_FILENAME = "truth.h5"
AUGMENT_STATS_FILENAME = "augment_stats.json"  # written by `galsearch fit-augment`

# key -> (trailing shape after N, dtype); None in a shape means "any size"
REQUIRED_KEYS: dict[str, tuple[tuple[int | None, ...], np.dtype]] = {
    "images": ((3, None, None), np.dtype("float32")),
    "ra": ((), np.dtype("float64")),
    "dec": ((), np.dtype("float64")),
    "ebv": ((), np.dtype("float32")),
    "flux": ((3,), np.dtype("float32")),
    "psfsize": ((3,), np.dtype("float32")),
    "psfdepth": ((3,), np.dtype("float32")),
}

# catalog = every per-object column except the pixels
CATALOG_KEYS: tuple[str, ...] = tuple(k for k in REQUIRED_KEYS if k != "images")

# optional columns a survey may carry, with the dtype the ingest and the simulator write
OPTIONAL_KEYS: dict[str, np.dtype] = {
    "objid": np.dtype("int64"),
    "brickid": np.dtype("int64"),
    "source_type": np.dtype("S4"),  # Tractor morphology: PSF, REX, EXP, DEV, SER
    "z_phot_median": np.dtype("float32"),
}

# HDF5 layout choices for writers: one object per image chunk, so random reads cost one chunk
IMAGE_CHUNK_OBJECTS = 1
MAX_OBJECTS_PER_FILE = 1_000_000
