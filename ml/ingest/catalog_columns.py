"""Map a catalog table (Tractor column names) onto the survey format's catalog columns.

Both ingest paths read their catalog with astropy and go through :func:`survey_columns`:

* required columns, matched case-insensitively with the Tractor catalog's names: ``ra``,
  ``dec`` (degrees), ``ebv``, and per band ``flux_g, flux_r, flux_z`` (nanomaggies),
  ``psfsize_g/r/z`` (PSF FWHM, arcsec) and ``psfdepth_g/r/z`` (5-sigma point-source depth as
  inverse variance, nanomaggies^-2). A single (N, 3) column ``flux`` / ``psfsize`` /
  ``psfdepth`` in g, r, z order is accepted instead of the three band columns.
* Tractor's ``type`` becomes the survey's ``source_type``; ``objid``, ``brickid``,
  ``z_phot_median`` keep their names and the survey format's dtypes.
* every other 1-D or 2-D column is carried as an optional survey column (lower-case name;
  floats and integers keep their dtype, text becomes fixed-length UTF-8 bytes). Masked (empty)
  entries become NaN, -1 or an empty string.

A row is unusable when a required value is missing or non-finite, ``ra``/``dec`` are outside
the sky, ``ebv`` is negative, or a ``psfsize``/``psfdepth`` is not positive (the band has no
data there). :class:`SurveyColumns` lists such rows with the reason, so the caller can stop with
a clear message or skip them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ml.survey_format import BANDS, OPTIONAL_KEYS, REQUIRED_KEYS


class CatalogError(ValueError):
    """A catalog table cannot be read or lacks what the survey format needs."""


# Tractor name -> survey name, for the columns whose names differ
RENAMED = {"type": "source_type"}
PER_BAND = ("flux", "psfsize", "psfdepth")


def read_table(path: str | Path):
    """Read a FITS or CSV table with astropy."""
    from astropy.table import Table

    path = Path(path)
    name = path.name.lower()
    if name.endswith((".fits", ".fit", ".fits.gz", ".fit.gz")):
        fmt = "fits"
    elif name.endswith((".csv", ".csv.gz")):
        fmt = "ascii.csv"
    else:
        raise CatalogError(f"{path}: unknown table format; give a .fits or .csv file")
    try:
        return Table.read(path, format=fmt)
    except Exception as exc:  # astropy raises many types for a malformed file
        raise CatalogError(f"cannot read the table {path}: {exc}") from exc


def column(table, name: str):
    """The column called ``name`` in any letter case, or None."""
    by_lower = {c.lower(): c for c in table.colnames}
    real = by_lower.get(name.lower())
    return None if real is None else table[real]


def _filled(col, fill) -> np.ndarray:
    if hasattr(col, "mask") and np.any(col.mask):
        return np.asarray(col.filled(fill))
    return np.asarray(col)


def _as_float(col, dtype) -> tuple[np.ndarray, np.ndarray]:
    """(values, usable) where masked or non-numeric entries are NaN / unusable."""
    try:
        values = _filled(col, np.nan).astype(dtype)
    except (TypeError, ValueError) as exc:
        raise CatalogError(f"column {col.name!r} is not numeric ({col.dtype})") from exc
    return values, np.isfinite(values)


@dataclass
class SurveyColumns:
    """A catalog table converted to survey columns, plus the rows that cannot be used."""

    catalog: dict[str, np.ndarray]  # survey column -> (N, ...) array, writer dtypes
    extra_specs: dict[str, tuple[np.dtype, tuple[int, ...]]]  # SurveyWriter extra_columns
    bad_rows: dict[int, str] = field(default_factory=dict)  # row -> reason

    def rows(self, index: np.ndarray) -> dict[str, np.ndarray]:
        return {name: values[index] for name, values in self.catalog.items()}


def _required(table, problems: list[tuple[np.ndarray, str]]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    missing: list[str] = []
    for key in ("ra", "dec", "ebv"):
        col = column(table, key)
        if col is None:
            missing.append(key)
            continue
        values, ok = _as_float(col, REQUIRED_KEYS[key][1])
        out[key] = values
        problems.append((~ok, f"{key} is missing or not finite"))
    for key in PER_BAND:
        vector = column(table, key)
        bands = [column(table, f"{key}_{b}") for b in BANDS]
        if vector is not None and vector.ndim == 2 and vector.shape[1] == 3:
            values, ok = _as_float(vector, np.float32)
        elif all(b is not None for b in bands):
            pairs = [_as_float(b, np.float32) for b in bands]
            values = np.stack([v for v, _ in pairs], axis=1)
            ok = np.stack([o for _, o in pairs], axis=1)
        else:
            missing += [f"{key}_{b}" for b, c in zip(BANDS, bands, strict=True) if c is None]
            continue
        out[key] = values
        for i, band in enumerate(BANDS):
            problems.append((~ok[:, i], f"{key}_{band} is missing or not finite"))
            if key != "flux":
                with np.errstate(invalid="ignore"):
                    problems.append((ok[:, i] & ~(values[:, i] > 0),
                                     f"{key}_{band} is not positive (no {band}-band data)"))
    if missing:
        raise CatalogError(
            f"the catalog lacks required column(s) {', '.join(missing)}; it needs ra, dec, ebv "
            "and flux, psfsize, psfdepth per band g, r, z with the Tractor catalog's names "
            "(e.g. flux_g, psfsize_r, psfdepth_z)"
        )
    with np.errstate(invalid="ignore"):
        problems.append((~((out["ra"] >= 0) & (out["ra"] <= 360)), "ra is outside [0, 360]"))
        problems.append((~(np.abs(out["dec"]) <= 90), "dec is outside [-90, 90]"))
        problems.append((out["ebv"] < 0, "ebv is negative"))
    return out


def _optional(col, name: str) -> tuple[np.ndarray, np.dtype]:
    if name in OPTIONAL_KEYS:
        dtype = OPTIONAL_KEYS[name]
        if dtype.kind in "iu":
            return _filled(col, -1).astype(dtype), dtype
        if dtype.kind == "f":
            return _filled(col, np.nan).astype(dtype), dtype
        if dtype.kind == "S":
            strings = _filled(col, "").astype(str)
            return np.char.encode(np.char.strip(strings), "utf-8").astype(dtype), dtype
    kind = col.dtype.kind
    if kind == "f":
        values = _filled(col, np.nan)
    elif kind in "iu":
        values = _filled(col, -1 if kind == "i" else 0)
    elif kind == "b":
        values = _filled(col, False)
    elif kind in "US":
        strings = np.char.strip(_filled(col, "").astype(str))
        values = np.char.encode(strings, "utf-8")
        values = values.astype(f"S{max(1, values.dtype.itemsize)}")
    else:
        raise CatalogError(f"column {col.name!r} has dtype {col.dtype}, which a survey cannot hold")
    return values, values.dtype


def survey_columns(table, skip: tuple[str, ...] = (), rename_clashes: str = "") -> SurveyColumns:
    """Convert ``table`` (N rows) to survey columns.

    Args:
        table: an astropy Table with Tractor column names.
        skip: column names (any case) not to carry, e.g. ``("file",)``.
        rename_clashes: prefix for carried columns whose lower-case name would clash with a
            survey column; empty means such columns are an error.
    """
    problems: list[tuple[np.ndarray, str]] = []
    catalog = _required(table, problems)
    consumed = {"ra", "dec", "ebv", *PER_BAND, *(f"{k}_{b}" for k in PER_BAND for b in BANDS)}
    skip_lower = {s.lower() for s in skip}
    extra_specs: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
    for real in table.colnames:
        lower = real.lower()
        if lower in consumed or lower in skip_lower:
            continue
        col = table[real]
        if col.ndim > 2:
            raise CatalogError(
                f"column {real!r} has shape {col.shape}; a survey column holds one value or "
                "one vector per object, drop the column or flatten it"
            )
        name = RENAMED.get(lower, lower).replace("/", "_")
        if name in catalog or name in REQUIRED_KEYS:
            if not rename_clashes:
                raise CatalogError(f"column {real!r} clashes with the survey column {name!r}")
            name = rename_clashes + name
        values, dtype = _optional(col, name)
        catalog[name] = values
        extra_specs[name] = (dtype, tuple(values.shape[1:]))
    bad_rows: dict[int, str] = {}
    for mask, reason in problems:
        for row in np.flatnonzero(mask):
            bad_rows.setdefault(int(row), reason)
    return SurveyColumns(catalog=catalog, extra_specs=extra_specs, bad_rows=bad_rows)
