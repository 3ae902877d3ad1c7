"""The manifest of a search bundle: what was built from what, and checks that it still holds.

``manifest.json`` is written last, after every other file of the bundle, and lists each file
with its size, its sha256 and, for ``.npy`` arrays, shape and dtype. Opening a bundle checks
that every listed file exists (a missing one is named), that sizes, shapes and dtypes match the
manifest and its N and d, and hashes the files small enough to hash on every open
(:data:`HASH_ON_OPEN_MAX_BYTES`; ``verify="full"`` hashes all of them). Each failure is a
:class:`BundleMismatchError` saying what differs and what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_NAME = "galsearch-search-bundle"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
HASH_ON_OPEN_MAX_BYTES = 64 * 2**20
VERIFY_MODES = ("quick", "full")
REBUILD_HINT = "rebuild the bundle with `galsearch index` (or copy it again, whole)"


class BundleError(ValueError):
    """A search bundle cannot be opened or built."""


class BundleFileMissingError(BundleError, FileNotFoundError):
    """A file the manifest lists is not in the bundle folder."""


class BundleMismatchError(BundleError):
    """The bundle's files, or the survey given, do not match what the manifest recorded."""


def sha256_file(path: str | os.PathLike, block_bytes: int = 8 * 2**20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(block_bytes):
            digest.update(block)
    return digest.hexdigest()


def npy_header(path: str | os.PathLike) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a ``.npy`` file, read from its header only."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    return tuple(shape), np.dtype(dtype)


def file_record(path: Path) -> dict[str, Any]:
    """Size, sha256 and (for .npy) shape and dtype of a bundle file, for the manifest."""
    record: dict[str, Any] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    if path.suffix == ".npy":
        shape, dtype = npy_header(path)
        record["shape"] = list(shape)
        record["dtype"] = dtype.str
    return record


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    tmp = folder / (MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, folder / MANIFEST_NAME)


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST_NAME
    if not folder.is_dir():
        raise BundleFileMissingError(f"search bundle folder {folder} does not exist")
    if not path.exists():
        raise BundleFileMissingError(
            f"{folder} is not a search bundle: {MANIFEST_NAME} is missing (a bundle whose build "
            "was interrupted has none); build one with `galsearch index`"
        )
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleMismatchError(f"{path} is not valid JSON ({exc}); {REBUILD_HINT}") from exc
    if manifest.get("format") != FORMAT_NAME:
        raise BundleMismatchError(f"{path} is not a galsearch search bundle manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleMismatchError(
            f"{folder} is a bundle of format version {manifest.get('format_version')}; this "
            f"galsearch reads version {FORMAT_VERSION}: {REBUILD_HINT}"
        )
    return manifest


def expected_shapes(manifest: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The shape each array of the bundle must have, from the manifest's N, d and k."""
    n, d = manifest["n"], manifest["dim"]
    shapes: dict[str, tuple[int, ...]] = {"vectors.npy": (n, d), "mag_r.npy": (n,)}
    knn = manifest.get("knn")
    if knn:
        shapes["knn_ids.npy"] = shapes["knn_sims.npy"] = (n, knn["k"])
        if knn.get("mag_window") is not None:
            shapes["knn_magwin_ids.npy"] = shapes["knn_magwin_sims.npy"] = (n, knn["k"])
    return shapes


def verify_files(folder: Path, manifest: dict[str, Any], verify: str = "quick") -> None:
    """Check the bundle's files against its manifest (see the module docstring)."""
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
    files: dict[str, dict[str, Any]] = manifest["files"]
    for name in expected_shapes(manifest):
        if name not in files:
            raise BundleMismatchError(f"the manifest of {folder} does not list {name}; "
                                      f"{REBUILD_HINT}")
    for name, record in files.items():
        path = folder / name
        if not path.exists():
            raise BundleFileMissingError(
                f"{name} is missing from the search bundle {folder}; {REBUILD_HINT}"
            )
        size = path.stat().st_size
        if size != record["bytes"]:
            raise BundleMismatchError(
                f"{name} in {folder} is {size} bytes but the manifest recorded "
                f"{record['bytes']}: the file was changed or partly copied; {REBUILD_HINT}"
            )
        if "shape" in record:
            try:
                shape, dtype = npy_header(path)
            except (ValueError, OSError) as exc:  # not an .npy file any more (overwritten)
                raise BundleMismatchError(f"{name} in {folder} is not a readable .npy array "
                                          f"({exc}); {REBUILD_HINT}") from exc
            want = expected_shapes(manifest).get(name, tuple(record["shape"]))
            if shape != tuple(record["shape"]) or shape != want:
                raise BundleMismatchError(
                    f"{name} in {folder} has shape {shape} but the manifest (N = "
                    f"{manifest['n']}, d = {manifest['dim']}) needs {want}; {REBUILD_HINT}"
                )
            if dtype.str != record["dtype"]:
                raise BundleMismatchError(
                    f"{name} in {folder} has dtype {dtype} but the manifest recorded "
                    f"{np.dtype(record['dtype'])}; {REBUILD_HINT}"
                )
        if verify == "full" or size <= HASH_ON_OPEN_MAX_BYTES:
            digest = sha256_file(path)
            if digest != record["sha256"]:
                raise BundleMismatchError(
                    f"{name} in {folder} does not match its checksum in the manifest "
                    f"(sha256 {digest[:12]}... != {record['sha256'][:12]}...): the file was "
                    f"modified after the build; {REBUILD_HINT}"
                )


def check_survey(manifest: dict[str, Any], survey: Any, folder: Path) -> None:
    """Raise if ``survey`` (an ml.survey.Survey) is not the survey the bundle was built from."""
    recorded = manifest["survey"]
    if survey.n != manifest["n"]:
        raise BundleMismatchError(
            f"the survey {survey.path} has {survey.n} objects but the bundle {folder} was built "
            f"for {manifest['n']} (from {recorded['path']}): open the bundle with the survey it "
            "was built from, or rebuild it for this survey with `galsearch index`"
        )
    fingerprint = survey.fingerprint()
    if fingerprint != recorded["fingerprint"]:
        raise BundleMismatchError(
            f"the survey {survey.path} (fingerprint {fingerprint}) is not the one the bundle "
            f"{folder} was built from ({recorded['path']}, fingerprint "
            f"{recorded['fingerprint']}): its files changed or it is another survey of the "
            "same size; object ids would point at the wrong objects. Use the original survey or "
            "rebuild the bundle with `galsearch index`"
        )
