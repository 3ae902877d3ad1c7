"""Convert a folder of FITS cutouts plus a catalog table into a survey.

Input, as the Legacy Surveys cutout service serves it
(``cutout.fits?ra=..&dec=..&layer=ls-dr9&pixscale=0.262&bands=grz&size=152``): one FITS file per
object holding a (3, H, W) image cube of g, r, z in nanomaggies at 0.262"/pixel, H = W.

* Band order is read from the header when it names the bands (``BANDS = 'grz'`` or
  ``BAND0..BAND2``); a permutation of g, r, z is reordered, any other band set is an error.
  Without such keywords the planes are taken as g, r, z.
* When the header carries a celestial WCS its pixel scale must be 0.262"/pixel (within 1 %).
* Pixels must be finite, and no band may be entirely zero (the service fills bands it has no
  data for with zeros: such a cutout lies outside the survey's footprint in that band).

The catalog (FITS or CSV, read with astropy) has one row per cutout and a ``file`` column naming
each cutout (relative to the FITS folder, or absolute); its other columns follow
:mod:`ml.ingest.catalog_columns` (Tractor names). Objects get ids in catalog row order; the
survey column ``input_row`` keeps each object's catalog row.

A bad row (unreadable or invalid cutout, unusable catalog values) stops the ingest with a
message naming the row and the file, and nothing is written. With ``skip_bad`` such rows are
left out instead, and ``ingest_report.json`` in the survey folder lists them with the reason.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ml.ingest.catalog_columns import CatalogError, column, read_table, survey_columns
from ml.survey_format import BANDS, PIXEL_SCALE_ARCSEC

BATCH_OBJECTS = 256  # cutouts held in memory between writes (~71 MB at 152 px)
PIXEL_SCALE_TOLERANCE = 0.01
REPORT_FILENAME = "ingest_report.json"


class CutoutError(ValueError):
    """A FITS cutout is unreadable or does not hold a g, r, z image cube we can use."""


def _header_bands(header) -> list[str] | None:
    if all(f"BAND{i}" in header for i in range(3)):
        return [str(header[f"BAND{i}"]).strip().lower() for i in range(3)]
    if "BANDS" in header:
        text = str(header["BANDS"]).strip().lower().replace(",", "").replace(" ", "")
        return list(text)
    return None


def _pixel_scale_arcsec(header) -> float | None:
    from astropy.wcs import WCS, FITSFixedWarning
    from astropy.wcs.utils import proj_plane_pixel_scales

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header, naxis=2)
        except Exception:  # a broken WCS does not stop the ingest: the scale is not checked
            return None
    if not wcs.has_celestial:
        return None
    return float(np.mean(proj_plane_pixel_scales(wcs.celestial)) * 3600.0)


def cutout_from_hdul(hdul, source: str, size: int | None = None) -> np.ndarray:
    """The (3, H, W) float32 g, r, z cube of an open FITS file, validated.

    Args:
        hdul: an astropy HDUList.
        source: how to name the file in error messages.
        size: required H = W in pixels (None accepts any square size).
    """
    hdu = next((h for h in hdul if h.is_image and h.data is not None and h.data.ndim == 3), None)
    if hdu is None:
        shapes = [h.data.shape for h in hdul if h.is_image and h.data is not None]
        raise CutoutError(
            f"{source}: no 3-D image (bands, H, W) found (image shapes: {shapes or 'none'}); "
            "request g, r, z together (bands=grz)"
        )
    data = np.asarray(hdu.data, dtype=np.float32)
    if data.shape[0] != 3:
        raise CutoutError(f"{source}: {data.shape[0]} band planes; a cutout needs g, r, z (3)")
    if data.shape[1] != data.shape[2]:
        raise CutoutError(f"{source}: {data.shape[1]}x{data.shape[2]} pixels; cutouts must be square")
    if size is not None and data.shape[1] != size:
        raise CutoutError(
            f"{source}: {data.shape[1]}x{data.shape[2]} pixels but the other cutouts are "
            f"{size}x{size}; every cutout of a survey needs one size"
        )
    bands = _header_bands(hdu.header)
    if bands is not None and bands != list(BANDS):
        if sorted(bands) != sorted(BANDS):
            raise CutoutError(f"{source}: bands {''.join(bands)} in the header; a survey needs g, r, z")
        data = data[[bands.index(b) for b in BANDS]]
    scale = _pixel_scale_arcsec(hdu.header)
    if scale is not None and abs(scale / PIXEL_SCALE_ARCSEC - 1) > PIXEL_SCALE_TOLERANCE:
        raise CutoutError(
            f"{source}: pixel scale {scale:.4f}\"/pixel; the survey format needs "
            f"{PIXEL_SCALE_ARCSEC}\"/pixel (request pixscale={PIXEL_SCALE_ARCSEC})"
        )
    finite = np.isfinite(data)
    if not finite.all():
        band = BANDS[int(np.argwhere(~finite)[0][0])]
        raise CutoutError(
            f"{source}: {int((~finite).sum())} NaN or inf pixel(s), first in band {band}"
        )
    empty = [b for b, plane in zip(BANDS, data, strict=True) if not plane.any()]
    if empty:
        raise CutoutError(
            f"{source}: band(s) {', '.join(empty)} are all zero: no data there (outside the "
            "survey's footprint in that band)"
        )
    return data


def read_cutout(path: str | Path, size: int | None = None) -> np.ndarray:
    """Read and validate one FITS cutout; returns (3, H, W) float32 nanomaggies."""
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False) as hdul:
            return cutout_from_hdul(hdul, str(path), size)
    except CutoutError:
        raise
    except FileNotFoundError as exc:
        raise CutoutError(f"{path}: no such file") from exc
    except Exception as exc:  # astropy raises OSError, ValueError, TypeError on broken files
        raise CutoutError(f"{path}: not a readable FITS file ({exc})") from exc


@dataclass
class IngestReport:
    """What an ingest wrote and what it left out."""

    n_written: int = 0
    skipped: list[dict] = field(default_factory=list)  # {"row", "file", "reason"}
    files: list[str] = field(default_factory=list)

    def write(self, path: Path, **extra) -> None:
        record = {"n_written": self.n_written, "n_skipped": len(self.skipped),
                  "skipped": self.skipped, "files": self.files, **extra}
        tmp = path.with_name(path.name + ".partial")
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        os.replace(tmp, path)


def ingest_fits(fits_dir: str | Path, catalog_path: str | Path, out_dir: str | Path,
                skip_bad: bool = False, overwrite: bool = False, progress: bool = True,
                objects_per_file: int | None = None) -> IngestReport:
    """Convert FITS cutouts + catalog into a survey folder (see the module docstring).

    Raises:
        CatalogError, CutoutError: a bad catalog or cutout (without ``skip_bad``).
    """
    from tqdm import tqdm

    from ml.survey_writer import SurveyWriter

    fits_dir, out_dir = Path(fits_dir), Path(out_dir)
    if not fits_dir.is_dir():
        raise CutoutError(f"{fits_dir} is not a folder of FITS cutouts")
    SurveyWriter.check_out_dir(out_dir, overwrite=overwrite)
    table = read_table(catalog_path)
    files_col = column(table, "file")
    if files_col is None:
        raise CatalogError(
            f"{catalog_path} has no 'file' column; it needs one naming each row's cutout "
            "(relative to the FITS folder)"
        )
    if len(table) == 0:
        raise CatalogError(f"{catalog_path} has no rows")
    cols = survey_columns(table, skip=("file",))
    cols.catalog["input_row"] = np.arange(len(table), dtype=np.int64)
    cols.extra_specs["input_row"] = (np.dtype(np.int64), ())
    paths = [fits_dir / str(name).strip() for name in np.asarray(files_col).astype(str)]
    if not skip_bad:  # fail before reading any pixels when the table already shows a problem
        missing = [row for row, p in enumerate(paths) if not p.is_file()]
        problems = sorted(cols.bad_rows.items()) + [(row, f"no such file {paths[row]}")
                                                    for row in missing]
        if problems:
            row, reason = min(problems)
            raise CatalogError(
                f"catalog row {row} ({paths[row].name}): {reason}; {len(problems)} problem(s) "
                "in all. Fix them, or pass --skip-bad to leave such rows out"
            )

    report = IngestReport()

    def reject(row: int, reason: str) -> None:
        if not skip_bad:
            raise CutoutError(
                f"catalog row {row} ({paths[row].name}): {reason}; fix it, or pass --skip-bad "
                "to leave such rows out"
            )
        report.skipped.append({"row": row, "file": str(paths[row]), "reason": reason})

    kwargs = {} if objects_per_file is None else {"objects_per_file": objects_per_file}
    writer = None
    images: list[np.ndarray] = []
    rows: list[int] = []
    size: int | None = None

    def flush() -> None:
        if rows:
            assert writer is not None
            writer.append(np.stack(images), cols.rows(np.asarray(rows)))
            images.clear()
            rows.clear()

    try:
        for row in tqdm(range(len(table)), desc="ingesting cutouts", unit="obj",
                        disable=not progress):
            if row in cols.bad_rows:
                reject(row, f"catalog: {cols.bad_rows[row]}")
                continue
            try:
                image = read_cutout(paths[row], size)
            except CutoutError as exc:
                reject(row, str(exc).removeprefix(f"{paths[row]}: "))
                continue
            if writer is None:
                size = image.shape[1]
                writer = SurveyWriter(out_dir, image_size=size, extra_columns=cols.extra_specs,
                                      overwrite=overwrite, **kwargs)
            images.append(image)
            rows.append(row)
            if len(rows) >= BATCH_OBJECTS:
                flush()
        if writer is None:
            raise CutoutError(f"no usable cutout among the {len(table)} catalog rows; nothing written")
        flush()
        report.files = [p.name for p in writer.close()]
        report.n_written = writer.n_written
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    report.write(out_dir / REPORT_FILENAME, source=str(fits_dir), catalog=str(catalog_path))
    return report
