"""Read a survey folder lazily: object ids, catalog columns and batched image reads.

A survey is a folder of HDF5 files in the format of :mod:`ml.survey_format` (``*.h5`` sorted by
name; ``truth.h5``, hidden files and unfinished ``*.h5.tmp`` files are not survey files). Object
``i`` is row ``i`` of the concatenation of the files, so ``offsets[k]`` is the first object id of
file ``k`` and ``offsets[-1] == n``.

Opening a :class:`Survey` reads only the files' headers and checks every key's shape and dtype
(a :class:`SurveyError` names the file, the key and what to do); pixels are read on demand, and
:meth:`Survey.validate_pixels` scans them chunk by chunk for NaN/inf. Nothing ever loads the
whole survey: image reads are grouped by file, read in ascending row order in contiguous runs
(scattered rows in one point selection) and put back in the caller's order.

The files are opened through :class:`ml.survey_handles.SurveyHandles`: lazily, a bounded number
at a time with a bounded chunk cache each, and again by a process that did not open them, so a
Survey is picklable and fork-safe (DataLoader workers). Threads may share one Survey (h5py
serialises the reads themselves).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

import numpy as np

from ml.survey_format import REQUIRED_KEYS, TRUTH_FILENAME, SurveyError, check_file
from ml.survey_handles import SurveyHandles
from ml.survey_truth import SurveyTruth, read_truth

__all__ = ["Survey", "SurveyBatch", "SurveyError", "SurveyTruth"]

PIXEL_SCAN_OBJECTS = 256  # images per read when scanning pixels (~71 MB at 152 px)
# catalog reads: rows closer than this are read as one slice rather than separately
CATALOG_GAP_ROWS = 4096
# runs of fewer rows than this with holes between them are read as points, not as a slice
POINT_READ_MAX_ROWS = 64
# ... and only rows up to this size: HDF5's point selection costs per byte, not per row. 48
# scattered rows of 12 bytes took 0.07 ms as points and 0.2 ms as slices, of 4 KiB 3.4 ms
# against 0.23 ms; 128 scattered cutouts (152 px) took 408 ms as points and 12 ms as slices
# (the training loader's batch: it had made training wait on reading)
POINT_READ_MAX_ROW_BYTES = 256
# a run of rows this large is read straight into the output (``read_direct``: no copy, but
# ~40 us of selection set-up a call); smaller runs are sliced (``ds[lo:hi]``, ~4 us) and copied:
# a page's 48 scattered catalog rows took 10 ms the first way and 0.5 ms the second
DIRECT_READ_MIN_BYTES = 1 << 20


class SurveyBatch(NamedTuple):
    """One batch of consecutive objects from :meth:`Survey.iter_batches`."""

    object_ids: np.ndarray  # (B,) int64
    images: np.ndarray | None  # (B, 3, H, W) float32 nanomaggies, None when not requested
    catalog: dict[str, np.ndarray]  # column -> (B, ...) array


def survey_files(folder: Path) -> list[Path]:
    """The survey files of a folder in object-id order (name order)."""
    return sorted(
        p for p in folder.glob("*.h5")
        if p.is_file() and not p.name.startswith(".") and p.name != TRUTH_FILENAME
    )


class Survey:
    """A survey folder opened lazily.

    Args:
        path: the survey folder.
        check_pixels: also scan every pixel for NaN/inf now (reads the whole survey once).

    Raises:
        SurveyError: the folder is missing, holds no survey file, or a file is unreadable or does
            not follow the survey format.
    """

    def __init__(self, path: str | os.PathLike, check_pixels: bool = False) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise SurveyError(f"survey folder {self.path} does not exist")
        if not self.path.is_dir():
            raise SurveyError(
                f"{self.path} is not a folder; a survey is a folder of HDF5 files, "
                "pass the folder that holds them"
            )
        self.files: list[Path] = survey_files(self.path)
        if not self.files:
            unfinished = sorted(self.path.glob("*.h5.tmp"))
            hint = (
                f" It holds {len(unfinished)} unfinished *.h5.tmp file(s): the run that wrote "
                "them was interrupted; run it again."
                if unfinished else
                " Create one with `galsearch simulate` or `galsearch ingest`."
            )
            raise SurveyError(f"no survey files (*.h5) in {self.path}.{hint}")
        self._h5 = SurveyHandles(self.files)
        counts, self.image_shape, self.column_specs = self._read_headers()
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.n = int(self.offsets[-1])
        self.columns: tuple[str, ...] = tuple(self.column_specs)
        if check_pixels:
            self.validate_pixels()

    # -- headers ---------------------------------------------------------------------------
    def _read_headers(self):
        counts: list[int] = []
        image_shape: tuple[int, int, int] | None = None
        first_file: Path | None = None
        specs: dict[str, tuple[np.dtype, tuple[int, ...]]] | None = None
        for index, path in enumerate(self.files):
            f = self._h5.file(index)
            n, shape, file_specs = check_file(f, path)
            if image_shape is None:
                image_shape, first_file = shape, path
            elif shape != image_shape:
                raise SurveyError(
                    f"{path.name} holds {shape[1]}x{shape[2]} images but {first_file.name} holds "
                    f"{image_shape[1]}x{image_shape[2]}; every file of a survey needs one "
                    "image size"
                )
            # optional columns count only when every file has them with the same layout
            if specs is None:
                specs = file_specs
            else:
                specs = {k: v for k, v in specs.items() if file_specs.get(k) == v}
            counts.append(n)
        assert image_shape is not None and specs is not None
        required = [k for k in REQUIRED_KEYS if k != "images"]
        ordered = {k: specs[k] for k in required}
        ordered.update({k: v for k, v in sorted(specs.items()) if k not in ordered})
        return counts, image_shape, ordered

    def close(self) -> None:
        """Close every open file (the survey reopens them when read again)."""
        self._h5.close()

    def __enter__(self) -> Survey:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        _, h, w = self.image_shape
        return f"Survey({str(self.path)!r}, n={self.n}, files={len(self.files)}, images={h}x{w})"

    # -- ids -------------------------------------------------------------------------------
    def _ids(self, object_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        ids = np.asarray(object_ids)
        if ids.dtype.kind not in "iu":
            if ids.size == 0:
                return np.zeros(0, dtype=np.int64)
            raise TypeError(f"object ids must be integers, got dtype {ids.dtype}")
        ids = ids.astype(np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.n):
            bad = int(ids[(ids < 0) | (ids >= self.n)][0])
            raise IndexError(f"object id {bad} is outside this survey's range [0, {self.n})")
        return ids

    def locate(self, object_ids: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(file index, row in that file) of each object id, as two int64 arrays."""
        ids = self._ids(object_ids)
        file_index = np.searchsorted(self.offsets, ids, side="right") - 1
        return file_index.astype(np.int64), ids - self.offsets[file_index]

    # -- reads -----------------------------------------------------------------------------
    def _gather(self, key: str, ids: np.ndarray, trailing: tuple[int, ...], dtype: np.dtype,
                gap: int) -> np.ndarray:
        """Rows ``ids`` of dataset ``key`` across files, in the order of ``ids``.

        A dataset stored as plain arrays in its file is read through a memory map of the file
        (:mod:`ml.survey_mapped`: a numpy gather, no HDF5 call). Otherwise h5py reads
        it: unique ids are read in ascending order, one contiguous slice per run of rows whose gaps
        are at most ``gap`` (a slice read costs one HDF5 call; a gap costs reading the rows in
        between), except that sparse small rows (runs of one, or small runs with holes, of at
        most :data:`POINT_READ_MAX_ROW_BYTES` a row: catalog values, not cutouts) are read in
        one point selection (a candidate page's 48 scattered rows of a 1M survey: 0.2 ms a
        column instead of 0.55 ms); then put back in the caller's order, duplicates included.
        """
        if ids.size == 1:  # one object (a cutout): one slice read, nothing to sort
            [k], [row] = self.locate(ids)
            mapped = self._h5.rows(int(k), key)
            block = (self._h5.dataset(int(k), key)[int(row):int(row) + 1] if mapped is None
                     else mapped.slice(int(row), int(row) + 1))
            return block if block.dtype == dtype else block.astype(dtype)
        unique, inverse = np.unique(ids, return_inverse=True)
        out = np.empty((unique.size, *trailing), dtype=dtype)
        row_bytes = out.itemsize * int(np.prod(trailing, dtype=np.int64))
        file_index, rows = self.locate(unique)
        for k in np.unique(file_index):
            sel = np.flatnonzero(file_index == k)  # contiguous in `unique`, rows ascending
            file_rows = rows[sel]
            mapped = self._h5.rows(int(k), key)
            if mapped is not None:
                out[sel] = mapped.take(file_rows)
                continue
            ds = self._h5.dataset(int(k), key)
            breaks = np.flatnonzero(np.diff(file_rows) > gap + 1) + 1
            runs = np.split(np.arange(sel.size), breaks)
            # rows apart from the others (a run of one, or of a few with holes between): all of
            # them in one point selection (~3 us a row) instead of a slice read each (~4 us a
            # call, plus the rows in between)
            sparse = [row_bytes <= POINT_READ_MAX_ROW_BYTES and (
                          run.size == 1 or (run.size < POINT_READ_MAX_ROWS and
                                            file_rows[run[-1]] - file_rows[run[0]] >= run.size))
                      for run in runs]
            if sum(sparse) > 1:
                points = np.concatenate([run for run, p in zip(runs, sparse, strict=True) if p])
                out[sel[points]] = ds[file_rows[points]]
                runs = [run for run, p in zip(runs, sparse, strict=True) if not p]
            for run in runs:
                lo, hi = int(file_rows[run[0]]), int(file_rows[run[-1]]) + 1
                if hi - lo == run.size:  # no holes
                    into = np.s_[sel[run[0]]:sel[run[-1]] + 1]
                    if run.size * row_bytes >= DIRECT_READ_MIN_BYTES:
                        ds.read_direct(out, np.s_[lo:hi], into)
                    else:
                        out[into] = ds[lo:hi]
                else:
                    block = ds[lo:hi]
                    out[sel[run]] = block[file_rows[run] - lo]
        if unique.size == ids.size and np.array_equal(unique, ids):
            return out
        return out[inverse.reshape(-1)]

    def read_images(self, object_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Images of the given objects, in the given order (duplicates allowed).

        Returns:
            (len(object_ids), 3, H, W) float32, g, r, z in nanomaggies.
        """
        ids = self._ids(object_ids)
        return self._gather("images", ids, self.image_shape, np.dtype(np.float32), gap=0)

    def read_column(self, name: str,
                    object_ids: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """One catalog column, for every object or for the given ids in their order."""
        dtype, trailing = self._spec(name)
        if object_ids is None:
            out = np.empty((self.n, *trailing), dtype=dtype)
            for k in range(len(self.files)):
                lo, hi = int(self.offsets[k]), int(self.offsets[k + 1])
                if hi > lo:
                    self._h5.file(k)[name].read_direct(out, np.s_[0:hi - lo], np.s_[lo:hi])
            return out
        return self._gather(name, self._ids(object_ids), trailing, dtype, gap=CATALOG_GAP_ROWS)

    def catalog(self, columns: Sequence[str] | None = None,
                object_ids: Sequence[int] | np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Several catalog columns (all by default) as name -> array."""
        names = self.columns if columns is None else tuple(columns)
        return {name: self.read_column(name, object_ids) for name in names}

    def _spec(self, name: str) -> tuple[np.dtype, tuple[int, ...]]:
        spec = self.column_specs.get(name)
        if spec is None:
            raise KeyError(
                f"{name!r} is not a catalog column of {self.path}; columns: {', '.join(self.columns)}"
            )
        return spec

    def iter_batches(self, batch_size: int, columns: Sequence[str] = (), start: int = 0,
                     stop: int | None = None, progress: bool = False,
                     images: bool = True) -> Iterator[SurveyBatch]:
        """Consecutive objects ``start <= id < stop`` in batches of ``batch_size``.

        Memory stays at about one batch: each batch is read with slice reads (split at file
        boundaries) into freshly allocated arrays that the caller may keep.

        Args:
            batch_size: objects per batch (the last one may be shorter).
            columns: catalog columns to read with each batch.
            start, stop: object id range (stop defaults to ``n``).
            progress: show a tqdm progress bar.
            images: read the images (False reads catalog columns only).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        stop = self.n if stop is None else int(stop)
        if not 0 <= start <= stop <= self.n:
            raise IndexError(f"start={start}, stop={stop} outside this survey's range [0, {self.n}]")
        specs = {name: self._spec(name) for name in columns}
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=stop - start, unit="obj", desc=f"reading {self.path.name}")
        try:
            for lo in range(start, stop, batch_size):
                hi = min(lo + batch_size, stop)
                batch_images = (np.empty((hi - lo, *self.image_shape), dtype=np.float32)
                                if images else None)
                catalog = {name: np.empty((hi - lo, *trailing), dtype=dtype)
                           for name, (dtype, trailing) in specs.items()}
                for k, file_lo, file_hi, out_lo in self._spans(lo, hi):
                    f = self._h5.file(k)
                    src, dst = np.s_[file_lo:file_hi], np.s_[out_lo:out_lo + file_hi - file_lo]
                    if batch_images is not None:
                        f["images"].read_direct(batch_images, src, dst)
                    for name, values in catalog.items():
                        f[name].read_direct(values, src, dst)
                if bar is not None:
                    bar.update(hi - lo)
                yield SurveyBatch(np.arange(lo, hi, dtype=np.int64), batch_images, catalog)
        finally:
            if bar is not None:
                bar.close()

    def _spans(self, lo: int, hi: int) -> Iterator[tuple[int, int, int, int]]:
        """(file index, first row, end row, position in the batch) covering ids [lo, hi)."""
        k = int(np.searchsorted(self.offsets, lo, side="right")) - 1
        pos = lo
        while pos < hi:
            end = min(hi, int(self.offsets[k + 1]))
            if end > pos:
                yield k, pos - int(self.offsets[k]), end - int(self.offsets[k]), pos - lo
            pos = end
            k += 1

    # -- checks ----------------------------------------------------------------------------
    def validate_pixels(self, progress: bool = False) -> int:
        """Scan every image for NaN/inf, a chunk at a time.

        Returns:
            the number of objects checked.

        Raises:
            SurveyError: naming the first object with a non-finite pixel, its file and row.
        """
        for batch in self.iter_batches(PIXEL_SCAN_OBJECTS, progress=progress):
            finite = np.isfinite(batch.images).reshape(len(batch.object_ids), 3, -1).all(axis=2)
            if not finite.all():
                i, band = np.argwhere(~finite)[0]
                object_id = int(batch.object_ids[i])
                (k,), (row,) = self.locate([object_id])
                n_bad = int((~np.isfinite(batch.images[i])).sum())
                raise SurveyError(
                    f"object {object_id} (row {row} of {self.files[k].name}) has {n_bad} NaN or "
                    f"inf pixel(s), first in band {'grz'[band]}; fix or drop the object and "
                    "rewrite the file"
                )
        return self.n

    # -- truth and identity ----------------------------------------------------------------
    def truth(self) -> SurveyTruth | None:
        """The simulator's ground truth from ``truth.h5``, or None when the folder has none."""
        path = self.path / TRUTH_FILENAME
        if not path.exists():
            return None
        try:
            return read_truth(path, expected_n=self.n)
        except ValueError as exc:
            raise SurveyError(str(exc)) from exc

    def fingerprint(self) -> str:
        """A cheap, stable hash of the file names, sizes and object count.

        Search bundles store it to notice that the survey they were built from has changed.
        """
        record = {
            "n": self.n,
            "files": [[p.name, p.stat().st_size, int(self.offsets[k + 1] - self.offsets[k])]
                      for k, p in enumerate(self.files)],
        }
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]
