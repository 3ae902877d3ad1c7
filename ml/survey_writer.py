"""Write surveys in the survey format, batch by batch, never leaving a file that looks complete.

Every file is written under a ``.h5.tmp`` name and renamed to its final ``.h5`` name only when
the writer closes cleanly, so a killed run leaves temporary files that no reader takes for a
survey (readers only open ``*.h5``). The simulator and ``galsearch ingest`` both write through
this class.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

import h5py
import numpy as np

from ml.survey_format import (
    BANDS,
    CUTOUT_SIZE,
    IMAGE_CHUNK_OBJECTS,
    MAX_OBJECTS_PER_FILE,
    PIXEL_SCALE_ARCSEC,
    REQUIRED_KEYS,
)

FORMAT_VERSION = 1
CATALOG_CHUNK_ROWS = 65_536


class SurveyWriteError(ValueError):
    """A batch handed to :class:`SurveyWriter` does not fit the survey format."""


class SurveyWriter:
    """Append batches of cutouts and catalog rows to a new survey folder.

    Args:
        out_dir: folder to create (or an empty / survey-free existing folder).
        image_size: H = W of the cutouts in pixels.
        extra_columns: optional catalog columns, name -> (dtype, trailing shape).
        objects_per_file: rows per HDF5 file before a new one is started.
        prefix: file names are ``{prefix}-{index:05d}.h5``.
        overwrite: allow replacing existing ``*.h5`` survey files in ``out_dir``.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        image_size: int = CUTOUT_SIZE,
        extra_columns: dict[str, tuple[np.dtype | str, tuple[int, ...]]] | None = None,
        objects_per_file: int = MAX_OBJECTS_PER_FILE,
        prefix: str = "survey",
        overwrite: bool = False,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.image_size = int(image_size)
        self.objects_per_file = int(objects_per_file)
        if self.objects_per_file < 1:
            raise SurveyWriteError("objects_per_file must be at least 1")
        self.prefix = prefix
        self.columns: dict[str, tuple[np.dtype, tuple[int, ...]]] = {
            key: (dtype, trailing) for key, (trailing, dtype) in REQUIRED_KEYS.items()
            if key != "images"
        }
        for name, (dtype, trailing) in (extra_columns or {}).items():
            if name in REQUIRED_KEYS:
                raise SurveyWriteError(f"extra column {name!r} clashes with a required key")
            self.columns[name] = (np.dtype(dtype), tuple(trailing))

        existing = self.check_out_dir(self.out_dir, prefix, overwrite)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for path in existing:
            path.unlink()
        self._tmp_paths: list[Path] = []
        self._file: h5py.File | None = None
        self._rows_in_file = 0
        self.n_written = 0
        self._closed = False

    @staticmethod
    def check_out_dir(out_dir: str | os.PathLike, prefix: str = "survey",
                      overwrite: bool = False) -> list[Path]:
        """The survey files already in ``out_dir``; an error if there are any and not overwrite.

        Long jobs call this before they start, so they fail at once rather than at the end.
        """
        existing = sorted(Path(out_dir).glob(f"{prefix}-*.h5"))
        if existing and not overwrite:
            raise SurveyWriteError(
                f"{out_dir} already holds survey files ({existing[0].name}, ...); "
                "choose an empty folder or pass overwrite=True (--overwrite)"
            )
        return existing

    # -- file management -------------------------------------------------------------------
    def _final_path(self, tmp: Path) -> Path:
        return tmp.with_suffix("")  # survey-00000.h5.tmp -> survey-00000.h5

    def _open_next_file(self) -> h5py.File:
        if self._file is not None:
            self._file.close()
        index = len(self._tmp_paths)
        tmp = self.out_dir / f"{self.prefix}-{index:05d}.h5.tmp"
        self._tmp_paths.append(tmp)
        f = h5py.File(tmp, "w")
        size = self.image_size
        f.create_dataset(
            "images", shape=(0, 3, size, size), maxshape=(None, 3, size, size),
            dtype="float32", chunks=(IMAGE_CHUNK_OBJECTS, 3, size, size),
        )
        for name, (dtype, trailing) in self.columns.items():
            f.create_dataset(
                name, shape=(0, *trailing), maxshape=(None, *trailing), dtype=dtype,
                chunks=(min(CATALOG_CHUNK_ROWS, self.objects_per_file), *trailing),
            )
        f.attrs["galsearch_format"] = FORMAT_VERSION
        f.attrs["bands"] = ",".join(BANDS)
        f.attrs["pixel_scale_arcsec"] = PIXEL_SCALE_ARCSEC
        self._file = f
        self._rows_in_file = 0
        return f

    # -- writing ---------------------------------------------------------------------------
    def _check_batch(self, images: np.ndarray, catalog: dict[str, np.ndarray]) -> int:
        n = images.shape[0]
        if images.ndim != 4 or images.shape[1:] != (3, self.image_size, self.image_size):
            raise SurveyWriteError(
                f"images must have shape (n, 3, {self.image_size}, {self.image_size}); "
                f"got {images.shape}"
            )
        if not np.isfinite(images).all():
            bad = int(np.flatnonzero(~np.isfinite(images).reshape(n, -1).all(axis=1))[0])
            raise SurveyWriteError(
                f"image {bad} of the batch (object {self.n_written + bad}) has NaN or inf pixels"
            )
        missing = [name for name in self.columns if name not in catalog
                   and name in REQUIRED_KEYS]
        if missing:
            raise SurveyWriteError(f"catalog batch is missing required columns: {missing}")
        unknown = [name for name in catalog if name not in self.columns]
        if unknown:
            raise SurveyWriteError(
                f"catalog batch has columns the writer was not told about: {unknown}; "
                "declare them in extra_columns"
            )
        for name, values in catalog.items():
            _, trailing = self.columns[name]
            if np.shape(values) != (n, *trailing):
                raise SurveyWriteError(
                    f"column {name!r} has shape {np.shape(values)}; expected {(n, *trailing)}"
                )
        return n

    def append(self, images: np.ndarray, catalog: dict[str, np.ndarray]) -> None:
        """Append a batch: images (n, 3, H, W) in nanomaggies and n rows of each column."""
        if self._closed:
            raise SurveyWriteError("the writer is closed")
        images = np.asarray(images, dtype=np.float32)
        n = self._check_batch(images, catalog)
        start = 0
        while start < n:
            if self._file is None or self._rows_in_file >= self.objects_per_file:
                self._open_next_file()
            f = self._file
            assert f is not None
            take = min(n - start, self.objects_per_file - self._rows_in_file)
            lo, hi = self._rows_in_file, self._rows_in_file + take
            f["images"].resize(hi, axis=0)
            f["images"][lo:hi] = images[start:start + take]
            for name, (dtype, _) in self.columns.items():
                ds = f[name]
                ds.resize(hi, axis=0)
                if name in catalog:
                    ds[lo:hi] = np.asarray(catalog[name])[start:start + take].astype(dtype)
                else:  # optional column absent from this batch: fill with a missing value
                    ds[lo:hi] = _missing_value(dtype)
            self._rows_in_file = hi
            self.n_written += take
            start += take

    def close(self) -> list[Path]:
        """Flush and rename every file to its final name; returns the final paths."""
        if self._closed:
            return [self._final_path(p) for p in self._tmp_paths]
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.n_written == 0:
            raise SurveyWriteError("no objects were written; a survey needs at least one")
        finals = []
        for tmp in self._tmp_paths:
            final = self._final_path(tmp)
            os.replace(tmp, final)
            finals.append(final)
        self._closed = True
        return finals

    def abort(self) -> None:
        """Delete what was written; nothing is left that looks like a survey."""
        if self._file is not None:
            self._file.close()
            self._file = None
        for tmp in self._tmp_paths:
            tmp.unlink(missing_ok=True)
        self._closed = True

    def __enter__(self) -> SurveyWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _missing_value(dtype: np.dtype):
    if dtype.kind == "f":
        return np.nan
    if dtype.kind in "iu":
        return -1 if dtype.kind == "i" else 0
    return b""
