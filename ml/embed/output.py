"""The output folder of ``galsearch embed``: what is finished, what is not, and how we know.

| file | written | holds |
|---|---|---|
| ``embed_state.json`` | once, when the folder is created | the run's identity: checkpoint (path, sha256), survey (path, fingerprint), N, dims, dtype, chunk size |
| ``prehead.npy``, ``head.npy`` | created up front (``np.lib.format.open_memmap``), rows filled chunk by chunk | (N, D) float16 (or float32), row = object_id |
| ``chunks/NNNNNNNN.json`` | after a chunk's rows are flushed to disk | the chunk's range and the SHA-256 of its rows in each array |
| ``embed_manifest.json`` | last, once every chunk is done | the contract ``galsearch index`` reads (docs/DESIGN.md, Search) |

A chunk counts as done only when its marker exists *and* its rows still hash to the marker's
checksums: the marker is written atomically after the rows are flushed, so a chunk killed while
its rows were being written has no marker, and rows damaged afterwards fail their checksum and
are computed again. Markers are one file per chunk so that ranks under ``torchrun`` never write
the same file, and a resumed run may use any number of ranks.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.atomic_json import fsync_dir, read_json, write_json_atomic

STATE_FILE = "embed_state.json"
MANIFEST_FILE = "embed_manifest.json"  # read by `galsearch index` (ml.index.cli.EMBED_MANIFEST)
CHUNKS_DIR = "chunks"
REPRESENTATIONS = ("prehead", "head")
DTYPES = ("float16", "float32")
STATE_FORMAT = "galsearch-embed-state"
STATE_VERSION = 1
# the run's identity: a folder started with other values holds other embeddings
IDENTITY_KEYS = ("checkpoint_sha256", "survey_fingerprint", "n", "dims", "dtype", "chunk_size")


class EmbedStateError(RuntimeError):
    """The output folder cannot be resumed as it is; the message says why and what to do."""


@dataclass(frozen=True)
class EmbedPlan:
    """What an embedding run computes and how it cuts the work into chunks."""

    checkpoint_path: str  # absolute
    checkpoint_sha256: str
    survey_path: str  # absolute
    survey_fingerprint: str
    n: int  # objects
    dims: dict[str, int]  # representation -> D
    dtype: str = "float16"
    chunk_size: int = 4096  # objects per chunk: the unit of flushing and resuming

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {self.chunk_size}")

    @property
    def n_chunks(self) -> int:
        return -(-self.n // self.chunk_size)

    def chunk_range(self, chunk: int) -> tuple[int, int]:
        """Object ids [lo, hi) of a chunk."""
        lo = chunk * self.chunk_size
        return lo, min(lo + self.chunk_size, self.n)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EmbedPlan:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def rows_sha256(rows: np.ndarray) -> str:
    """SHA-256 of a block of rows' bytes (C order, as stored)."""
    return hashlib.sha256(np.ascontiguousarray(rows).tobytes()).hexdigest()


class EmbedOutput:
    """An embedding output folder opened for writing (see the module docstring).

    Open with :meth:`prepare` (rank 0, creates or checks) then :meth:`attach` (every rank).
    """

    def __init__(self, folder: Path, plan: EmbedPlan) -> None:
        self.folder = folder
        self.plan = plan

    # -- creating and checking ---------------------------------------------------------------
    @classmethod
    def prepare(cls, folder: str | os.PathLike, plan: EmbedPlan, restart: bool = False,
                ) -> EmbedOutput:
        """Create the folder for ``plan``, or check that it holds this plan's run.

        Args:
            folder: the output folder.
            plan: the run.
            restart: a folder holding another run (other checkpoint, survey, dims, dtype or
                chunk size) is emptied and started afresh instead of refused.

        Raises:
            EmbedStateError: the folder holds another run (without ``restart``), foreign files,
                a damaged state file or damaged arrays.
        """
        folder = Path(folder)
        state_path = folder / STATE_FILE
        try:
            state = read_json(state_path)
        except ValueError as exc:
            raise EmbedStateError(
                f"{exc}: the embedding state of {folder} is damaged; pass --overwrite to start "
                "afresh") from exc
        if state is None:
            cls._check_no_foreign_files(folder)
            return cls._create(folder, plan)
        if state.get("format") != STATE_FORMAT or state.get("version") != STATE_VERSION:
            raise EmbedStateError(f"{state_path} is not a galsearch embed state (format "
                                  f"{state.get('format')!r}, version {state.get('version')!r}); "
                                  "pass --overwrite to start afresh")
        try:
            recorded = EmbedPlan.from_json(state["plan"])
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbedStateError(f"{state_path} lacks parts of the run's description ({exc!r});"
                                  " pass --overwrite to start afresh") from exc
        differ = [k for k in IDENTITY_KEYS if getattr(recorded, k) != getattr(plan, k)]
        if differ:
            if restart:
                clear(folder)
                return cls._create(folder, plan)
            details = "; ".join(f"{k}: folder {getattr(recorded, k)!r}, now {getattr(plan, k)!r}"
                                for k in differ)
            raise EmbedStateError(
                f"{folder} holds the embeddings of another run ({details}); choose another "
                "--out, or pass --overwrite to replace them")
        output = cls(folder, plan)
        output._check_arrays()
        return output

    @classmethod
    def attach(cls, folder: str | os.PathLike, plan: EmbedPlan) -> EmbedOutput:
        """Open a folder that :meth:`prepare` made ready (the other ranks)."""
        output = cls(Path(folder), plan)
        output._check_arrays()
        return output

    @staticmethod
    def _check_no_foreign_files(folder: Path) -> None:
        if not folder.exists():
            return
        ours = {STATE_FILE, MANIFEST_FILE, CHUNKS_DIR, *(f"{r}.npy" for r in REPRESENTATIONS)}
        foreign = sorted(p.name for p in folder.iterdir()
                         if p.name not in ours and not p.name.startswith("."))
        if foreign:
            raise EmbedStateError(
                f"{folder} is not empty ({', '.join(foreign[:5])}{' ...' if len(foreign) > 5 else ''})"
                " and holds no embedding run; choose a new or empty --out folder")

    @classmethod
    def _create(cls, folder: Path, plan: EmbedPlan) -> EmbedOutput:
        """A fresh folder: arrays allocated (sparse), no chunk done, then the state file."""
        clear(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CHUNKS_DIR).mkdir()
        for name in REPRESENTATIONS:
            array = np.lib.format.open_memmap(folder / f"{name}.npy", mode="w+",
                                              dtype=np.dtype(plan.dtype),
                                              shape=(plan.n, plan.dims[name]))
            array.flush()
            del array
        # the state last: a folder killed before this point has none and is simply recreated
        write_json_atomic(folder / STATE_FILE, {
            "format": STATE_FORMAT, "version": STATE_VERSION, "plan": plan.to_json(),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        })
        return cls(folder, plan)

    def _check_arrays(self) -> None:
        for name in REPRESENTATIONS:
            path = self.folder / f"{name}.npy"
            want = (self.plan.n, self.plan.dims[name])
            try:
                array = np.load(path, mmap_mode="r")
            except FileNotFoundError:
                raise EmbedStateError(f"{path} is missing; pass --overwrite to start afresh"
                                      ) from None
            except (ValueError, OSError) as exc:
                raise EmbedStateError(f"{path} is damaged ({exc}); pass --overwrite to start "
                                      "afresh") from exc
            if array.shape != want or array.dtype != np.dtype(self.plan.dtype):
                raise EmbedStateError(
                    f"{path} holds {array.shape} {array.dtype} but the run needs {want} "
                    f"{self.plan.dtype}; pass --overwrite to start afresh")

    # -- chunks ------------------------------------------------------------------------------
    def _marker(self, chunk: int) -> Path:
        return self.folder / CHUNKS_DIR / f"{chunk:08d}.json"

    def done_chunks(self, chunks: list[int] | range | None = None,
                    verify: bool = True) -> tuple[set[int], list[int]]:
        """Which of ``chunks`` (default: all) are done, and which had a marker that failed.

        Args:
            chunks: chunk indices to look at.
            verify: re-hash the rows of every marked chunk (reads them once).

        Returns:
            (done chunk indices, chunks whose marker was unreadable or whose rows no longer
            match it: they are to be computed again).
        """
        chunks = range(self.plan.n_chunks) if chunks is None else chunks
        done: set[int] = set()
        bad: list[int] = []
        arrays = ({name: np.load(self.folder / f"{name}.npy", mmap_mode="r")
                   for name in REPRESENTATIONS} if verify else {})
        for chunk in chunks:
            try:
                marker = read_json(self._marker(chunk))
            except ValueError:
                bad.append(chunk)
                continue
            if marker is None:
                continue
            lo, hi = self.plan.chunk_range(chunk)
            ok = marker.get("start") == lo and marker.get("stop") == hi
            if ok and verify:
                sums = marker.get("sha256", {})
                ok = all(sums.get(name) == rows_sha256(arrays[name][lo:hi])
                         for name in REPRESENTATIONS)
            (done.add if ok else bad.append)(chunk)
        return done, bad

    def forget(self, chunks: list[int]) -> None:
        """Drop the markers of chunks to compute again (and the manifest: no longer complete)."""
        if chunks:
            (self.folder / MANIFEST_FILE).unlink(missing_ok=True)
        for chunk in chunks:
            self._marker(chunk).unlink(missing_ok=True)

    def write_chunk(self, chunk: int, rows: dict[str, np.ndarray]) -> None:
        """Write a chunk's rows, flush them to disk, then mark the chunk done.

        Args:
            chunk: the chunk index.
            rows: representation -> (hi - lo, D) values (cast to the run's dtype here).
        """
        lo, hi = self.plan.chunk_range(chunk)
        sums = {}
        for name in REPRESENTATIONS:
            values = np.asarray(rows[name], dtype=np.dtype(self.plan.dtype))
            if values.shape != (hi - lo, self.plan.dims[name]):
                raise ValueError(f"chunk {chunk} {name}: rows of shape {values.shape}, expected "
                                 f"{(hi - lo, self.plan.dims[name])}")
            path = self.folder / f"{name}.npy"
            # a map of just this chunk's rows: flush() syncs those pages only
            header = np.load(path, mmap_mode="r").offset  # bytes of the .npy header
            row_bytes = self.plan.dims[name] * values.itemsize
            block = np.memmap(path, dtype=values.dtype, mode="r+",
                              offset=header + lo * row_bytes, shape=values.shape)
            block[:] = values
            block.flush()
            del block
            sums[name] = rows_sha256(values)
        write_json_atomic(self._marker(chunk), {"chunk": chunk, "start": lo, "stop": hi,
                                                "sha256": sums})

    # -- finishing -----------------------------------------------------------------------------
    def write_manifest(self, seconds: float | None = None) -> Path:
        """The manifest ``galsearch index`` reads; refuses while a chunk is not done."""
        done, bad = self.done_chunks(verify=False)
        missing = sorted(set(range(self.plan.n_chunks)) - done)
        if missing or bad:
            raise EmbedStateError(
                f"{len(missing)} of {self.plan.n_chunks} chunks of {self.folder} are not done "
                f"(first: {missing[:5]}); run `galsearch embed` again to finish them")
        plan = self.plan
        return write_json_atomic(self.folder / MANIFEST_FILE, {
            "checkpoint": {"path": plan.checkpoint_path, "sha256": plan.checkpoint_sha256},
            "survey": {"path": plan.survey_path, "fingerprint": plan.survey_fingerprint},
            "n": plan.n,
            "dims": dict(plan.dims),
            "dtype": plan.dtype,
            "chunk_size": plan.chunk_size,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "seconds": None if seconds is None else round(seconds, 3),
        })

    @property
    def complete(self) -> bool:
        return (self.folder / MANIFEST_FILE).exists()


def clear(folder: Path) -> None:
    """Remove what an embedding run wrote in ``folder`` (the manifest first)."""
    if not folder.exists():
        return
    (folder / MANIFEST_FILE).unlink(missing_ok=True)
    (folder / STATE_FILE).unlink(missing_ok=True)
    fsync_dir(folder)
    shutil.rmtree(folder / CHUNKS_DIR, ignore_errors=True)
    for name in REPRESENTATIONS:
        (folder / f"{name}.npy").unlink(missing_ok=True)

