"""Where simulated objects sit on the sky: a DR9-south-like footprint and brick numbers.

The footprint is the DECam part of DR9 (DECaLS and DES): declination from -68 deg to
+32.375 deg, away from the Galactic plane (|b| > 20 deg). Positions are uniform on the sphere
inside it. Brick ids follow the Legacy Surveys' scheme of 0.25 deg rows in declination, each
cut into as many bricks in right ascension as fit 0.25 deg wide at the row's edge nearest the
equator, numbered from 1 at the south pole, row by row and eastward from RA 0 (this gives about
662,000 bricks over the sky, as in DR9).
"""

from __future__ import annotations

import numpy as np

DEC_MIN_DEG, DEC_MAX_DEG = -68.0, 32.375
MIN_ABS_GALACTIC_LAT_DEG = 20.0
# the north Galactic pole in ICRS (J2000)
_RA_NGP_RAD = np.deg2rad(192.85948)
_DEC_NGP_RAD = np.deg2rad(27.12825)

BRICK_ROW_DEG = 0.25
_ROW_LO_DEG = np.arange(-90.0, 90.0, BRICK_ROW_DEG)  # (720,) southern edge of each row
_ROW_EDGE_NEAR_EQUATOR = np.minimum(np.abs(_ROW_LO_DEG), np.abs(_ROW_LO_DEG + BRICK_ROW_DEG))
_BRICKS_PER_ROW = np.maximum(
    1, np.ceil(360.0 * np.cos(np.deg2rad(_ROW_EDGE_NEAR_EQUATOR)) / BRICK_ROW_DEG)
).astype(np.int64)
_FIRST_BRICK_OF_ROW = 1 + np.concatenate([[0], np.cumsum(_BRICKS_PER_ROW)[:-1]])


def galactic_latitude_deg(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """Galactic latitude b of ICRS positions, degrees."""
    ra, dec = np.deg2rad(ra_deg), np.deg2rad(dec_deg)
    sin_b = (np.sin(dec) * np.sin(_DEC_NGP_RAD)
             + np.cos(dec) * np.cos(_DEC_NGP_RAD) * np.cos(ra - _RA_NGP_RAD))
    return np.rad2deg(np.arcsin(np.clip(sin_b, -1.0, 1.0)))


def draw_position(rng: np.random.Generator) -> tuple[float, float]:
    """One (ra, dec) in degrees, uniform on the sphere inside the footprint."""
    sin_lo, sin_hi = np.sin(np.deg2rad([DEC_MIN_DEG, DEC_MAX_DEG]))
    while True:  # about 65% of draws land in the footprint; 16 candidates almost always do
        ra = rng.uniform(0.0, 360.0, 16)
        dec = np.rad2deg(np.arcsin(rng.uniform(sin_lo, sin_hi, 16)))
        ok = np.flatnonzero(np.abs(galactic_latitude_deg(ra, dec)) > MIN_ABS_GALACTIC_LAT_DEG)
        if ok.size:
            return float(ra[ok[0]]), float(dec[ok[0]])


def brickid(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """The brick id of positions, int64."""
    ra = np.mod(np.asarray(ra_deg, dtype=np.float64), 360.0)
    row = np.clip(((np.asarray(dec_deg) + 90.0) // BRICK_ROW_DEG).astype(np.int64),
                  0, len(_ROW_LO_DEG) - 1)
    n = _BRICKS_PER_ROW[row]
    col = np.minimum((ra / 360.0 * n).astype(np.int64), n - 1)
    return _FIRST_BRICK_OF_ROW[row] + col
