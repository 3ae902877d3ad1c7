"""Uploaded cutouts: FITS or NumPy files holding one g, r, z image in nanomaggies.

The Legacy Surveys cutout service returns FITS with a (3, H, W) g, r, z cube in the primary
HDU; NumPy ``.npy`` files of the same shape are accepted too (``np.load`` without pickles, so
an upload cannot run code). Anything else is refused with a message saying what was expected.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from astropy.io import fits

MIN_SIDE, MAX_SIDE = 8, 512  # pixels


class UploadError(ValueError):
    """The uploaded file is not a usable cutout; the message says why and what is expected."""


def _from_fits(data: bytes) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # non-standard headers are common and harmless
            with fits.open(io.BytesIO(data), memmap=False) as hdus:
                for hdu in hdus:
                    if hdu.data is not None and hdu.data.ndim >= 2:
                        return np.array(hdu.data)
    except (OSError, ValueError, TypeError) as error:
        raise UploadError(f"the FITS file cannot be read ({error})") from None
    raise UploadError("the FITS file holds no image")


def _from_npy(data: bytes) -> np.ndarray:
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise UploadError(f"the .npy file cannot be read ({error})") from None


def read_cutout(data: bytes) -> np.ndarray:
    """The (3, H, W) float32 g, r, z image in an uploaded FITS or ``.npy`` file.

    Raises:
        UploadError: another format, another shape, non-numeric or non-finite pixels.
    """
    if data.startswith(b"\x93NUMPY"):
        image = _from_npy(data)
    elif data.startswith(b"SIMPLE") or data.startswith(b"\x1f\x8b"):  # FITS, or gzipped FITS
        image = _from_fits(data)
    else:
        raise UploadError("the file is neither FITS nor NumPy .npy: upload a g, r, z cutout "
                          "in nanomaggies as FITS (as the Legacy Surveys cutout service gives) "
                          "or .npy, shape (3, H, W)")
    if image.dtype.kind not in "iuf":
        raise UploadError(f"the pixels must be numbers, not {image.dtype}")
    if image.ndim != 3 or image.shape[0] != 3:
        raise UploadError(f"the cutout must have shape (3, H, W) with bands g, r, z; got "
                          f"{image.shape}")
    if not (MIN_SIDE <= image.shape[1] <= MAX_SIDE and MIN_SIDE <= image.shape[2] <= MAX_SIDE):
        raise UploadError(f"the cutout must be {MIN_SIDE} to {MAX_SIDE} pixels on a side; got "
                          f"{image.shape[1]} x {image.shape[2]}")
    image = image.astype(np.float32)
    if not np.isfinite(image).all():
        raise UploadError(f"the cutout holds {int((~np.isfinite(image)).sum())} NaN or "
                          "infinite pixels; fill or mask them before uploading")
    return image
