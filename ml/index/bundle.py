"""Search bundles: build one folder from representations, open it read-only and memory-mapped.

A bundle folder holds:

| file | content |
|---|---|
| ``manifest.json`` | format version, N, d, metric "cosine", dtype, representation, checkpoint sha256 (or "external"), survey path and fingerprint, index type and parameters, k and magnitude window of the arrays, build parameters and timings, created date, every file's size / sha256 / shape |
| ``vectors.npy`` | (N, d) float16, L2-normalised representations, row = object_id |
| ``index.faiss`` | the Faiss index (:mod:`ml.index.faiss_index`) |
| ``knn_ids.npy`` / ``knn_sims.npy`` | (N, k) int32 / float16: each object's top k by cosine, itself included |
| ``knn_magwin_ids.npy`` / ``knn_magwin_sims.npy`` | the same within \\|Δmag_r\\| < window (-1 / NaN padding) |
| ``mag_r.npy`` | (N,) float32 r magnitudes from the survey's ``flux`` (NaN where flux <= 0) |
| ``model.pt`` | the checkpoint that made the representations (absent for external ones) |

The bundle is written into a hidden ``.<name>.<pid>.partial`` folder beside the target and
renamed into place after the manifest (written last) is complete, so an interrupted build never
leaves a folder that looks like a bundle. :meth:`SearchBundle.open` checks the manifest
(:mod:`ml.index.manifest`), maps every array read-only and loads the index memory-mapped, so
server processes share one copy through the page cache.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import shutil
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from ml.index.faiss_index import FaissIndex, IndexParams, build_index, choose_params
from ml.index.knn import all_pairs_from_search, all_pairs_topk, exact_all_pairs_affordable
from ml.index.manifest import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    BundleError,
    BundleMismatchError,
    check_survey,
    file_record,
    read_manifest,
    sha256_file,
    verify_files,
    write_manifest,
)
from ml.index.query import KnnArrays, Searcher
from ml.index.vectors import (
    VECTOR_DTYPE,
    open_vectors,
    validate_representations,
    write_normalised,
)

VECTORS_FILE = "vectors.npy"
INDEX_FILE = "index.faiss"
MAG_FILE = "mag_r.npy"
MODEL_FILE = "model.pt"
KNN_FILES = ("knn_ids.npy", "knn_sims.npy")
KNN_MAGWIN_FILES = ("knn_magwin_ids.npy", "knn_magwin_sims.npy")
DEFAULT_K = 1000
DEFAULT_MAG_WINDOW = 0.5


def build_bundle(out: str | os.PathLike, representations: np.ndarray, mag_r: np.ndarray,
                 survey_path: str | os.PathLike, survey_fingerprint: str,
                 representation: str, checkpoint: str | os.PathLike | None = None,
                 checkpoint_sha256: str | None = None, source: dict[str, Any] | None = None,
                 index: str = "auto", index_overrides: dict[str, Any] | None = None,
                 k: int = DEFAULT_K, mag_window: float | None = DEFAULT_MAG_WINDOW,
                 overwrite: bool = False, progress: bool = True) -> Path:
    """Build a search bundle folder.

    Args:
        out: the bundle folder to create.
        representations: (N, d) array (memory map), row = object_id; validated and normalised.
        mag_r: (N,) r magnitudes (NaN allowed: such objects are in no magnitude window).
        survey_path, survey_fingerprint: the survey the rows belong to.
        representation: its name (``prehead``, ``head`` or ``external:<file>``).
        checkpoint: the checkpoint that produced the representations, copied as model.pt
            (None for external representations).
        checkpoint_sha256: its expected sha256 (checked when given).
        source: where the representations came from, recorded in the manifest.
        index: ``auto`` or an index kind (:func:`ml.index.faiss_index.choose_params`).
        index_overrides: IndexParams fields to override.
        k: neighbours per object in the similarity arrays (0: no arrays).
        mag_window: half-width of the magnitude window of the second pair of arrays (None: no
            windowed arrays).
        overwrite: replace an existing bundle at ``out``.
        progress: show progress bars.

    Returns:
        the bundle folder.
    """
    out = Path(out).absolute()
    if out.exists() and not overwrite:
        raise BundleError(f"{out} already exists; choose another --out or pass --overwrite")
    validate_representations(representations, n_objects=mag_r.shape[0],
                             source=str((source or {}).get("path", "representations")),
                             progress=progress)
    if k < 0:
        raise BundleError(f"k must be >= 0 (0: no similarity arrays), got {k}")
    if mag_window is not None and not mag_window > 0:
        raise BundleError(f"the magnitude window must be positive, got {mag_window}")
    if checkpoint is not None and checkpoint_sha256 is not None:
        actual = sha256_file(checkpoint)
        if actual != checkpoint_sha256:
            raise BundleMismatchError(
                f"the checkpoint {checkpoint} has sha256 {actual[:12]}... but the embeddings "
                f"were made by {checkpoint_sha256[:12]}...: re-run `galsearch embed` with this "
                "checkpoint, or point the embeddings at the checkpoint that made them"
            )
    _remove_stale_partials(out)
    tmp = out.parent / f".{out.name}.{os.getpid()}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        manifest = _write_contents(tmp, representations, np.asarray(mag_r, dtype=np.float32),
                                   index, index_overrides or {}, k, mag_window, progress)
        if checkpoint is not None:
            shutil.copyfile(checkpoint, tmp / MODEL_FILE)
        manifest.update({
            "representation": representation,
            "checkpoint": {"path": None if checkpoint is None else str(Path(checkpoint).absolute()),
                           "sha256": "external" if checkpoint is None
                           else sha256_file(tmp / MODEL_FILE)},
            "survey": {"path": str(Path(survey_path).absolute()),
                       "fingerprint": survey_fingerprint},
            "source": source or {},
        })
        manifest["files"] = {p.name: file_record(p) for p in sorted(tmp.iterdir())}
        write_manifest(tmp, manifest)
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_contents(folder: Path, representations: np.ndarray, mag_r: np.ndarray, index_kind: str,
                    index_overrides: dict[str, Any], k: int, mag_window: float | None,
                    progress: bool) -> dict[str, Any]:
    """Write vectors, magnitudes, index and arrays; returns the manifest without file records."""
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    vectors = write_normalised(representations, folder / VECTORS_FILE, progress=progress)
    np.save(folder / MAG_FILE, mag_r)
    seconds["vectors"] = time.perf_counter() - t0
    n, d = vectors.shape

    t0 = time.perf_counter()
    params = choose_params(n, d, index_kind, **index_overrides)
    faiss_index = FaissIndex(build_index(vectors, params, progress=progress), params)
    faiss_index.save(folder / INDEX_FILE)
    seconds["index"] = time.perf_counter() - t0

    knn_record = None
    if k > 0:
        k_stored = min(k, n)
        exact = exact_all_pairs_affordable(n, d)
        searcher = Searcher(vectors, faiss_index, mag_r)
        windows = [(None, KNN_FILES)]
        if mag_window is not None:
            windows.append((mag_window, KNN_MAGWIN_FILES))
        for window, (ids_name, sims_name) in windows:
            t0 = time.perf_counter()
            out_ids = np.lib.format.open_memmap(folder / ids_name, mode="w+", dtype=np.int32,
                                                shape=(n, k_stored))
            out_sims = np.lib.format.open_memmap(folder / sims_name, mode="w+",
                                                 dtype=np.float16, shape=(n, k_stored))
            if exact:
                all_pairs_topk(vectors, k_stored, out_ids, out_sims, mag_r, window, progress)
            else:
                def search(queries, allowed, _k=k_stored):
                    return searcher.search_vector(queries, _k, allowed=allowed)
                all_pairs_from_search(search, vectors, k_stored, out_ids, out_sims, mag_r,
                                      window, progress=progress)
            out_ids.flush()
            out_sims.flush()
            del out_ids, out_sims
            seconds["knn" if window is None else "knn_magwin"] = time.perf_counter() - t0
        knn_record = {"k": k_stored, "mag_window": mag_window,
                      "method": "exact" if exact else "index", "includes_self": True}
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "n": n,
        "dim": d,
        "metric": "cosine",
        "dtype": VECTOR_DTYPE.name,
        "index": {"file": INDEX_FILE, "params": params.to_json()},
        "knn": knn_record,
        "build": {"seconds": {key: round(v, 3) for key, v in seconds.items()},
                  "faiss_version": faiss.__version__, "numpy_version": np.__version__},
    }


def _remove_stale_partials(out: Path) -> None:
    """Delete hidden partial folders of this target left by builds that were killed."""
    for stale in out.parent.glob(f".{out.name}.*.partial"):
        pid = stale.name[len(out.name) + 2:-len(".partial")]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _move_into_place(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.replace(tmp, out)
        return
    old = out.parent / f".{out.name}.{os.getpid()}.old.partial"
    os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


class SearchBundle(Searcher):
    """An opened search bundle: the query layer (:class:`ml.index.query.Searcher`) plus its
    manifest, its survey and :meth:`show`. Open with :meth:`open` (or ``open_bundle``)."""

    def __init__(self, path: Path, manifest: dict[str, Any], vectors: np.ndarray,
                 index: FaissIndex, mag_r: np.ndarray, knn: KnnArrays | None,
                 knn_magwin: KnnArrays | None, survey: Any = None) -> None:
        super().__init__(vectors, index, mag_r, knn, knn_magwin)
        self.path = path
        self.manifest = manifest
        self._survey = survey

    @classmethod
    def open(cls, path: str | os.PathLike, survey: Any = None, verify: str = "quick",
             mmap: bool = True) -> SearchBundle:
        """Open a bundle folder, checking it against its manifest.

        Args:
            path: the bundle folder.
            survey: the survey (an ``ml.survey.Survey`` or its path) to check the bundle
                against and to read cutouts from; by default the manifest's survey is opened
                when first needed.
            verify: ``quick`` (sizes, shapes, checksums of small files) or ``full`` (all
                checksums: reads every byte).
            mmap: memory-map the index (else read it into memory).

        Raises:
            BundleFileMissingError: a file of the bundle is missing (named).
            BundleMismatchError: files, N, d, checksums or the survey differ from the manifest.
        """
        folder = Path(path)
        manifest = read_manifest(folder)
        verify_files(folder, manifest, verify)
        if survey is not None:
            survey = _as_survey(survey)
            check_survey(manifest, survey, folder)
        vectors = open_vectors(folder / VECTORS_FILE)
        params = IndexParams.from_json(manifest["index"]["params"])
        index = FaissIndex.load(folder / manifest["index"]["file"], params, mmap=mmap)
        if index.ntotal != manifest["n"] or index.index.d != manifest["dim"]:
            raise BundleMismatchError(
                f"{INDEX_FILE} in {folder} holds {index.ntotal} vectors of d = {index.index.d} "
                f"but the manifest says N = {manifest['n']}, d = {manifest['dim']}; rebuild "
                "the bundle with `galsearch index`"
            )
        mag_r = np.load(folder / MAG_FILE, mmap_mode="r")
        knn = knn_magwin = None
        if manifest.get("knn"):
            knn = KnnArrays(np.load(folder / KNN_FILES[0], mmap_mode="r"),
                            np.load(folder / KNN_FILES[1], mmap_mode="r"))
            window = manifest["knn"].get("mag_window")
            if window is not None:
                knn_magwin = KnnArrays(np.load(folder / KNN_MAGWIN_FILES[0], mmap_mode="r"),
                                       np.load(folder / KNN_MAGWIN_FILES[1], mmap_mode="r"),
                                       mag_window=float(window))
        bundle = cls(folder, manifest, vectors, index, np.asarray(mag_r), knn, knn_magwin, survey)
        bundle.manifest_sha256  # noqa: B018 (hashed now, beside the files it describes)
        return bundle

    @functools.cached_property
    def manifest_sha256(self) -> str:
        """The sha256 of the manifest file (which holds every file's checksum): the bundle's
        identity, e.g. for the probes trained on it. Hashed once, when the bundle is opened: a
        candidate page asks for it every time."""
        return sha256_file(self.path / MANIFEST_NAME)

    @property
    def checkpoint_path(self) -> Path | None:
        """The bundle's copy of the model checkpoint (for embedding uploaded cutouts), if any."""
        path = self.path / MODEL_FILE
        return path if MODEL_FILE in self.manifest["files"] else None

    @property
    def survey(self) -> Any:
        """The survey the bundle was built from (opened and checked on first use)."""
        if self._survey is None:
            survey = _as_survey(self.manifest["survey"]["path"])
            check_survey(self.manifest, survey, self.path)
            self._survey = survey
        return self._survey

    def show(self, ids: np.ndarray, sims: np.ndarray | None = None, **kwargs: Any):
        """A grid of the objects' cutouts (see :func:`ml.index.notebook.show_grid`)."""
        from ml.index.notebook import show_grid

        return show_grid(self.survey, ids, sims, **kwargs)

    def __repr__(self) -> str:
        kind = self.manifest["index"]["params"]["kind"]
        return (f"SearchBundle({str(self.path)!r}, n={self.n}, dim={self.dim}, index={kind}, "
                f"representation={self.manifest['representation']!r})")


def _as_survey(survey: Any) -> Any:
    if isinstance(survey, str | os.PathLike):
        from ml.survey import Survey

        return Survey(survey)
    return survey


def open_bundle(path: str | os.PathLike, survey: Any = None, verify: str = "quick") -> SearchBundle:
    """Open a search bundle folder: ``SearchBundle.open`` (the notebook entry point)."""
    return SearchBundle.open(path, survey=survey, verify=verify)
