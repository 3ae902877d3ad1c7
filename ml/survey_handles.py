"""The open HDF5 files and datasets of one survey (:class:`ml.survey.Survey`'s reads go through
them): opened on first use, bounded in number, and safe across fork and pickling.

Each open file has a small HDF5 chunk cache, at most :data:`MAX_OPEN_FILES` files stay open
(least recently used dropped first) and at most :data:`MAX_OPEN_DATASETS` of the datasets read
by row. A dataset stored as plain arrays is read through a memory map of its file instead
(:mod:`ml.survey_mapped`; which datasets allow it is decided once per dataset).

Threads may share one :class:`SurveyHandles` (a lock guards the bookkeeping; h5py serialises
the reads themselves). A process that did not open the handles (a forked child, an unpickled
copy in a DataLoader worker) opens its own: HDF5 handles must not cross processes.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import h5py

from ml.survey_format import SurveyError
from ml.survey_mapped import MappedRows, map_file, mapped_rows

# Per-dataset HDF5 chunk cache of each open file: ~14 image chunks of (1, 3, 152, 152) float32.
# HDF5 keeps one such cache per open dataset, so it is kept small and few files stay open.
CHUNK_CACHE_BYTES = 4 * 1024 * 1024
CHUNK_CACHE_SLOTS = 1999  # a prime ~100x the chunks that fit, as the HDF5 manual advises
MAX_OPEN_FILES = 8  # a 1M-object file's chunk index alone can fill tens of MB of metadata cache
# datasets kept open for row reads (read_images, catalog rows): opening one costs more than a
# cutout's read (0.8 ms for the images of a 1M-object virtual dataset, whose ~1,000 mappings
# are parsed at each open), and an open dataset keeps its chunk cache; a bound on how many,
# since each may hold up to CHUNK_CACHE_BYTES of chunks
MAX_OPEN_DATASETS = 16


class SurveyHandles:
    """The HDF5 handles and memory maps of the files ``files`` (a survey's, in order)."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files
        self._start()

    def _start(self) -> None:
        """Nothing open, in this process."""
        self._handles: OrderedDict[int, h5py.File] = OrderedDict()
        self._datasets: OrderedDict[tuple[int, str], h5py.Dataset] = OrderedDict()
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._reset_maps()

    def _reset_maps(self) -> None:
        # memory maps of the files (kept across fork: a read-only map stays valid in the
        # child) and each dataset read through one (None: h5py reads it; ml/survey_mapped.py)
        self._maps: dict[int, Any] = {}
        self._mapped: dict[tuple[int, str], MappedRows | None] = {}

    def file(self, index: int) -> h5py.File:
        """File ``index``, opened if it is not (the MAX_OPEN_FILES last used stay open)."""
        if os.getpid() != self._pid:
            # inherited through fork: HDF5 handles (and a lock another thread may have held)
            # must not be shared across processes
            self._handles = OrderedDict()
            self._datasets = OrderedDict()
            self._lock = threading.Lock()
            self._pid = os.getpid()
        with self._lock:
            f = self._handles.get(index)
            if f is not None:
                self._handles.move_to_end(index)
                return f
            f = self.open(self.files[index])
            self._handles[index] = f
            while len(self._handles) > MAX_OPEN_FILES:
                # dropped, not closed: a thread still reading it keeps it open until it is done
                dropped, _ = self._handles.popitem(last=False)
                for key in [key for key in self._datasets if key[0] == dropped]:
                    del self._datasets[key]
            return f

    def dataset(self, index: int, key: str) -> h5py.Dataset:
        """Dataset ``key`` of file ``index``, kept open (the MAX_OPEN_DATASETS last used)."""
        f = self.file(index)  # after a fork: reopens, and forgets the parent's datasets
        with self._lock:
            ds = self._datasets.get((index, key))
            if ds is not None:
                self._datasets.move_to_end((index, key))
                return ds
        ds = f[key]
        with self._lock:
            if self._handles.get(index) is f:  # not dropped meanwhile by another thread
                self._datasets[(index, key)] = ds
                while len(self._datasets) > MAX_OPEN_DATASETS:
                    self._datasets.popitem(last=False)
        return ds

    @staticmethod
    def open(path: Path) -> h5py.File:
        """One survey file, read-only, with the bounded chunk cache.

        Raises:
            SurveyError: the file disappeared, or is not a readable HDF5 file.
        """
        try:
            return h5py.File(path, "r", rdcc_nbytes=CHUNK_CACHE_BYTES,
                             rdcc_nslots=CHUNK_CACHE_SLOTS)
        except FileNotFoundError as exc:
            raise SurveyError(f"{path} disappeared since the survey was opened") from exc
        except OSError as exc:
            raise SurveyError(
                f"cannot read {path}: not an HDF5 file, or truncated by an interrupted copy "
                f"({exc}); copy or regenerate the file"
            ) from exc

    def rows(self, index: int, key: str) -> MappedRows | None:
        """Dataset ``key`` of file ``index`` read through a memory map, if its layout allows."""
        found = self._mapped.get((index, key), False)
        if found is not False:
            return found
        ds = self.dataset(index, key)
        with self._lock:
            if index not in self._maps:
                self._maps[index] = map_file(self.files[index])
            found = self._mapped[(index, key)] = mapped_rows(ds, self._maps[index])
        return found

    def close(self) -> None:
        """Close every open file (they are reopened when read again)."""
        with self._lock:
            self._reset_maps()  # unmapped once no array read from them is left
            self._datasets = OrderedDict()
            for f in self._handles.values():
                f.close()
            self._handles = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        return {"files": self.files}  # handles, maps and the lock stay in this process

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.files = state["files"]
        self._start()
