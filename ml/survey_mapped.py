"""Rows of an HDF5 dataset read through a memory map of its file, bypassing HDF5's read path.

HDF5 spends tens of microseconds setting up each read (a selection, the chunk cache, type
conversion), whatever its size: reading the ``ra`` and ``dec`` of a candidate page's 48
scattered rows of a 1M-object survey took 0.6 ms a column as one point selection, more than
the rows' search. When a dataset's bytes lie in its file as plain arrays (contiguous layout, or
chunks split along the first axis only, with no filter: no compression, shuffle or checksum),
the rows are numpy views of a read-only memory map of the file, and a read is a numpy gather
(about 10 us for those 48 rows). The pages are the operating system's page cache, shared by
every process that maps the file (gunicorn's workers).

Anything else (rows larger than :data:`MAX_MAPPED_ROW_BYTES`, such as cutouts; virtual
datasets, external storage, filters, chunks that are missing or split across the trailing axes,
or more chunks than :data:`MAX_MAPPED_CHUNKS`, which would take long to list) is left to h5py:
:func:`mapped_rows` answers None. Survey files are written to a temporary name and renamed when
complete, never changed in place, so a map stays valid (a file replaced by a new one keeps its
old bytes mapped, as h5py keeps its open handle; a file truncated in place by another program
would end the reading process with SIGBUS where h5py would raise an error).
"""

from __future__ import annotations

import mmap
from pathlib import Path

import h5py
import numpy as np

# rows larger than this (cutouts) are left to h5py: a map faults their pages in 4 KiB at a time
# (random batches of 256 cutouts: 4,900 objects/s against h5py's 7,300), and every page read
# counts in the process's resident memory (reading a 1.4 GB survey at random left 1.4 GB in
# the reader's RSS); catalog rows are a few bytes, and a column a few MB per million objects
MAX_MAPPED_ROW_BYTES = 256
# listing a dataset's chunks costs ~1.7 us a chunk (HDF5 2.0): a 1M-object file's images,
# one chunk per object, would take ~2 s at the first read; such datasets are read by h5py
MAX_MAPPED_CHUNKS = 65_536


def map_file(path: Path) -> mmap.mmap:
    """A read-only memory map of the whole file."""
    with open(path, "rb") as f:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


class MappedRows:
    """The rows of one dataset as views of a file's memory map.

    Args:
        buffer: the memory map of the dataset's file.
        dtype: the dataset's type as stored (byte order included).
        shape: the dataset's shape.
        chunk_rows: rows per chunk (the dataset's length for a contiguous one).
        offsets: byte offset of each chunk in the file, in row order.
    """

    def __init__(self, buffer: mmap.mmap, dtype: np.dtype, shape: tuple[int, ...],
                 chunk_rows: int, offsets: list[int]) -> None:
        self.dtype = np.dtype(dtype)
        self.shape = shape
        self.chunk_rows = chunk_rows
        count = chunk_rows * int(np.prod(shape[1:], dtype=np.int64))
        self._chunks = [np.frombuffer(buffer, dtype=self.dtype, count=count, offset=offset)
                        .reshape(chunk_rows, *shape[1:]) for offset in offsets]

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (int64, any order, repeats allowed) as a new array."""
        if len(self._chunks) == 1:
            return self._chunks[0].take(rows, axis=0)
        chunk, within = np.divmod(rows, self.chunk_rows)
        if rows.size and chunk[0] == chunk[-1] and (chunk == chunk[0]).all():
            return self._chunks[int(chunk[0])].take(within, axis=0)
        out = np.empty((rows.size, *self.shape[1:]), dtype=self.dtype)
        for c in np.unique(chunk):
            sel = chunk == c
            out[sel] = self._chunks[int(c)].take(within[sel], axis=0)
        return out

    def slice(self, lo: int, hi: int) -> np.ndarray:
        """Rows ``lo:hi`` as a new array."""
        first, last = lo // self.chunk_rows, (hi - 1) // self.chunk_rows
        if first == last:
            start = first * self.chunk_rows
            return self._chunks[first][lo - start:hi - start].copy()
        return self.take(np.arange(lo, hi, dtype=np.int64))


def mapped_rows(ds: h5py.Dataset, buffer: mmap.mmap) -> MappedRows | None:
    """``ds`` read through ``buffer`` (its file's memory map), or None when its bytes are not
    plain arrays in the file (module docstring)."""
    if ds.is_virtual or ds.external or ds.dtype.hasobject or ds.dtype.kind not in "biufS" \
            or ds.dtype.subdtype is not None or len(ds.shape) == 0 or ds.shape[0] == 0:
        return None
    row_bytes = ds.dtype.itemsize * int(np.prod(ds.shape[1:], dtype=np.int64))
    if row_bytes > MAX_MAPPED_ROW_BYTES or ds.id.get_create_plist().get_nfilters():
        return None
    if ds.chunks is None:
        offset = ds.id.get_offset()
        if offset is None or offset + ds.shape[0] * row_bytes > len(buffer):
            return None  # never written (HDF5 allocates contiguous storage lazily)
        return MappedRows(buffer, ds.dtype, ds.shape, ds.shape[0], [offset])
    if tuple(ds.chunks[1:]) != tuple(ds.shape[1:]):
        return None  # a chunk holds part of a row
    chunk_rows = ds.chunks[0]
    n_chunks = -(-ds.shape[0] // chunk_rows)
    if n_chunks > MAX_MAPPED_CHUNKS or ds.id.get_num_chunks() != n_chunks:
        return None  # too many to list, or some never written (they read as the fill value)
    offsets = [-1] * n_chunks
    chunk_bytes = chunk_rows * row_bytes

    def note(info: h5py.h5d.StoreInfo) -> None:
        if info.size == chunk_bytes and info.filter_mask == 0 and info.byte_offset is not None:
            offsets[info.chunk_offset[0] // chunk_rows] = info.byte_offset

    ds.id.chunk_iter(note)
    if min(offsets) < 0 or max(offsets) + chunk_bytes > len(buffer):
        return None
    return MappedRows(buffer, ds.dtype, ds.shape, chunk_rows, offsets)
