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

:func:`check_file` holds one open file to this contract (:class:`ml.survey.Survey` runs it on
every file it opens).
"""

from __future__ import annotations

from pathlib import Path

import h5py
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


class SurveyError(ValueError):
    """A survey folder or file does not follow the survey format; the message says how."""


def check_file(f: h5py.File, path: Path):
    """Check one open survey file against the format; returns (N, image shape (3, H, W), column
    specs: name -> (dtype, trailing shape)). Raises :class:`SurveyError` naming the file and key."""
    missing = [key for key in REQUIRED_KEYS if key not in f]
    if missing:
        raise SurveyError(
            f"{path.name} lacks required key(s) {', '.join(missing)}; a survey file needs "
            f"{', '.join(REQUIRED_KEYS)} (see ml/survey_format.py)"
        )
    n = None
    specs: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
    for key, (trailing, dtype) in REQUIRED_KEYS.items():
        ds = f[key]
        if not isinstance(ds, h5py.Dataset):
            raise SurveyError(f"{path.name}: {key!r} is a group, not a dataset")
        shape = ds.shape
        if len(shape) != 1 + len(trailing) or any(
            want is not None and want != got for want, got in zip(trailing, shape[1:], strict=True)
        ):
            want = "(N" + "".join(f", {'any' if t is None else t}" for t in trailing) + ")"
            raise SurveyError(f"{path.name}: {key!r} has shape {shape}; expected {want}")
        if not _same_dtype(ds.dtype, dtype):
            raise SurveyError(
                f"{path.name}: {key!r} has dtype {ds.dtype}; the survey format needs {dtype}"
            )
        if n is None:
            n = shape[0]
        elif shape[0] != n:
            raise SurveyError(
                f"{path.name}: {key!r} has {shape[0]} rows but 'images' has {n}; every key of a "
                "file needs one row per object (the file may come from an interrupted write)"
            )
        if key == "images":
            if shape[2] != shape[3]:
                raise SurveyError(
                    f"{path.name}: images are {shape[2]}x{shape[3]} pixels; they must be square"
                )
        else:
            specs[key] = (np.dtype(dtype), tuple(shape[1:]))
    assert n is not None
    for key, ds in f.items():
        if key in REQUIRED_KEYS or not isinstance(ds, h5py.Dataset):
            continue
        # any other dataset with one row per object is an optional catalog column
        if key in OPTIONAL_KEYS and (ds.ndim not in (1, 2) or ds.shape[0] != n):
            raise SurveyError(
                f"{path.name}: optional column {key!r} has shape {ds.shape}; it needs one row "
                f"per object ({n} rows, like 'images')"
            )
        if ds.ndim in (1, 2) and ds.shape[0] == n:
            specs[key] = (ds.dtype.newbyteorder("="), tuple(ds.shape[1:]))
    return n, tuple(f["images"].shape[1:]), specs


def _same_dtype(got: np.dtype, want: np.dtype) -> bool:
    # byte order does not matter (h5py converts); kind and size do
    return got.kind == want.kind and got.itemsize == want.itemsize
